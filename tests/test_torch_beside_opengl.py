"""torchvision (and with it triton) loaded after napari's OpenGL must not crash the process.

Mesa's llvmpipe, loaded with napari's canvas, exports its LLVM; triton loaded afterwards
without ``RTLD_DEEPBIND`` binds to it and segfaults. ``core.models`` loads triton safely before
any network is built, whatever ran first. Checked in a fresh process, as a user would meet it:
a viewer on screen, then the API from napari's console or a script.
"""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import numpy as np
import napari

viewer = napari.Viewer(show=True)
viewer.add_image(np.zeros((32, 32), np.uint8))
viewer.window._qt_window.repaint()
assert "torchvision" not in sys.modules and "triton" not in sys.modules

from napari_unet_maskrcnn import api

result = api.segment_instances(np.zeros((64, 64), np.float32), sys.argv[1], device="cpu")
print("objects", int(result.labels.max()))
viewer.close()
"""


@pytest.mark.skipif(sys.platform.startswith("linux") and not os.environ.get("DISPLAY"),
                    reason="needs an X display with OpenGL (Xvfb)")
def test_segmenting_after_the_viewer_opened_does_not_crash(tiny_models, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "NAPARI_UNET_MASKRCNN_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_models["maskrcnn"])], env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    assert done.stdout.startswith("objects ")

"""Make the README's screenshot: napari with both widgets docked and segmentation results.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot.py [OUTPUT.png]

Loads the 2D nuclei sample, runs the U-Net and Mask R-CNN widgets on it with the bundled
models, or, where their weights are not installed, with tiny untrained stand-ins (whose
output only shows what the layers look like), and saves the whole window (default
``docs/screenshot.png``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core.testing import make_tiny_model_file

PLUGIN = "napari-unet-maskrcnn"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"
PREFERRED = {"semantic": "unet-nuclei", "instances": "maskrcnn-nuclei"}
ARCH = {"semantic": "unet", "instances": "maskrcnn"}


def choose_model(task: str, folder: Path) -> str:
    """The bundled nuclei model for ``task``, or a tiny untrained one registered from ``folder``."""
    available = {info.name for info in api.list_models() if info.task == task and info.available}
    if PREFERRED[task] in available:
        return PREFERRED[task]
    path = make_tiny_model_file(folder / f"untrained-{ARCH[task]}.safetensors", ARCH[task])
    return api.register_model_file(path).name


def run_and_wait(widget, timeout_s: float = 600.0) -> None:
    widget.run_button.native.click()
    deadline = time.monotonic() + timeout_s
    while widget.running and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)


def main(output: Path) -> None:
    viewer = napari.Viewer(title="napari-unet-maskrcnn")
    viewer.window._qt_window.resize(1600, 1000)
    viewer.open_sample(PLUGIN, "nuclei-2d")
    _, semantic = viewer.window.add_plugin_dock_widget(PLUGIN, "U-Net segmentation")
    _, instances = viewer.window.add_plugin_dock_widget(PLUGIN, "Mask R-CNN instances")
    with tempfile.TemporaryDirectory() as folder:
        for widget in (semantic, instances):
            name = choose_model(widget.task, Path(folder))
            widget.model.reset_choices()
            widget.model.value = name
            run_and_wait(widget)
    viewer.layers[f"nuclei 2D · {semantic.run_model}"].visible = False  # show the instances over the image
    viewer.layers.selection.active = viewer.layers[f"nuclei 2D · {instances.run_model}"]
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    output.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(output), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)

"""Make the README's screenshot: napari with the five widgets docked and their results.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot.py [OUTPUT.png]

Loads the 2D nuclei sample and docks the five widgets in two tabbed docks (segmentation
and training above, measuring and evaluating below). Runs the U-Net and Mask R-CNN widgets
on it with the bundled models, or, where their weights are not installed, with tiny
untrained stand-ins (whose output only shows what the layers look like), then *Measure
objects* on the instances with the U-Net classes as regions, and saves the whole window
(default ``docs/screenshot.png``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core.testing import make_tiny_model_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_napari import TAB_TITLES  # noqa: E402

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
    widget.runner.run_button.native.click()
    deadline = time.monotonic() + timeout_s
    while widget.runner.running and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)


def dock(viewer, name: str, tabify: bool):
    """Dock a widget below the previous one, or (``tabify``) as a tab beside it, with the launch
    script's short, readable tab title."""
    dock_widget, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=tabify)
    dock_widget.setWindowTitle(TAB_TITLES[name])
    return dock_widget, widget


def main(output: Path) -> None:
    viewer = napari.Viewer(title="napari-unet-maskrcnn")
    viewer.window._qt_window.resize(1700, 1000)
    viewer.open_sample(PLUGIN, "nuclei-2d")
    _, semantic = dock(viewer, "U-Net segmentation", False)
    instances_dock, instances = dock(viewer, "Mask R-CNN instances", True)
    dock(viewer, "Train model", True)
    measure_dock, measure = dock(viewer, "Measure objects", False)
    dock(viewer, "Evaluate segmentation", True)
    with tempfile.TemporaryDirectory() as folder:
        for widget in (semantic, instances):
            name = choose_model(widget.task, Path(folder))
            widget.model.reset_choices()
            widget.model.value = name
            run_and_wait(widget)
    classes = viewer.layers[f"nuclei 2D · {semantic.run_model}"]
    nuclei = viewer.layers[f"nuclei 2D · {instances.run_model}"]
    measure.reset_choices()
    measure.objects.value, measure.regions.value = nuclei, classes
    run_and_wait(measure)
    classes.visible = False  # show the instances over the image
    viewer.layers.selection.active = nuclei
    instances_dock.raise_()
    measure_dock.raise_()
    window = viewer.window._qt_window  # widths and heights that show whole forms and the table
    window.resizeDocks([instances_dock, measure_dock], [620, 620], Qt.Orientation.Horizontal)
    window.resizeDocks([instances_dock, measure_dock], [540, 400], Qt.Orientation.Vertical)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    output.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(output), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)

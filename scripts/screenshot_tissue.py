"""Make the README's tissue screenshot: nuclei counted per tissue class in the napari GUI.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_tissue.py \
        [OUTPUT.png] [--tissue-model NAME_OR_FILE]

Opens the H&E tissue sample (EBHI-Seg), runs the "U-Net segmentation" widget with
``unet-tissue`` (glands vs the rest) and the "Mask R-CNN instances" widget with
``maskrcnn-nuclei``, then "Measure objects" with the nuclei as objects, the tissue classes
as regions and the image as intensities, and saves the whole window (default
``docs/tissue_workflow.png``). The per-class summary it shows is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import napari
import napari._qt.qt_main_window
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.napari_plugin.samples import tissue_nuclei_options

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot import run_and_wait  # noqa: E402

PLUGIN = "napari-unet-maskrcnn"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "tissue_workflow.png"


def settle(seconds: float = 1.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)


def new_layer(viewer, before: set[str], kind: str):
    """The layer of type ``kind`` added since ``before`` (names may carry the model's name)."""
    (layer,) = [layer for layer in viewer.layers if layer.name not in before and layer._type_string == kind]
    return layer


def main(output: Path, tissue_model: str) -> None:
    if Path(tissue_model).suffix == ".safetensors":
        tissue_model = api.register_model_file(tissue_model).name
    napari._qt.qt_main_window.SHOW_QT_WARNING = False
    viewer = napari.Viewer(title="napari-unet-maskrcnn: nuclei per tissue class")
    viewer.window._qt_window.resize(1700, 1000)
    (image,) = viewer.open_sample(PLUGIN, "tissue-he")
    semantic_dock, semantic = viewer.window.add_plugin_dock_widget(PLUGIN, "U-Net segmentation")
    instances_dock, instances = viewer.window.add_plugin_dock_widget(PLUGIN, "Mask R-CNN instances")
    layers = {}
    for widget, model, kind in ((semantic, tissue_model, "labels"), (instances, "maskrcnn-nuclei", "labels")):
        widget.model.reset_choices()
        widget.model.value = model
        if widget is instances:
            for name, value in tissue_nuclei_options().items():  # the sample's nuclei are small (400x, 224 px fields)
                getattr(widget, name).value = value
        before = {layer.name for layer in viewer.layers}
        run_and_wait(widget)
        layers[widget.task] = new_layer(viewer, before, kind)
    measure_dock, measure = viewer.window.add_plugin_dock_widget(PLUGIN, "Measure objects")
    measure.reset_choices()
    measure.objects.value = layers["instances"]
    measure.intensities.value = image
    measure.regions.value = layers["semantic"]
    run_and_wait(measure)  # Measure runs in the background like the segmentation docks
    print(measure.status.value)
    print(measure.summary.frame.to_string(index=False))
    layers["semantic"].opacity = 0.35
    layers["instances"].contour = 1
    viewer.layers.selection.active = layers["instances"]
    window = viewer.window._qt_window  # room for the per-class table; the two segmentation docks scroll
    docks = [semantic_dock, instances_dock, measure_dock]
    window.resizeDocks(docks, [560] * 3, Qt.Orientation.Horizontal)
    window.resizeDocks(docks, [120, 330, 470], Qt.Orientation.Vertical)
    viewer.reset_view()
    settle(2.0)
    output.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(output), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--tissue-model", default="unet-tissue",
                        help="model name or .safetensors file (e.g. a training checkpoint)")
    args = parser.parse_args()
    main(args.output, args.tissue_model)

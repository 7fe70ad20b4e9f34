"""The "Measure objects" dock widget, opened through the installed manifest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_unet_maskrcnn.napari_plugin import widget_tables as _widget_tables
from napari_unet_maskrcnn.napari_plugin.layer_outputs import MARKER

WIDGET = "Measure objects"


def cells_and_image():
    """Cell 1: 10 x 10 square of intensity 15 (left half of the image); cell 2: 4 x 4 of
    intensity 40, cell 3: 2 x 5 of intensity 40 (right half). Background intensity 1."""
    labels = np.zeros((20, 40), np.uint16)
    labels[2:12, 2:12] = 1
    labels[5:9, 25:29] = 2
    labels[14:16, 30:35] = 3
    image = np.ones(labels.shape, np.uint16)
    image[labels == 1] = 15
    image[labels >= 2] = 40
    return labels, image


def class_map():
    """U-Net-like tissue classes: 1 = stroma (left half), 2 = tumour (right half)."""
    classes = np.ones((20, 40), np.uint8)
    classes[:, 20:] = 2
    features = pd.DataFrame({"index": [0, 1, 2], "class_name": ["background", "stroma", "tumour"]})
    return classes, features


@pytest.fixture
def measure(viewer, dock):
    labels, image = cells_and_image()
    viewer.add_image(image, name="dapi", scale=(0.5, 0.5))
    viewer.add_labels(labels, name="cells", scale=(0.5, 0.5))
    return dock(WIDGET)


def test_features_and_summary_without_regions(viewer, measure, run_widget):
    assert measure.objects.value.name == "cells" and measure.intensities.value.name == "dapi"
    assert measure.regions.value is None

    run_widget(measure)

    layer = viewer.layers["cells"]
    features = layer.features
    assert list(features["index"]) == list(features["label"]) == [1, 2, 3]
    assert list(features["area"]) == [100, 16, 10]
    assert list(features["area_calibrated"]) == pytest.approx([25, 4, 2.5])  # pixels of 0.5 µm
    assert list(features["mean_intensity"]) == pytest.approx([15, 40, 40])
    assert list(features["integrated_intensity"]) == pytest.approx([1500, 640, 400])
    assert "region" not in features
    assert "area: 100" in layer.get_status((3, 3), world=True)["value"]  # hover at pixel (6, 6)

    summary = measure.summary.frame
    assert list(summary["region"]) == ["all"] and "region_id" not in summary
    assert summary["cells"][0] == 3
    assert summary["region_area_um2"][0] == pytest.approx(20 * 40 * 0.25)
    assert summary["density_per_mm2"][0] == pytest.approx(3 / 200 * 1e6)
    assert summary["mean_intensity"][0] == pytest.approx((15 + 40 + 40) / 3)
    assert measure.status.value == "3 objects measured in 'cells'."


def test_regions_of_a_unet_class_map(viewer, measure, run_widget):
    classes, names = class_map()
    viewer.add_labels(classes, name="tissue classes", features=names, scale=(0.5, 0.5),
                      metadata={MARKER: {"source": "tissue", "output": "classes"}})
    measure.reset_choices()
    measure.regions.value = viewer.layers["tissue classes"]

    run_widget(measure)

    features = viewer.layers["cells"].features
    assert list(features["region"]) == ["stroma", "tumour", "tumour"]
    assert list(features["region_id"]) == [1, 2, 2]
    summary = measure.summary.frame
    assert list(summary["region"]) == ["stroma", "tumour", "all"]
    assert list(summary["cells"]) == [1, 2, 3]
    # each half: 20 x 20 pixels of 0.25 µm² = 100 µm²
    assert list(summary["region_area_um2"]) == pytest.approx([100, 100, 200])
    assert list(summary["density_per_mm2"]) == pytest.approx([1e4, 2e4, 1.5e4])
    assert list(summary["mean_cell_area_um2"]) == pytest.approx([25, 3.25, 31.5 / 3])
    assert measure.status.value == "3 objects measured in 'cells' in 2 regions."


def test_features_of_a_mask_rcnn_layer_keep_class_and_score(viewer, dock, run_widget):
    labels, _ = cells_and_image()
    old = pd.DataFrame({"index": [1, 2, 3], "label": [1, 2, 3], "class_name": ["nucleus"] * 3,
                        "score": [0.9, 0.8, 0.7], "area": [1, 1, 1]})
    labels[labels == 3] = 0  # the user erased object 3 and painted a new object 7
    labels[0:2, 36:40] = 7
    viewer.add_labels(labels, name="img instances", features=old)
    widget = dock(WIDGET)
    assert widget.intensities.value is None  # no image layer

    run_widget(widget)

    features = viewer.layers["img instances"].features
    assert list(features["label"]) == [1, 2, 7]
    assert list(features["area"]) == [100, 16, 8]  # measured again, not the old values
    assert list(features["score"][:2]) == [0.9, 0.8] and np.isnan(features["score"][2])
    assert "mean_intensity" not in features and "area_calibrated" not in features
    assert list(widget.summary.frame["region_area_px"]) == [800]


def test_rgb_intensities_per_colour(viewer, dock, run_widget):
    labels, _ = cells_and_image()
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    rgb[..., 2] = 200
    viewer.add_image(rgb, name="he", rgb=True)
    viewer.add_labels(labels, name="cells")
    widget = dock(WIDGET)

    run_widget(widget)

    features = viewer.layers["cells"].features
    assert list(features["mean_intensity_blue"]) == [200, 200, 200]
    assert list(features["max_intensity_red"]) == [0, 0, 0]


def test_empty_labels_give_empty_tables(viewer, dock, run_widget):
    viewer.add_labels(np.zeros((16, 16), np.uint16), name="nothing")
    widget = dock(WIDGET)
    run_widget(widget)
    assert len(viewer.layers["nothing"].features) == 0
    assert list(widget.summary.frame["cells"]) == [0]
    assert widget.status.value == "0 objects measured in 'nothing'."


def test_csv_export_of_objects_and_regions(viewer, measure, tmp_path, monkeypatch, run_widget):
    classes, names = class_map()
    viewer.add_labels(classes, name="tissue classes", features=names)
    measure.reset_choices()
    measure.regions.value = viewer.layers["tissue classes"]
    run_widget(measure)

    for name, button in (("objects.csv", measure.export_objects_button),
                         ("regions.csv", measure.summary.export_button)):
        path = str(tmp_path / name)
        monkeypatch.setattr(_widget_tables, "ask_csv_path", lambda parent=None, caption="", path=path: path)
        button.native.click()

    objects = pd.read_csv(tmp_path / "objects.csv")
    assert list(objects["label"]) == [1, 2, 3] and "index" not in objects
    assert list(objects["region"]) == ["stroma", "tumour", "tumour"]
    regions = pd.read_csv(tmp_path / "regions.csv")
    assert list(regions["region"]) == ["stroma", "tumour", "all"]
    assert list(regions["cells"]) == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects.csv", "regions.csv"]


def test_regions_of_another_shape_are_reported(viewer, measure, new_notifications, run_widget):
    viewer.add_labels(np.ones((10, 10), np.uint8), name="small regions")
    measure.reset_choices()
    measure.regions.value = viewer.layers["small regions"]

    run_widget(measure)

    assert any("same image" in message for message in new_notifications())
    assert measure.status.value == "Failed; see the notification."
    assert len(viewer.layers["cells"].features) == 0


def test_time_lapses_are_measured_per_time_point(viewer, dock, run_widget):
    labels, image = cells_and_image()
    movie = np.stack([labels, np.where(labels == 1, 1, 0).astype(np.uint16)])  # cells 2 and 3 leave at t 1
    viewer.add_image(np.stack([image, image]), name="dapi movie", metadata={"axes": "TYX"})
    viewer.add_labels(movie, name="movie", metadata={"axes": "TYX"})
    widget = dock(WIDGET)
    widget.objects.value = viewer.layers["movie"]
    widget.intensities.value = viewer.layers["dapi movie"]

    run_widget(widget)

    objects = widget._objects_frame
    assert list(objects["t"]) == [0, 0, 0, 1] and list(objects["label"]) == [1, 2, 3, 1]
    assert list(objects["mean_intensity"]) == pytest.approx([15, 40, 40, 15])
    summary = widget.summary.frame
    assert list(summary["t"]) == [0, 1] and list(summary["cells"]) == [3, 1]
    assert widget.status.value == "4 objects measured in 'movie' over 2 time points."


def test_z_stack_volumes_with_the_layer_scale(viewer, dock, run_widget):
    labels = np.zeros((6, 20, 20), np.uint16)
    labels[1:5, 5:15, 5:15] = 9  # 400 voxels of 2 x 0.5 x 0.5 µm
    viewer.add_labels(labels, name="nuclei", scale=(2.0, 0.5, 0.5))
    widget = dock(WIDGET)

    run_widget(widget)

    features = viewer.layers["nuclei"].features
    assert list(features["area"]) == [400] and list(features["area_calibrated"]) == [200.0]
    assert list(widget.summary.frame["region_area_um3"]) == [6 * 20 * 20 * 0.5]
    assert widget.summary.frame["density_per_mm3"][0] == pytest.approx(1 / (1200 * 1e-9))


def test_measuring_runs_in_a_worker_and_cancel_adds_nothing(viewer, dock, qtbot, slow_calls):
    from napari_unet_maskrcnn.core import measure

    labels, image = cells_and_image()
    viewer.add_labels(np.stack([labels] * 40), name="movie", metadata={"axes": "TYX"})
    widget = dock(WIDGET)
    units = slow_calls(measure, "_measure_one")

    widget.measure_button.native.click()
    assert widget.runner.running and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: widget.status.value.startswith("time point"), timeout=30_000)
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: not widget.runner.running, timeout=30_000)

    assert 0 < len(units) < 40
    assert widget.status.value.startswith("Cancelled")
    assert len(viewer.layers["movie"].features) == 0 and widget.summary.frame.empty
    assert not widget.export_objects_button.enabled

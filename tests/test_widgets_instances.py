"""The "Mask R-CNN instances" dock widget, opened through the installed manifest."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_unet_maskrcnn.core.testing import blob_detections

WIDGET = "Mask R-CNN instances"


def bright_blob_detector(network, image, **_):
    """Stand-in for the untrained tiny network: each bright blob of the normalised tile is a detection.

    It keeps everything else real (tiling, overlap resolution, z-linking, the table, the widget).
    """
    return blob_detections(image, threshold=0.15)


@pytest.fixture
def blob_detector(monkeypatch):
    from napari_unet_maskrcnn.core.models import maskrcnn

    monkeypatch.setattr(maskrcnn, "detect", bright_blob_detector)


def test_instances_of_the_2d_sample_with_the_tiny_model(viewer, dock, load_model, run_widget, tiny_models):
    (image,) = viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["maskrcnn"])
    assert widget.model.value == "tiny-maskrcnn"
    assert widget.z_link_iou.native.isHidden()  # no z axis: nothing to link
    widget._options["score_threshold"].value = 0.0

    run_widget(widget)

    instances = viewer.layers["nuclei 2D · tiny-maskrcnn"]
    assert isinstance(instances, Labels)
    assert instances.data.shape == image.data.shape and instances.data.dtype == np.uint32
    np.testing.assert_allclose(instances.scale, image.scale)
    assert {"index", "label", "class_name", "score", "area"} <= set(instances.features.columns)
    assert len(instances.features) == len(np.unique(instances.data)) - 1
    assert widget.status.value.startswith(f"{len(instances.features)} objects in 'nuclei 2D'.\n")


def test_features_table_describes_each_labelled_object(
    viewer, dock, load_model, run_widget, tiny_models, blob_detector
):
    viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["maskrcnn"])

    run_widget(widget)

    instances = viewer.layers["nuclei 2D · tiny-maskrcnn"]
    features = instances.features
    ids = np.unique(instances.data)[1:]
    assert len(ids) > 20
    assert sorted(features["label"]) == list(ids)
    assert list(features["index"]) == list(features["label"])
    assert set(features["class_name"]) == {"object"}
    first = features.iloc[0]
    assert first["area"] == np.count_nonzero(instances.data == first["label"])


def test_z_stack_objects_are_linked_across_slices(
    viewer, dock, load_model, run_widget, tiny_models, blob_detector
):
    viewer.open_sample("napari-unet-maskrcnn", "nuclei-3d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["maskrcnn"])
    assert not widget.z_link_iou.native.isHidden()

    run_widget(widget)

    instances = viewer.layers["nuclei 3D (synthetic) · tiny-maskrcnn"]
    assert instances.data.shape == (16, 128, 128)
    np.testing.assert_allclose(instances.scale, (1.0, 0.5, 0.5))
    per_slice = sum(len(np.unique(plane)) - 1 for plane in instances.data)
    assert 0 < len(instances.features) < per_slice / 3  # each nucleus spans several slices


def test_diameter_field_and_the_estimate_in_the_layer_metadata(viewer, dock, load_model, run_widget, tmp_path,
                                                                monkeypatch):
    from skimage.draw import disk

    image = np.full((160, 160), 100, np.uint16)
    for centre in [(30, 30), (30, 110), (110, 70)]:
        image[disk(centre, 12, shape=image.shape)] = 1000  # 24 px discs; the model knows 12 px
    viewer.add_image(image, name="big")
    widget = dock(WIDGET)  # loads torch and triton safely beside napari's OpenGL first
    from napari_unet_maskrcnn.core.models import maskrcnn
    from napari_unet_maskrcnn.core.testing import make_tiny_model_file

    from napari_unet_maskrcnn.core import size_estimator

    monkeypatch.setattr(maskrcnn, "detect", bright_blob_detector)
    # the trained estimator is tested on its own (test_size_estimator.py); here it answers the discs' size
    monkeypatch.setattr(size_estimator, "estimate_diameter", lambda source: size_estimator.SizeEstimate(24.0, 0.1))
    load_model(widget, make_tiny_model_file(tmp_path / "sized.safetensors", "maskrcnn", object_diameter_px=12))
    assert widget.diameter.value is None  # automatic

    run_widget(widget)

    size = viewer.layers["big · sized"].metadata["object_size"]
    assert size["mode"] == "auto" and size["diameter"] == pytest.approx(24, rel=0.1)
    assert size["scale"] == pytest.approx(12 / size["diameter"])
    assert "Object diameter 2" in widget.status.value and "resized x0." in widget.status.value
    assert viewer.layers["big · sized"].data.max() == 3

    widget.diameter.value = 12
    run_widget(widget)
    size = viewer.layers["big · sized"].metadata["object_size"]
    assert (size["mode"], size["diameter"], size["scale"]) == ("given", 12.0, 1.0)

    widget.diameter.value = 0  # 0 = off (native scale), as in the API and on the command line
    assert widget.diameter.value == 0 and not widget.diameter.auto.value
    run_widget(widget)
    size = viewer.layers["big · sized"].metadata["object_size"]
    assert (size["mode"], size["scale"]) == ("off", 1.0)
    widget.diameter.auto.value = True  # the "automatic" box: None again
    assert widget.diameter.value is None

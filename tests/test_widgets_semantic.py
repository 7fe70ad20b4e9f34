"""The "U-Net segmentation" dock widget, opened through the installed manifest."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels

WIDGET = "U-Net segmentation"
CLASSES = ["background", "object", "boundary"]  # the tiny U-Net's classes


def test_classes_and_probabilities_of_the_2d_sample(viewer, dock, load_model, run_widget, tiny_models):
    (image,) = viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    image.translate = (5.0, -3.0)
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    assert widget.model.value == "tiny-unet"
    assert widget.channel.native.isHidden()
    widget.return_probabilities.value = True

    run_widget(widget)

    classes = viewer.layers["nuclei 2D · tiny-unet"]
    assert isinstance(classes, Labels)
    assert classes.data.shape == image.data.shape and classes.data.dtype == np.uint8
    assert set(np.unique(classes.data)) <= {0, 1, 2}
    np.testing.assert_allclose(classes.scale, image.scale)
    np.testing.assert_allclose(classes.translate, image.translate)
    assert list(classes.features["class_name"]) == CLASSES
    assert list(classes.features["index"]) == [0, 1, 2]
    assert all(name in widget.legend.value for name in CLASSES)

    probabilities = [viewer.layers[f"nuclei 2D · tiny-unet · {name} probability"] for name in CLASSES]
    assert all(isinstance(layer, Image) and layer.ndim == 2 for layer in probabilities)  # no class slider
    assert all(layer.data.shape == image.data.shape for layer in probabilities)
    np.testing.assert_allclose(sum(layer.data for layer in probabilities), 1.0, atol=1e-4)
    np.testing.assert_allclose(probabilities[1].scale, image.scale)
    assert viewer.dims.ndim == 2
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.status.value.startswith("3 classes in 'nuclei 2D'.\n")
    assert classes.metadata["object_size"]["mode"] == "auto"  # the tiny model has no diameter: native
    assert classes.metadata["object_size"]["scale"] == 1.0


def test_rgb_sample_drops_the_colour_axis(viewer, dock, load_model, run_widget, tiny_models):
    (image,) = viewer.open_sample("napari-unet-maskrcnn", "tissue-he")
    assert image.rgb
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet-rgb"])
    assert not widget.channel.native.isHidden()
    combo = widget.channel.native
    assert [combo.itemText(i) for i in range(1, combo.count())] == ["red", "green", "blue"]

    run_widget(widget)

    classes = viewer.layers["H&E tissue · tiny-unet-rgb"]
    assert classes.data.shape == image.data.shape[:2]
    np.testing.assert_allclose(classes.scale, image.scale)
    assert classes.metadata["axes"] == "YX"


def test_z_stack_sample(viewer, dock, load_model, run_widget, tiny_models):
    (image,) = viewer.open_sample("napari-unet-maskrcnn", "nuclei-3d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])

    run_widget(widget)

    classes = viewer.layers["nuclei 3D (synthetic) · tiny-unet"]
    assert classes.data.shape == (16, 128, 128)
    np.testing.assert_allclose(classes.scale, (1.0, 0.5, 0.5))
    assert classes.metadata["axes"] == "ZYX"


def test_a_loaded_model_file_is_listed_in_both_widgets(
    viewer, dock, load_model, tiny_models, new_notifications
):
    semantic, instances = dock(WIDGET), dock("Mask R-CNN instances")
    load_model(semantic, tiny_models["maskrcnn"])  # an instances model, loaded in the U-Net widget

    assert "tiny-maskrcnn" in instances.model.combo.choices
    assert "tiny-maskrcnn" not in semantic.model.combo.choices
    assert any("Mask R-CNN instances" in message for message in new_notifications())

    load_model(instances, tiny_models["unet"])
    assert "tiny-unet" in semantic.model.combo.choices


def test_bundled_models_without_weights_are_not_offered(viewer, dock):
    from napari_unet_maskrcnn import api

    widget = dock(WIDGET)
    missing = [m.name for m in api.list_models() if m.task == "semantic" and not m.available]
    for name in missing:
        assert name not in widget.model.combo.choices
        assert name in widget.model.combo.tooltip


def test_split_instances_adds_a_labels_layer_of_objects(viewer, dock, load_model, run_widget, tiny_models):
    (image,) = viewer.open_sample("napari-unet-maskrcnn", "nuclei-3d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    widget.split_instances.value = True

    run_widget(widget)

    instances = viewer.layers["nuclei 3D (synthetic) · tiny-unet instances"]
    assert isinstance(instances, Labels)
    assert instances.data.shape == image.data.shape and instances.data.dtype == np.uint32
    np.testing.assert_allclose(instances.scale, image.scale)
    assert "nuclei 3D (synthetic) · tiny-unet" in viewer.layers

"""Issue 19 in the GUI: inputs that cannot give objects are notified as the CLI warns; Evaluate refuses
a layer compared with itself; Train refuses a pair too small to train on and writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_maskrcnn.napari_plugin import widget_train as _widget_train


@pytest.mark.parametrize("image, words", [
    (np.zeros((1, 1), np.float32), "only 1 x 1 pixels"),
    (np.full((64, 64), np.nan, np.float32), "NaN"),
    (np.zeros((64, 64), np.uint16), "same value"),
])
def test_segmentation_warns_on_inputs_without_objects(viewer, dock, load_model, tiny_models, run_widget,
                                                      new_notifications, image, words):
    viewer.add_image(image, name="hostile")
    widget = dock("U-Net segmentation")
    load_model(widget, tiny_models["unet"])
    widget._options["tile"].value = 64
    run_widget(widget)
    assert any("'hostile'" in message and words in message for message in new_notifications())


def test_evaluate_refuses_a_layer_compared_with_itself(viewer, dock, run_widget, new_notifications):
    viewer.add_labels(np.pad(np.ones((8, 8), np.uint16), 10), name="cells")
    widget = dock("Evaluate segmentation")
    widget.prediction.value = widget.ground_truth.value = viewer.layers["cells"]
    run_widget(widget)
    assert any("both the prediction and the ground truth" in message for message in new_notifications())
    assert widget.status.value.startswith("Failed") and len(viewer.layers) == 1


def test_train_refuses_a_pair_too_small_to_train_on(viewer, dock, monkeypatch, tiny_models, run_widget,
                                                    new_notifications, user_model_folder):
    widget = dock("Train model")
    widget.epochs.value = 1
    monkeypatch.setattr(_widget_train, "ask_model_file", lambda parent=None: str(tiny_models["unet"]))
    widget.load_button.native.click()
    image = viewer.add_image(np.ones((1, 1), np.uint16), name="dot")
    labels = viewer.add_labels(np.ones((1, 1), np.uint16), name="dot labels")
    labels_choice = widget.labels_layer if hasattr(widget, "labels_layer") else widget.labels
    widget.image.value, labels_choice.value = image, labels
    widget.add_button.native.click()
    run_widget(widget)
    assert any("'dot' is only 1 x 1 pixels" in message for message in new_notifications())
    assert not list(user_model_folder.glob("*.safetensors"))

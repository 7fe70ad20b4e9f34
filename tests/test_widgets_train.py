"""The "Train model" dock widget, opened through the installed manifest."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from napari_unet_maskrcnn.napari_plugin import widget_train as _widget_train
from napari_unet_maskrcnn.core.model_file import read_spec

WIDGET = "Train model"


def discs(size: int = 96, count: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bright discs on a noisy background: uint16 image and their instance labels."""
    rng = np.random.default_rng(seed)
    image = rng.normal(1000, 50, (size, size))
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for label in range(1, count + 1):
        cy, cx = rng.integers(10, size - 10, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 64
        image[disc] += 2000
        labels[disc] = label
    return image.astype(np.uint16), labels


@pytest.fixture
def trainer(viewer, dock, monkeypatch, tiny_models):
    """The training widget, quick settings, and ``start_from(arch)`` loading a tiny model file."""
    widget = dock(WIDGET)
    widget.epochs.value = 1
    widget.val_fraction.value = 0.0
    widget.crop.value = 64

    def start_from(arch: str) -> None:
        monkeypatch.setattr(_widget_train, "ask_model_file", lambda parent=None: str(tiny_models[arch]))
        widget.load_button.native.click()

    widget.start_from = start_from
    return widget


def add_pair(widget, image, labels, slices: str = "current") -> None:
    widget.image.value, widget.labels_layer.value = image, labels
    widget.slices.value = slices
    widget.add_button.native.click()


def train(widget, run_widget) -> None:
    """Click Train and wait for the run (:class:`BackgroundRun`, as in every computing dock)."""
    run_widget(widget)
    assert widget.train_button.enabled and not widget.cancel_button.enabled


def test_unet_from_sparse_strokes_outputs_the_painted_values_with_their_names(
    viewer, dock, trainer, user_model_folder, run_widget
):
    image, instances = discs()
    strokes = np.zeros_like(instances)
    strokes[instances > 0] = 2
    strokes[::3] = 0                         # sparse: two rows in three unpainted
    strokes[2:6, :] = 1                      # a background stroke
    features = pd.DataFrame({"index": [1, 2], "class_name": ["background", "cell"]})
    image_layer = viewer.add_image(image, name="cells")
    labels_layer = viewer.add_labels(strokes, name="strokes", features=features)
    segmentation = dock("U-Net segmentation")
    trainer.task.value = "semantic"
    trainer.label_kind.value = "painted"
    assert trainer.region.native.isHidden() and trainer.margin.native.isHidden()  # unpainted = ignored
    trainer.start_from("unet")
    add_pair(trainer, image_layer, labels_layer)
    assert not trainer.class_names.native.isHidden()
    assert trainer.class_names.names() == {1: "background", 2: "cell"}  # from the layer's features
    trainer.class_names.data[1, 0] = "nucleus"  # the user renames class 2
    trainer.model_name.value = "strokes"

    train(trainer, run_widget)

    spec = read_spec(user_model_folder / "strokes.safetensors")
    assert spec.class_names == ["unlabelled", "background", "nucleus"]
    assert spec.provenance["data"]["label_kind"] == "painted"
    assert "strokes" in segmentation.model.combo.choices
    assert trainer.plot.losses and trainer.status.value.startswith("Wrote 'strokes'")
    assert trainer.model_name.value == "strokes-2"  # the next run will not overwrite this one

    segmentation.image.value = image_layer
    segmentation.model.value = "strokes"
    run_widget(segmentation)
    output = viewer.layers["cells · strokes"]
    assert set(np.unique(output.data[strokes > 0])) <= {1, 2}  # the painted values, not 0 and 1
    assert list(output.features["class_name"]) == ["unlabelled", "background", "nucleus"]


def test_mask_rcnn_from_instances_in_a_shapes_region(viewer, dock, trainer, run_widget, user_model_folder):
    image, instances = discs(128, count=10)
    corrected = np.where(np.arange(128)[None, :] < 64, instances, 0)  # only the left half was corrected
    image_layer = viewer.add_image(image, name="cells")
    labels_layer = viewer.add_labels(corrected, name="corrected")
    shapes = viewer.add_shapes([np.array([[0, 0], [0, 63], [127, 63], [127, 0]])], shape_type="rectangle",
                               name="done")
    semantic, instances_widget = dock("U-Net segmentation"), dock("Mask R-CNN instances")
    trainer.task.value = "instances"
    assert trainer.label_kind.native.isHidden() and not trainer.region.native.isHidden()
    assert not trainer.margin.native.isHidden()  # labelled objects + margin, the default
    trainer.region.value = shapes
    assert trainer.margin.native.isHidden()
    trainer.start_from("maskrcnn")
    add_pair(trainer, image_layer, labels_layer)
    trainer.model_name.value = "left-half"

    train(trainer, run_widget)

    spec = read_spec(user_model_folder / "left-half.safetensors")
    assert spec.arch == "maskrcnn" and spec.provenance["data"]["n_with_region"] == 1
    assert "left-half" in instances_widget.model.combo.choices
    assert "left-half" not in semantic.model.combo.choices


def start_long_run(viewer, trainer, qtbot, name: str) -> None:
    """Start a 10 minute U-Net run and wait for its first losses in the plot."""
    image, instances = discs(256, count=30)
    add_pair(trainer, viewer.add_image(image, name="big"), viewer.add_labels(instances, name="objects"))
    trainer.task.value = "semantic"
    trainer.start_from("unet")
    trainer.epochs.value = 0  # until the time budget is spent
    trainer.model_name.value = name
    trainer.train_button.native.click()
    assert trainer.runner.running and not trainer.train_button.enabled and trainer.cancel_button.enabled
    qtbot.waitUntil(lambda: len(trainer.plot.losses) >= 3, timeout=120_000)


def test_cancel_stops_promptly_and_keeps_the_model(viewer, trainer, qtbot, user_model_folder):
    start_long_run(viewer, trainer, qtbot, "cancelled")
    assert "step" in trainer.status.value and "elapsed" in trainer.status.value and "left" in trainer.status.value

    trainer.cancel_button.native.click()
    cancelled_at = time.monotonic()
    assert trainer.status.value.startswith("Stopping") and not trainer.cancel_button.enabled
    qtbot.waitUntil(lambda: not trainer.runner.running, timeout=60_000)

    assert time.monotonic() - cancelled_at < 15
    spec = read_spec(user_model_folder / "cancelled.safetensors")
    assert spec.provenance["training"]["stop_reason"] == "stopped"
    assert trainer.train_button.enabled and not trainer.cancel_button.enabled
    assert trainer.status.value.startswith("Wrote")


def test_closing_napari_during_training_stops_it(viewer, trainer, qtbot):
    start_long_run(viewer, trainer, qtbot, "closed")
    worker = trainer.runner._worker

    viewer.close()

    qtbot.waitUntil(lambda: not worker.is_running, timeout=30_000)


def test_cancel_before_the_first_step_writes_nothing(viewer, trainer, qtbot, user_model_folder):
    image, instances = discs()
    add_pair(trainer, viewer.add_image(image, name="cells"), viewer.add_labels(instances, name="objects"))
    trainer.start_from("unet")
    trainer.model_name.value = "never"

    trainer.train_button.native.click()
    trainer.cancel_button.native.click()
    qtbot.waitUntil(lambda: not trainer.runner.running, timeout=60_000)

    assert not (user_model_folder / "never.safetensors").exists()
    assert trainer.status.value.startswith("Cancelled before the first step")


def test_problems_are_notified_and_nothing_is_written(viewer, trainer, run_widget, new_notifications,
                                                      user_model_folder):
    trainer.train_button.native.click()
    assert not trainer.running and "Add at least one image + labels pair" in new_notifications()[-1]

    image, instances = discs()
    image_layer = viewer.add_image(image, name="cells")
    cases = [
        (viewer.add_labels(instances[:48], name="too small"), "instances", "choose labels drawn on this image"),
        (viewer.add_labels(np.zeros_like(instances), name="empty"), "instances", "no labelled pixel"),
        (viewer.add_labels(instances + 40 * (instances > 0), name="ids"), "painted", "look like instance labels"),
    ]
    trainer.task.value = "semantic"
    for labels_layer, kind, message in cases:
        trainer.pair_list.value = list(trainer.pair_list.choices)
        trainer.remove_button.native.click()
        add_pair(trainer, image_layer, labels_layer)
        assert len(trainer.pair_list.choices) == 1
        trainer.label_kind.value = kind
        train(trainer, run_widget)
        assert message in new_notifications()[-1]
        assert trainer.status.value.startswith("Failed")
    assert not list(user_model_folder.glob("*.safetensors"))


def test_stack_pairs_use_the_slice_on_screen(viewer, trainer, run_widget, new_notifications):
    image = np.random.default_rng(0).integers(0, 1000, (4, 64, 64)).astype(np.uint16)
    labels = np.zeros((4, 64, 64), np.int32)
    labels[2, 10:20, 10:20] = 1
    image_layer, labels_layer = viewer.add_image(image, name="stack"), viewer.add_labels(labels, name="nuclei")
    trainer.image.value = image_layer
    assert not trainer.slices.native.isHidden()
    viewer.dims.set_current_step(0, 0)
    add_pair(trainer, image_layer, labels_layer, "current")
    add_pair(trainer, image_layer, labels_layer, "all")
    viewer.dims.set_current_step(0, 2)
    add_pair(trainer, image_layer, labels_layer, "current")
    pairs = list(trainer.pair_list.choices)
    assert [pair.description for pair in pairs] == [
        "stack + nuclei (z 0)", "stack + nuclei (all annotated slices)", "stack + nuclei (z 2)"]

    trainer.pair_list.value = pairs[1:]
    trainer.remove_button.native.click()
    train(trainer, run_widget)  # slice 0 has no labels
    assert "no labelled pixel in the chosen slice" in new_notifications()[-1]


def test_task_and_label_kind_follow_the_chosen_labels(viewer, trainer):
    image, instances = discs(256, count=30)
    strokes = np.where(instances > 0, 2, 0)
    strokes[::3] = 0  # rows left unpainted cut each class into many pieces
    strokes[2:6, :] = 1
    viewer.add_image(image, name="cells")
    trainer.labels_layer.value = viewer.add_labels(instances, name="objects")  # 30 ids: instances
    assert (trainer.task.value, trainer.label_kind.value) == ("instances", "instances")
    trainer.task.value = "semantic"  # the user's choice stays until other labels are chosen
    assert trainer.task.value == "semantic"
    trainer.labels_layer.value = viewer.add_labels(strokes, name="strokes")  # 2 values, many pieces: classes
    assert (trainer.task.value, trainer.label_kind.value) == ("semantic", "painted")


def test_validation_warnings_say_when_there_is_none_or_it_is_optimistic():
    from napari_unet_maskrcnn.core.training import TrainConfig, TrainingPair
    from napari_unet_maskrcnn.core.training.run_warnings import validation_warnings

    image, labels = discs()
    one = [TrainingPair(image, labels, name="cells")]
    assert "No validation" in validation_warnings(one, TrainConfig(val_fraction=0.2), {"cells": "cells + objects"})[0]
    assert validation_warnings(one, TrainConfig(val_fraction=0.0), {"cells": "cells + objects"}) == []
    slices = [TrainingPair(image, labels, name=f"stack z{z}") for z in range(5)]
    sources = {pair.name: "stack + nuclei" for pair in slices}
    (warning,) = validation_warnings(slices, TrainConfig(val_fraction=0.2), sources)
    assert "same stack" in warning and "stack + nuclei" in warning and "optimistic" in warning
    apart = {pair.name: pair.name for pair in slices}  # five separate images
    assert validation_warnings(slices, TrainConfig(val_fraction=0.2), apart) == []


def test_a_collapsed_training_is_flagged():
    from napari_unet_maskrcnn.core.training.run_warnings import collapse_warning

    one_class = {"object_iou": 0.0, "iou_background": 0.9, "iou_object": 0.0, "iou_boundary": 0.0}
    assert "collapsed to one class" in collapse_warning("unet", one_class)
    assert collapse_warning("unet", {**one_class, "iou_object": 0.4}) is None
    assert collapse_warning("unet", {}) is None  # no validation: nothing to judge
    assert "no object" in collapse_warning("maskrcnn", {"ap50": 0.0, "recall50": 0.0})
    assert collapse_warning("maskrcnn", {"ap50": 0.3, "recall50": 0.5}) is None


def test_channel_of_a_multichannel_image_is_learned_and_chosen_again_by_the_unet_widget(
    viewer, dock, trainer, run_widget, user_model_folder
):
    image, instances = discs()
    two_channels = np.stack([np.random.default_rng(1).integers(900, 1100, image.shape, np.uint16), image])
    image_layer = viewer.add_image(two_channels, name="two colours", metadata={"axes": "CYX"})
    labels_layer = viewer.add_labels(instances, name="objects")
    segmentation = dock("U-Net segmentation")
    add_pair(trainer, image_layer, labels_layer)
    trainer.task.value, trainer.label_kind.value = "semantic", "instances"
    trainer.start.value = None  # from scratch: any channel count, so "all" is offered
    assert not trainer.channel.native.isHidden()
    assert list(trainer.channel.choices) == [None, 0, 1]
    trainer.start_from("unet")  # a 1-channel model: one channel must be chosen
    assert list(trainer.channel.choices) == [0, 1]
    trainer.channel.value = 1
    trainer.model_name.value = "second-channel"

    train(trainer, run_widget)

    spec = read_spec(user_model_folder / "second-channel.safetensors")
    assert spec.provenance["data"]["channel"] == 1 and spec.in_channels == 1
    segmentation.image.value = image_layer
    assert segmentation.channel.value is None
    segmentation.model.value = "second-channel"
    assert segmentation.channel.value == 1  # preselected from the model's provenance

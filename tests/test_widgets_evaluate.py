"""The "Evaluate segmentation" dock widget, opened through the installed manifest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from napari.layers import Labels

from napari_unet_maskrcnn.napari_plugin import widget_tables as _widget_tables
from napari_unet_maskrcnn.napari_plugin.layer_outputs import MARKER

WIDGET = "Evaluate segmentation"


def prediction_and_corrected_copy():
    """Prediction: 1 and 2 right, 3 cut in half (IoU 0.5), 4 spurious. The corrected copy
    has 3 whole, 4 erased and a nucleus 5 the prediction missed."""
    prediction = np.zeros((40, 40), np.uint16)
    prediction[2:10, 2:10] = 1
    prediction[2:10, 20:28] = 2
    prediction[20:30, 2:7] = 3
    prediction[20:24, 30:34] = 4
    corrected = prediction.copy()
    corrected[20:30, 7:12] = 3
    corrected[prediction == 4] = 0
    corrected[32:38, 20:26] = 5
    return prediction, corrected


@pytest.fixture
def evaluate(viewer, dock):
    prediction, corrected = prediction_and_corrected_copy()
    viewer.add_labels(prediction, name="cells", scale=(0.5, 0.5), translate=(10, 20))
    viewer.add_labels(corrected, name="cells corrected", scale=(0.5, 0.5), translate=(10, 20))
    return dock(WIDGET)


def test_scores_and_review_layers_of_a_prediction_against_its_corrected_copy(viewer, evaluate, run_widget):
    assert evaluate.prediction.value.name == "cells"
    assert evaluate.ground_truth.value.name == "cells corrected"  # the newest other layer
    assert not evaluate.class_maps.value and evaluate.objects_3d.native.isHidden()

    run_widget(evaluate)

    scores = evaluate.scores.frame
    assert list(scores.columns) == ["IoU", "AP", "precision", "recall", "F1", "PQ", "TP", "FP", "FN"]
    assert list(scores["IoU"]) == ["0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80", "0.85", "0.90", "mean"]
    at_half = scores.iloc[0]
    assert (at_half["TP"], at_half["FP"], at_half["FN"]) == (3, 1, 1)
    assert at_half["AP"] == pytest.approx(3 / 5)
    assert at_half["precision"] == pytest.approx(3 / 4) and at_half["recall"] == pytest.approx(3 / 4)
    assert at_half["PQ"] == pytest.approx(2.5 / 4)
    above = scores.iloc[1]  # object 3 no longer matches
    assert (above["TP"], above["FP"], above["FN"]) == (2, 2, 2)
    assert scores.iloc[-1]["AP"] == pytest.approx(scores["AP"].iloc[:-1].mean())
    assert evaluate.scores.table.shape == (10, 9) and evaluate.scores.export_button.enabled
    assert evaluate.status.value.startswith("1 plane: AP 0.600 at IoU 0.50")

    prediction, corrected = prediction_and_corrected_copy()
    matched = viewer.layers["cells matched"]
    false_positives = viewer.layers["cells false positives"]
    missed = viewer.layers["cells corrected missed"]
    assert all(isinstance(layer, Labels) for layer in (matched, false_positives, missed))
    np.testing.assert_array_equal(matched.data, np.where(np.isin(prediction, [1, 2, 3]), prediction, 0))
    np.testing.assert_array_equal(false_positives.data, np.where(prediction == 4, 4, 0))
    np.testing.assert_array_equal(missed.data, np.where(corrected == 5, 5, 0))
    for layer in (matched, false_positives, missed):
        np.testing.assert_allclose(layer.scale, (0.5, 0.5))
        np.testing.assert_allclose(layer.translate, (10, 20))


def test_a_stricter_review_threshold_and_a_second_run(viewer, evaluate, run_widget):
    evaluate.review_iou.value = 0.6
    run_widget(evaluate)
    run_widget(evaluate)  # the untouched review layers are replaced
    assert len(viewer.layers) == 5
    assert set(np.unique(viewer.layers["cells matched"].data)) == {0, 1, 2}
    assert set(np.unique(viewer.layers["cells false positives"].data)) == {0, 3, 4}
    assert set(np.unique(viewer.layers["cells corrected missed"].data)) == {0, 3, 5}


def test_z_stack_as_3d_objects_or_plane_by_plane(viewer, dock, run_widget):
    truth = np.zeros((2, 10, 10), np.uint16)
    truth[:, 0:4, 0:4] = 1
    truth[:, 6:10, 6:10] = 2
    prediction = truth.copy()
    prediction[1] = 0
    prediction[1, 0:4, 0:2] = 5
    viewer.add_labels(prediction, name="stack")
    viewer.add_labels(truth, name="stack truth")
    widget = dock(WIDGET)
    assert not widget.objects_3d.native.isHidden() and widget.objects_3d.value

    run_widget(widget)
    first = widget.scores.frame.iloc[0]
    assert (first["TP"], first["FP"], first["FN"]) == (2, 1, 0)
    assert widget.status.value.startswith("1 volume:")

    widget.objects_3d.value = False
    run_widget(widget)
    first = widget.scores.frame.iloc[0]
    assert (first["TP"], first["FP"], first["FN"]) == (3, 0, 1)
    assert widget.status.value.startswith("2 planes:")
    np.testing.assert_array_equal(viewer.layers["stack truth missed"].data[1], np.where(truth[1] == 2, 2, 0))


def test_class_maps_of_the_unet_widget_get_per_class_scores(viewer, dock, run_widget):
    truth = np.array([[1, 1, 2, 0], [1, 2, 2, 0]], np.uint8)
    prediction = np.array([[1, 2, 2, 2], [1, 2, 1, 1]], np.uint8)
    names = pd.DataFrame({"index": [0, 1, 2], "class_name": ["background", "nucleus", "boundary"]})
    viewer.add_labels(prediction, name="img classes", features=names,
                      metadata={MARKER: {"source": "img", "output": "classes"}})
    viewer.add_labels(truth, name="annotation")
    widget = dock(WIDGET)
    assert widget.class_maps.value  # a U-Net output: class maps
    assert not widget.ignore_zero.native.isHidden() and widget.review_iou.native.isHidden()
    widget.ignore_zero.value = True

    run_widget(widget)

    scores = widget.scores.frame
    assert list(scores["name"]) == ["nucleus", "boundary", ""]
    assert list(scores["IoU"]) == pytest.approx([0.5, 0.5, 0.5])
    assert list(scores["Dice"]) == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert widget.status.value == "Mean IoU 0.500 over 2 classes."
    assert len(viewer.layers) == 2  # no review layers for class maps

    widget.ignore_zero.value = False
    run_widget(widget)
    assert list(widget.scores.frame["class"]) == [0, 1, 2, "mean"]


def test_csv_export(evaluate, tmp_path, monkeypatch, new_notifications, run_widget):
    run_widget(evaluate)
    target = tmp_path / "scores"
    monkeypatch.setattr(_widget_tables, "ask_csv_path", lambda parent=None, caption="": f"{target}.csv")

    evaluate.scores.export_button.native.click()

    saved = pd.read_csv(f"{target}.csv")
    assert list(saved.columns) == list(evaluate.scores.frame.columns)
    assert saved["AP"].iloc[0] == pytest.approx(3 / 5)
    assert saved["IoU"].iloc[-1] == "mean" and np.isnan(saved["TP"].iloc[-1])
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]  # no temporary file left
    assert any("scores.csv" in message for message in new_notifications())


def test_layers_of_different_shapes_are_reported(viewer, dock, new_notifications, run_widget):
    viewer.add_labels(np.zeros((20, 20), np.uint16), name="small")
    viewer.add_labels(np.zeros((20, 30), np.uint16), name="wide")
    widget = dock(WIDGET)

    run_widget(widget)

    assert any("(20, 20)" in message and "(20, 30)" in message and "same image" in message
               for message in new_notifications())
    assert widget.status.value == "Failed; see the notification."
    assert len(viewer.layers) == 2 and widget.scores.frame.empty


def test_nothing_to_evaluate_is_explained(viewer, dock, new_notifications, run_widget):
    widget = dock(WIDGET)
    run_widget(widget)
    assert any("two Labels layers" in message for message in new_notifications())


def test_a_unet_class_map_against_instance_ground_truth_is_scored_as_objects(viewer, dock):
    """The ground truth's content (many objects) wins over the prediction's "classes" mark."""
    truth = np.zeros((60, 60), np.uint16)
    for i in range(20):
        truth[(i // 5) * 12 : (i // 5) * 12 + 8, (i % 5) * 12 : (i % 5) * 12 + 8] = i + 1
    viewer.add_labels((truth > 0).astype(np.uint8), name="img classes",
                      metadata={MARKER: {"source": "img", "output": "classes"}})
    viewer.add_labels(truth, name="nuclei ground truth")
    widget = dock(WIDGET)
    assert widget.prediction.value.name == "img classes"
    assert not widget.class_maps.value

    viewer.add_labels((truth > 0).astype(np.uint8) + (truth > 10), name="painted classes")  # 2 classes, 20 blobs
    widget.ground_truth.value = viewer.layers["painted classes"]
    assert widget.class_maps.value


def test_review_layers_have_fixed_colours_and_the_table_fixed_decimals(viewer, evaluate, run_widget):
    run_widget(evaluate)

    for name, object_id, rgb in (("cells matched", 1, [0, 1, 0]), ("cells false positives", 4, [1, 0, 1]),
                                 ("cells corrected missed", 5, [1, 1, 0])):
        np.testing.assert_allclose(viewer.layers[name].get_color(object_id), [*rgb, 1])
    assert evaluate.scores.table.data[0][1] == "0.600"  # AP at IoU 0.50, fixed decimals
    from qtpy.QtWidgets import QHeaderView

    header = evaluate.scores.table.native.horizontalHeader()
    assert header.sectionResizeMode(0) == QHeaderView.ResizeMode.Interactive


def test_evaluation_runs_in_a_worker_and_cancel_adds_nothing(viewer, dock, qtbot, slow_calls):
    from napari_unet_maskrcnn.core import evaluation

    truth = np.zeros((40, 32, 32), np.uint16)
    truth[:, 4:12, 4:12] = 1
    viewer.add_labels(truth, name="movie", metadata={"axes": "TYX"})
    viewer.add_labels(truth.copy(), name="movie truth", metadata={"axes": "TYX"})
    widget = dock(WIDGET)
    units = slow_calls(evaluation, "match_counts")

    widget.evaluate_button.native.click()
    assert widget.runner.running and widget.cancel_button.enabled  # returned at once: a worker runs it
    qtbot.waitUntil(lambda: widget.status.value.startswith("plane"), timeout=30_000)
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: not widget.runner.running, timeout=30_000)

    assert 0 < len(units) < 40  # stopped between planes
    assert widget.status.value.startswith("Cancelled")
    assert [layer.name for layer in viewer.layers] == ["movie", "movie truth"]
    assert widget.scores.frame.empty and widget.evaluate_button.enabled

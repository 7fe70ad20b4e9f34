"""Evaluation of a segmentation against ground truth, on hand-computed cases."""

import numpy as np
import pytest

from napari_unet_maskrcnn.core.evaluation import (
    evaluate_classes,
    evaluate_instances,
    match_objects,
    review_masks,
    score_table,
)
from napari_unet_maskrcnn.core.metrics import match_counts


def paint(shape, boxes: dict) -> np.ndarray:
    """Label image with ``boxes[label] = (y0, y1, x0, x1)``."""
    image = np.zeros(shape, np.int32)
    for label, (y0, y1, x0, x1) in boxes.items():
        image[y0:y1, x0:x1] = label
    return image


# truth: 1 (16 px), 2 (16 px), 3 (4 px); prediction: 7 = 2 exactly, 4 = left half of 1
# (IoU 8/16 = 0.5), 9 a stray object; 3 is found by nothing
TRUTH = paint((12, 12), {1: (0, 4, 0, 4), 2: (6, 10, 6, 10), 3: (10, 12, 0, 2)})
PRED = paint((12, 12), {4: (0, 4, 0, 2), 7: (6, 10, 6, 10), 9: (0, 2, 9, 11)})


def test_match_objects_names_matches_false_positives_and_missed():
    matched_true, matched_pred, false_positives, missed = match_objects(TRUTH, PRED, iou_threshold=0.5)
    assert matched_true.tolist() == [1, 2] and matched_pred.tolist() == [4, 7]
    assert false_positives.tolist() == [9]
    assert missed.tolist() == [3]

    matched_true, matched_pred, false_positives, missed = match_objects(TRUTH, PRED, iou_threshold=0.6)
    assert (matched_true.tolist(), matched_pred.tolist()) == ([2], [7])
    assert false_positives.tolist() == [4, 9] and missed.tolist() == [1, 3]


def test_match_objects_is_one_to_one():
    truth = paint((4, 8), {1: (0, 4, 0, 8)})
    pred = paint((4, 8), {5: (0, 4, 0, 5), 6: (0, 4, 5, 8)})  # IoU 20/32 and 12/32
    matched_true, matched_pred, false_positives, missed = match_objects(truth, pred)
    assert (matched_true.tolist(), matched_pred.tolist()) == ([1], [5])
    assert false_positives.tolist() == [6] and missed.size == 0


def test_match_objects_agrees_with_the_counts():
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 40), np.int32)
    pred = np.zeros((40, 40), np.int32)
    for label in range(1, 15):
        y, x = rng.integers(0, 34, 2)
        truth[y:y + 6, x:x + 6] = label
        dy, dx = rng.integers(-2, 3, 2)
        pred[max(y + dy, 0):y + dy + 6, max(x + dx, 0):x + dx + 6] = 20 + label
    for thresh, counts in zip((0.3, 0.5, 0.7), match_counts(truth, pred, (0.3, 0.5, 0.7))):
        matched_true, matched_pred, false_positives, missed = match_objects(truth, pred, thresh)
        assert len(matched_true) == len(matched_pred) == counts.tp
        assert (len(false_positives), len(missed)) == (counts.fp, counts.fn)


def test_evaluate_instances_at_each_threshold():
    evaluation = evaluate_instances(TRUTH, PRED, thresholds=(0.5, 0.6))
    at_half, above = evaluation["thresholds"]
    assert (at_half["tp"], at_half["fp"], at_half["fn"]) == (2, 1, 1)
    assert at_half["accuracy"] == pytest.approx(2 / 4)
    assert at_half["precision"] == pytest.approx(2 / 3) and at_half["recall"] == pytest.approx(2 / 3)
    assert at_half["panoptic_quality"] == pytest.approx(1.5 / (2 + 1 / 2 + 1 / 2))
    assert (above["tp"], above["fp"], above["fn"]) == (1, 2, 2)
    assert evaluation["mean"]["accuracy"] == pytest.approx((2 / 4 + 1 / 5) / 2)
    assert (evaluation["units"], evaluation["unit"]) == (1, "plane")


def test_score_table_has_a_row_per_threshold_and_the_mean():
    table = score_table(evaluate_instances(TRUTH, PRED))
    assert list(table) == ["IoU", "AP", "precision", "recall", "F1", "PQ", "TP", "FP", "FN"]
    assert table["IoU"] == ["0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80", "0.85", "0.90", "mean"]
    assert table["AP"][0] == pytest.approx(0.5) and table["TP"][:2] == [2, 1]
    assert table["AP"][-1] == pytest.approx(np.mean(table["AP"][:-1]))
    assert table["TP"][-1] is None


def two_planes():
    """Objects 1 and 2 in both z-planes (ids linked); the prediction lost 2 and halved 1 in plane 1."""
    truth = np.zeros((2, 10, 10), np.int32)
    truth[:, 0:4, 0:4] = 1
    truth[:, 6:10, 6:10] = 2
    pred = truth.copy()
    pred[1] = 0
    pred[1, 0:4, 0:2] = 5
    return truth, pred


def test_z_stack_as_volumes_or_planes():
    truth, pred = two_planes()
    # 3D: 1 and 2 each keep 16 of 32 voxels (IoU 0.5); 5 (8 voxels of 1) is a false positive
    volumes = evaluate_instances(truth, pred, thresholds=(0.5,))
    assert (volumes["units"], volumes["unit"]) == (1, "volume")
    stats = volumes["thresholds"][0]
    assert (stats["tp"], stats["fp"], stats["fn"]) == (2, 1, 0)
    # per plane: plane 0 all right; plane 1: 5 matches 1 (IoU 0.5), 2 is missed
    planes = evaluate_instances(truth, pred, thresholds=(0.5,), objects_3d=False)
    stats = planes["thresholds"][0]
    assert (planes["units"], planes["unit"]) == (2, "plane")
    assert (stats["tp"], stats["fp"], stats["fn"]) == (3, 0, 1)


def test_time_points_are_matched_separately():
    # id 1 moves between time points: as one 3D object it would only half match
    truth = np.zeros((2, 8, 8), np.int32)
    truth[0, 0:4, 0:4] = 1
    truth[1, 4:8, 4:8] = 1
    pred = truth * 3
    stats = evaluate_instances(truth, pred, thresholds=(0.5,), axes="TYX")
    assert stats["units"] == 2 and stats["thresholds"][0]["tp"] == 2
    tzyx = np.stack([np.stack([truth[0]] * 3), np.stack([truth[1]] * 3)])  # (T, Z, Y, X)
    volumes = evaluate_instances(tzyx, tzyx, thresholds=(0.5,))
    assert (volumes["units"], volumes["unit"], volumes["thresholds"][0]["tp"]) == (2, "volume", 2)
    planes = evaluate_instances(tzyx, tzyx, thresholds=(0.5,), objects_3d=False)
    assert (planes["units"], planes["thresholds"][0]["tp"]) == (6, 6)


def test_review_masks():
    matched, false_positives, missed = review_masks(TRUTH, PRED, iou_threshold=0.5)
    assert matched.dtype == PRED.dtype and matched.shape == PRED.shape
    np.testing.assert_array_equal(matched, np.where(np.isin(PRED, [4, 7]), PRED, 0))
    np.testing.assert_array_equal(false_positives, np.where(PRED == 9, 9, 0))
    np.testing.assert_array_equal(missed, np.where(TRUTH == 3, 3, 0))


def test_review_masks_per_plane():
    truth, pred = two_planes()
    matched, false_positives, missed = review_masks(truth, pred, objects_3d=False)
    np.testing.assert_array_equal(matched, pred)
    assert not false_positives.any()
    np.testing.assert_array_equal(missed[0], 0)
    np.testing.assert_array_equal(missed[1], np.where(truth[1] == 2, 2, 0))


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r"shape \(12, 12\).*\(12, 10\)"):
        evaluate_instances(TRUTH, PRED[:, :10])
    with pytest.raises(ValueError, match="same image"):
        review_masks(TRUTH, PRED[:, :10])


def test_empty_images_score_zero():
    empty = np.zeros((6, 6), np.int32)
    stats = evaluate_instances(empty, empty, thresholds=(0.5,))["thresholds"][0]
    assert (stats["tp"], stats["fp"], stats["fn"], stats["accuracy"]) == (0, 0, 0, 0.0)
    assert all(mask.sum() == 0 for mask in review_masks(empty, empty))


def test_per_class_iou_and_dice():
    truth = np.array([[1, 1, 2, 0], [1, 2, 2, 0]])
    pred = np.array([[1, 2, 2, 2], [1, 2, 1, 1]])
    table = evaluate_classes(truth, pred, class_names=["unlabelled", "nucleus", "boundary"], ignore_label=0)
    # 6 labelled pixels; each class is true on 3, predicted on 3 of them, right on 2
    assert table["class"] == [1, 2, "mean"]
    assert table["name"] == ["nucleus", "boundary", ""]
    assert table["IoU"] == pytest.approx([0.5, 0.5, 0.5])
    assert table["Dice"] == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert table["pixels"] == [3, 3, None]

    everything = evaluate_classes(truth, pred)
    # class 0: true on 2 pixels, predicted on none
    assert everything["class"] == [0, 1, 2, "mean"] and everything["name"][0] == "class 0"
    assert everything["IoU"][0] == 0.0
    assert everything["IoU"][1] == pytest.approx(2 / 5)  # true 3, predicted 4, right 2


def test_class_maps_reject_instance_labels():
    labels = np.arange(2000).reshape(40, 50)
    with pytest.raises(ValueError, match="instance labels"):
        evaluate_classes(labels, labels)


def test_guess_label_kind_from_the_content():
    from napari_unet_maskrcnn.core.evaluation import guess_label_kind

    instances = np.zeros((60, 60), np.uint16)
    for i in range(20):  # 20 objects: more values than a class map has
        instances[(i // 5) * 12 : (i // 5) * 12 + 8, (i % 5) * 12 : (i % 5) * 12 + 8] = i + 1
    classes = (instances > 0).astype(np.uint8) + (instances > 10)  # 2 classes over many regions
    few = np.zeros((10, 10), np.uint8)
    few[1:3, 1:3], few[5:8, 5:8] = 1, 2  # one region per value: could be either
    assert guess_label_kind(instances) == "instances"
    assert guess_label_kind(classes) == "classes"
    assert guess_label_kind(few) is None and guess_label_kind(np.zeros((5, 5), np.uint8)) is None
    assert guess_label_kind(np.zeros((5, 5), np.float32)) is None


def test_generator_forms_report_each_plane_and_stop_there():
    from napari_unet_maskrcnn.core.evaluation import iter_evaluate_classes, iter_evaluate_instances
    from napari_unet_maskrcnn.core.progress import Cancelled, drain

    truth = np.stack([paint((12, 12), {1: (0, 4, 0, 4), 2: (6, 10, 6, 10)})] * 3)
    pred = truth.copy()
    pred[2, 6:10, 6:10] = 0
    events = []
    evaluation, review = drain(iter_evaluate_instances(truth, pred, (0.5,), axes="TYX", review_iou=0.5),
                               on_progress=events.append)
    assert [(e.done, e.total, e.stage) for e in events] == [(1, 3, "plane"), (2, 3, "plane"), (3, 3, "plane")]
    assert evaluation == evaluate_instances(truth, pred, (0.5,), axes="TYX")
    for ours, theirs in zip(review, review_masks(truth, pred, 0.5, axes="TYX")):
        np.testing.assert_array_equal(ours, theirs)
    assert drain(iter_evaluate_instances(truth, pred, (0.5,)))[1] is None  # no review asked

    with pytest.raises(Cancelled):
        drain(iter_evaluate_instances(truth, pred, axes="TYX"), should_cancel=lambda: True)

    classes = (truth > 0).astype(np.uint8)
    events.clear()
    table = drain(iter_evaluate_classes(classes, classes), on_progress=events.append)
    assert len(events) == 3 and table == evaluate_classes(classes, classes)

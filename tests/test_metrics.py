"""Metrics checked on hand-computed cases (StarDist's matching definitions)."""

import numpy as np
import pytest

from napari_unet_maskrcnn.core.metrics import (
    iou_matrix,
    match_counts,
    matching_dataset,
    semantic_scores,
)


def squares(shape, boxes):
    image = np.zeros(shape, np.int32)
    for label, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        image[y0:y1, x0:x1] = label
    return image


def test_iou_matrix_by_hand():
    truth = squares((10, 10), [(0, 4, 0, 4), (6, 10, 6, 10)])       # 16 px each
    pred = squares((10, 10), [(0, 4, 0, 2), (6, 10, 6, 10), (0, 1, 9, 10)])
    iou = iou_matrix(truth, pred)
    np.testing.assert_allclose(iou, [[8 / 16, 0, 0], [0, 1, 0]])


def test_counts_at_thresholds():
    truth = squares((10, 10), [(0, 4, 0, 4), (6, 10, 6, 10)])
    pred = squares((10, 10), [(0, 4, 0, 2), (6, 10, 6, 10), (0, 1, 9, 10)])
    at_half, above = match_counts(truth, pred, thresholds=(0.5, 0.55))
    # IoU 0.5 >= 0.5 is a match: TP 2, the stray pixel is FP
    assert (at_half.tp, at_half.fp, at_half.fn) == (2, 1, 0)
    stats = at_half.stats()
    assert stats["accuracy"] == pytest.approx(2 / 3)
    assert stats["precision"] == pytest.approx(2 / 3) and stats["recall"] == 1.0
    assert stats["f1"] == pytest.approx(4 / 5)
    assert stats["panoptic_quality"] == pytest.approx(1.5 / (2 + 0.5))
    assert (above.tp, above.fp, above.fn) == (1, 2, 1)


def test_hungarian_prefers_the_one_to_one_assignment():
    # one true object split in two predictions: only one may match
    truth = squares((4, 8), [(0, 4, 0, 8)])
    pred = squares((4, 8), [(0, 4, 0, 5), (0, 4, 5, 8)])
    (counts,) = match_counts(truth, pred, thresholds=(0.5,))
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 0)
    assert counts.sum_matched_iou == pytest.approx(20 / 32)


def test_dataset_sums_counts_before_ratios():
    good = squares((6, 6), [(0, 2, 0, 2), (3, 5, 3, 5)])
    empty = np.zeros((6, 6), np.int32)
    lone = squares((6, 6), [(0, 2, 0, 2)])
    # image 1: 2 TP; image 2: 1 FN (nothing predicted)
    stats = matching_dataset([(good, good), (lone, empty)], thresholds=(0.5,))[0]
    assert (stats["tp"], stats["fp"], stats["fn"]) == (2, 0, 1)
    assert stats["accuracy"] == pytest.approx(2 / 3)  # not the mean of per-image 1.0 and 0.0
    assert matching_dataset([(empty, empty)], thresholds=(0.5,))[0]["accuracy"] == 0.0


def test_default_thresholds_are_half_to_ninety():
    stats = matching_dataset([(squares((4, 4), [(0, 2, 0, 2)]),) * 2])
    assert [s["thresh"] for s in stats] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9]
    assert all(s["accuracy"] == 1.0 for s in stats)


def test_semantic_iou_and_dice_ignore_unlabelled():
    truth = np.array([[1, 1, 2, 0], [1, 2, 2, 0]])
    pred = np.array([[1, 2, 2, 2], [1, 2, 1, 1]])
    scores = semantic_scores(truth, pred, n_classes=3, ignore_label=0)
    # among the 6 labelled pixels each class is true on 3, predicted on 3, right on 2:
    # IoU 2 / (3 + 3 - 2), Dice 2 * 2 / (3 + 3)
    np.testing.assert_allclose(scores["iou"][1:], [2 / 4, 2 / 4])
    np.testing.assert_allclose(scores["dice"][1:], [4 / 6, 4 / 6])
    assert np.isnan(scores["iou"][0])

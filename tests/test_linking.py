"""z-linking of per-slice instances by IoU."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_maskrcnn.core.instances import PlaneInstances
from napari_unet_maskrcnn.core.linking import link_slices, overlap_ious

SHAPE = (40, 60)


def plane(objects):
    """PlaneInstances from ``[(y0, y1, x0, x1, score, class), ...]``: object i gets label i + 1."""
    labels = np.zeros(SHAPE, dtype=np.int32)
    for i, (y0, y1, x0, x1, _, _) in enumerate(objects):
        labels[y0:y1, x0:x1] = i + 1
    scores = np.asarray([o[4] for o in objects], dtype=np.float32)
    classes = np.asarray([o[5] for o in objects], dtype=np.int32)
    return PlaneInstances(labels, scores, classes)


def moving_stack():
    """A drifts right, B drifts down then vanishes, C appears in slice 1. Labels reshuffled per slice."""
    return [
        plane([(5, 15, 5, 15, 0.9, 1), (25, 35, 30, 40, 0.7, 2)]),  # A, B
        plane([(26, 36, 30, 40, 0.8, 2), (5, 15, 7, 17, 0.6, 1), (5, 12, 45, 55, 0.5, 1)]),  # B, A, C
        plane([(5, 12, 46, 56, 0.95, 2), (5, 15, 9, 19, 0.4, 1)]),  # C, A
    ]


def test_moving_objects_keep_their_id_and_new_ones_get_new_ids():
    labels, scores, classes = link_slices(moving_stack(), iou_threshold=0.3)
    assert labels.shape == (3, *SHAPE) and labels.dtype == np.int32
    a, b, c = labels[0, 10, 10], labels[0, 30, 35], labels[1, 8, 50]
    assert (a, b, c) == (1, 2, 3)  # numbered by first appearance
    assert labels[1, 10, 12] == a and labels[2, 10, 14] == a
    assert labels[1, 30, 35] == b
    assert labels[2, 8, 50] == c
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.95])  # best piece of each
    assert classes.tolist() == [1, 2, 2]  # class of the best piece
    assert scores.dtype == np.float32 and classes.dtype == np.int32


@pytest.mark.parametrize("threshold", [0.0, -1.0, 1.5])
def test_no_linking_gives_every_piece_its_own_id(threshold):
    labels, scores, classes = link_slices(moving_stack(), iou_threshold=threshold)
    assert set(np.unique(labels)) == set(range(8))
    for z in range(3):
        assert len(set(np.unique(labels[z])) - {0}) == len(moving_stack()[z].scores)
    assert scores.shape == classes.shape == (7,)


def test_low_overlap_is_not_linked():
    stack = [plane([(0, 10, 0, 10, 0.9, 1)]), plane([(0, 10, 6, 16, 0.9, 1)])]  # IoU 40/160 = 0.25
    assert link_slices(stack, iou_threshold=0.3)[0].max() == 2
    assert link_slices(stack, iou_threshold=0.2)[0].max() == 1


def test_a_split_object_links_one_piece_only():
    stack = [plane([(0, 20, 0, 20, 0.9, 1)]), plane([(0, 20, 0, 8, 0.9, 1), (0, 20, 8, 20, 0.9, 1)])]
    labels, _, _ = link_slices(stack, iou_threshold=0.3)
    assert labels[1, 5, 15] == 1  # the larger half (IoU 0.6) keeps the id
    assert labels[1, 5, 2] == 2  # the smaller (IoU 0.4) is matched no more: a new id


def test_gap_in_z_breaks_the_link():
    stack = [plane([(0, 10, 0, 10, 0.9, 1)]), plane([]), plane([(0, 10, 0, 10, 0.9, 1)])]
    labels, scores, _ = link_slices(stack)
    assert labels[0, 5, 5] == 1 and labels[2, 5, 5] == 2 and len(scores) == 2


def test_single_plane_and_empty_input():
    labels, scores, classes = link_slices([plane([(0, 10, 0, 10, 0.5, 3)])])
    assert labels.shape == (1, *SHAPE) and scores.tolist() == [0.5] and classes.tolist() == [3]
    with pytest.raises(ValueError):
        link_slices([])


def test_overlap_ious_are_sparse_and_exact():
    a = np.array([[1, 1, 0, 2], [1, 1, 0, 2]])
    b = np.array([[0, 3, 3, 0], [0, 3, 3, 0]])
    pairs_a, pairs_b, iou = overlap_ious(a, b)
    assert pairs_a.tolist() == [1] and pairs_b.tolist() == [3]  # 2 and 3 do not touch: no entry
    np.testing.assert_allclose(iou, [2 / 6])

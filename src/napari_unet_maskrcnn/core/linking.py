"""Link per-slice instances through z by overlap (like cellpose's ``stitch_threshold``).

Each slice's objects are matched one-to-one to the previous slice's, greedily by
decreasing IoU; a match with IoU >= ``iou_threshold`` carries the previous object's id,
any other object starts a new id. IoUs are computed sparsely from the pairs of labels that
actually overlap, so the cost is one pass over each pair of slices whatever the number of
objects.
"""

from __future__ import annotations

import numpy as np

from .instances import PlaneInstances
from .settings import SEGMENT_SETTINGS

Z_LINK_IOU = SEGMENT_SETTINGS["z_link_iou"].default
"""The default IoU that links objects across z (declared in :mod:`.settings`)."""


def link_slices(
    planes: list[PlaneInstances], iou_threshold: float = Z_LINK_IOU
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give objects that continue from slice to slice one id over the stack.

    Args:
        planes: one :class:`PlaneInstances` per z slice, all of the same (H, W).
        iou_threshold: smallest IoU linking an object to one in the previous slice;
            ``<= 0`` or ``> 1`` means no linking (every object keeps its own id).

    Returns:
        ``labels`` int32 (Z, H, W) with ids ``1..n`` unique over the stack (numbered in
        order of first appearance), ``scores`` float32 (n,) the *highest* score of the
        linked pieces, ``classes`` int32 (n,) the class of that highest-scoring piece.
    """
    if not planes:
        raise ValueError("link_slices needs at least one plane.")
    linking = 0 < iou_threshold <= 1
    matches = [
        match_by_iou(plane.labels, previous.labels, iou_threshold) if linking and z > 0 else None
        for z, (previous, plane) in enumerate(zip([None, *planes[:-1]], planes))
    ]
    ids, scores, classes = link_ids([p.scores for p in planes], [p.classes for p in planes], matches)
    labels = np.zeros((len(planes),) + planes[0].labels.shape, dtype=np.int32)
    for z, plane in enumerate(planes):
        labels[z] = ids[z][plane.labels]
    return labels, scores, classes


def link_ids(
    plane_scores: list[np.ndarray],
    plane_classes: list[np.ndarray],
    matches: list[tuple[np.ndarray, np.ndarray] | None],
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Stack ids of every slice's objects, given the matches of each slice to the previous one.

    Args:
        plane_scores, plane_classes: per slice, the score and class of its labels ``1..n``.
        matches: per slice, ``(labels here, labels in the previous slice)`` or None.

    Returns:
        ``ids``: per slice, int32 (n + 1,) mapping its labels (0 = background) to stack ids;
        ``scores``, ``classes`` of the stack ids, as in :func:`link_slices`.
    """
    scores: list[float] = []
    classes: list[int] = []
    all_ids = []
    previous_ids = np.zeros(1, dtype=np.int32)
    for plane_score, plane_class, match in zip(plane_scores, plane_classes, matches):
        ids = np.zeros(len(plane_score) + 1, dtype=np.int32)  # plane label -> stack id
        if match is not None:
            mine, theirs = match
            ids[mine] = previous_ids[theirs]
        for label in range(1, ids.size):
            score, class_id = float(plane_score[label - 1]), int(plane_class[label - 1])
            if ids[label] == 0:
                scores.append(score)
                classes.append(class_id)
                ids[label] = len(scores)
            elif score > scores[ids[label] - 1]:
                scores[ids[label] - 1], classes[ids[label] - 1] = score, class_id
        all_ids.append(ids)
        previous_ids = ids
    return all_ids, np.asarray(scores, dtype=np.float32), np.asarray(classes, dtype=np.int32)


def match_by_iou(a: np.ndarray, b: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches between the objects of two label images, greedily by IoU.

    Args:
        a, b: int label images of the same shape (0 = background).
        iou_threshold: smallest IoU of a match.

    Returns:
        ``(labels_in_a, labels_in_b)`` int64 arrays of matched pairs.
    """
    return greedy_matches(*overlap_ious(a, b), iou_threshold)


def greedy_matches(
    pairs_a: np.ndarray, pairs_b: np.ndarray, iou: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches from overlapping pairs (sorted by ``(a, b)``), best IoU first."""
    order = np.argsort(-iou, kind="stable")
    used_a, used_b = set(), set()
    matches = []
    for i in order[iou[order] >= iou_threshold]:
        la, lb = int(pairs_a[i]), int(pairs_b[i])
        if la not in used_a and lb not in used_b:
            used_a.add(la)
            used_b.add(lb)
            matches.append((la, lb))
    matched = np.asarray(matches, dtype=np.int64).reshape(-1, 2)
    return matched[:, 0], matched[:, 1]


def overlap_ious(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every pair of objects of ``a`` and ``b`` that share at least one pixel.

    Returns ``(labels_in_a, labels_in_b, iou float64)``, one entry per overlapping pair.
    """
    a, b = a.ravel(), b.ravel()
    both = (a > 0) & (b > 0)
    stride = int(b.max(initial=0)) + 1
    pairs, intersection = np.unique(a[both].astype(np.int64) * stride + b[both], return_counts=True)
    pairs_a, pairs_b = pairs // stride, pairs % stride
    area_a, area_b = np.bincount(a), np.bincount(b)
    union = area_a[pairs_a] + area_b[pairs_b] - intersection
    return pairs_a, pairs_b, intersection / union

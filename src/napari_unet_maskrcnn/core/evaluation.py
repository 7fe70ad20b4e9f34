"""Scoring a segmentation against ground truth (e.g. the user's corrected copy of it).

Instances (:func:`evaluate_instances`): StarDist's matching from :mod:`.metrics` — the
one-to-one Hungarian assignment at each IoU threshold, counts summed over the evaluated
units before the ratios are taken. Which units are evaluated depends on the axes:

- ``YX``: the image.
- ``ZYX``: with ``objects_3d=True`` (the default) the whole volume, for ids linked across
  z (e.g. Mask R-CNN's z-linked output); with ``False`` each z-plane, counts summed.
- ``TYX`` / ``TZYX``: each time point (each of its planes, or its volume when
  ``objects_3d``), counts summed over time points: ids are not linked across time.

:func:`match_objects` names the matched, false-positive and missed objects of one unit
from the same assignment; :func:`review_masks` paints them into three label images.

Class maps (:func:`evaluate_classes`): per-class IoU and Dice over all pixels.

Each has a generator form (:func:`iter_evaluate_instances`, :func:`iter_evaluate_classes`)
that yields a :class:`~.progress.ProgressEvent` after each unit (plane or volume) and can
be stopped there (the napari widget's Cancel); the plain functions drain it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat

import numpy as np
from scipy import ndimage

from .axes import LABEL_CANONICAL, to_canonical, validate_axes
from .metrics import (
    DEFAULT_THRESHOLDS,
    class_confusion,
    confusion_scores,
    labelled_iou_matrix,
    match_counts,
    matched_pairs,
)
from .progress import ProgressEvent, ProgressGenerator, drain

RATIOS = ("accuracy", "precision", "recall", "f1", "panoptic_quality")
"""Statistics of :meth:`MatchCounts.stats` averaged over thresholds; ``accuracy`` is AP."""
MAX_CLASSES = 1024
"""A class map with larger values is taken for an instance label image."""


def evaluate_instances(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    axes: str | None = None,
    objects_3d: bool | None = None,
) -> dict:
    """Instance scores of ``y_pred`` against ``y_true`` at each IoU threshold.

    Args:
        y_true, y_pred: integer label images of the same shape, 0 = background.
        axes: letters of TZYX for their dimensions; guessed from ndim when None
            (YX, ZYX, TZYX).
        objects_3d: match whole Z volumes (True) or single planes (False); default: True
            when there is a Z axis. See the module docstring.

    Returns:
        ``{"thresholds": [stats per threshold], "mean": {ratio: mean over thresholds},
        "units": number of planes or volumes evaluated, "unit": "plane" | "volume"}``;
        each stats dict holds ``thresh, tp, fp, fn, n_true, n_pred, precision, recall,
        accuracy`` (= AP = TP / (TP + FP + FN)), ``f1, panoptic_quality`` and more (see
        :meth:`~.metrics.MatchCounts.stats`).

    Raises:
        ValueError: the images differ in shape, or the axes do not fit them.
    """
    evaluation, _ = drain(iter_evaluate_instances(y_true, y_pred, thresholds, axes, objects_3d))
    return evaluation


def iter_evaluate_instances(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    axes: str | None = None,
    objects_3d: bool | None = None,
    review_iou: float | None = None,
) -> ProgressGenerator[tuple[dict, tuple[np.ndarray, np.ndarray, np.ndarray] | None]]:
    """:func:`evaluate_instances` and, with ``review_iou``, :func:`review_masks`, unit by unit.

    Yields ``ProgressEvent(done, units, "plane" | "volume")`` after each unit; a caller that
    stops the generator there gets nothing.

    Returns:
        ``(evaluation, review)``: ``evaluation`` as :func:`evaluate_instances` returns it;
        ``review`` the ``(matched, false_positives, missed)`` label images of
        :func:`review_masks` at IoU ``review_iou``, or None without it.
    """
    y_true, y_pred, axes, objects_3d = _checked(y_true, y_pred, axes, objects_3d)
    unit = "volume" if objects_3d else "plane"
    units = _unit_count(y_true, axes, objects_3d)
    review = None
    review_views = repeat(None)
    if review_iou is not None:
        review = (np.zeros_like(y_pred), np.zeros_like(y_pred), np.zeros_like(y_true))
        review_views = zip(*(_unit_views(out, axes, objects_3d) for out in review))
    totals = None
    for done, ((truth, pred), outputs) in enumerate(zip(_units(y_true, y_pred, axes, objects_3d), review_views), 1):
        counts = match_counts(truth, pred, thresholds)
        totals = counts if totals is None else [a + b for a, b in zip(totals, counts)]
        if outputs is not None:
            _, matched_ids, false_ids, missed_ids = match_objects(truth, pred, review_iou)
            for out, source, ids in zip(outputs, (pred, pred, truth), (matched_ids, false_ids, missed_ids)):
                out[...] = np.where(np.isin(source, ids), source, 0)
        yield ProgressEvent(done, units, unit)
    if totals is None:
        raise ValueError(f"nothing to evaluate: the label images have shape {y_true.shape}.")
    stats = [c.stats() for c in totals]
    mean = {key: float(np.mean([s[key] for s in stats])) for key in RATIOS}
    return {"thresholds": stats, "mean": mean, "units": units, "unit": unit}, review


def score_table(evaluation: dict) -> dict[str, list]:
    """Columns for display or CSV: one row per IoU threshold and a last row "mean".

    Columns: ``IoU``, ``AP`` (TP / (TP + FP + FN)), ``precision``, ``recall``, ``F1``,
    ``PQ`` (panoptic quality), ``TP``, ``FP``, ``FN`` (None in the mean row).
    """
    names = {"AP": "accuracy", "precision": "precision", "recall": "recall", "F1": "f1",
             "PQ": "panoptic_quality"}
    rows = evaluation["thresholds"]
    table = {"IoU": [f"{row['thresh']:.2f}" for row in rows] + ["mean"]}
    for column, key in names.items():
        table[column] = [row[key] for row in rows] + [evaluation["mean"][key]]
    for column in ("TP", "FP", "FN"):
        table[column] = [row[column.lower()] for row in rows] + [None]
    return table


def match_objects(
    y_true: np.ndarray, y_pred: np.ndarray, iou_threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which objects match, at one IoU threshold (the assignment of :func:`~.metrics.match_counts`).

    Args:
        y_true, y_pred: integer label images of the same shape (any ndim, one unit), 0 = background.

    Returns:
        int64 id arrays ``(matched_true_ids, matched_pred_ids, false_positive_ids,
        missed_true_ids)``: ``matched_true_ids[i]`` matches ``matched_pred_ids[i]``
        (sorted by true id); false positives are predicted objects without a match,
        missed are true objects without a match (both sorted).
    """
    scores, true_ids, pred_ids = labelled_iou_matrix(np.asarray(y_true), np.asarray(y_pred))
    rows, cols = matched_pairs(scores, iou_threshold)
    matched_true = true_ids[rows].astype(np.int64)
    matched_pred = pred_ids[cols].astype(np.int64)
    false_positives = np.setdiff1d(pred_ids, matched_pred).astype(np.int64)
    missed = np.setdiff1d(true_ids, matched_true).astype(np.int64)
    return matched_true, matched_pred, false_positives, missed


def review_masks(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    iou_threshold: float = 0.5,
    axes: str | None = None,
    objects_3d: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label images of the matched, false-positive and missed objects, for review.

    Matching is per unit, as in :func:`evaluate_instances` (same ``axes``, ``objects_3d``).

    Returns:
        ``(matched, false_positives, missed)``, each of the inputs' shape and dtype:
        ``matched`` and ``false_positives`` keep the predicted ids of those objects,
        ``missed`` the true ids of the true objects without a match; 0 elsewhere.
    """
    _, review = drain(iter_evaluate_instances(y_true, y_pred, (iou_threshold,), axes, objects_3d, iou_threshold))
    return review


def evaluate_classes(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str] | None = None,
    ignore_label: int | None = None,
) -> dict[str, list]:
    """Per-class IoU and Dice of two class maps, as table columns (last row: their mean).

    Args:
        y_true, y_pred: non-negative integer class maps of the same shape (any ndim).
        class_names: ``class_names[k]`` names class k; classes beyond it are "class k".
        ignore_label: true class left out (e.g. 0 = unlabelled): its pixels are not
            counted and it has no row.

    Returns:
        Columns ``class`` (value, "mean" in the last row), ``name``, ``IoU``, ``Dice``
        (NaN for a class absent from both maps; the mean ignores NaN) and ``pixels`` (true
        pixels of the class; None in the mean row).

    Raises:
        ValueError: shapes differ, or a map has negative or very large values (not classes).
    """
    return drain(iter_evaluate_classes(y_true, y_pred, class_names, ignore_label))


def iter_evaluate_classes(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str] | None = None,
    ignore_label: int | None = None,
) -> ProgressGenerator[dict[str, list]]:
    """:func:`evaluate_classes`, counting pixels plane by plane (each (Y, X) plane of a stack).

    Yields ``ProgressEvent(done, planes, "plane")`` after each plane; returns the table.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(_shape_message(y_true.shape, y_pred.shape))
    highest = max(int(y_true.max(initial=0)), int(y_pred.max(initial=0)))
    lowest = min(int(y_true.min(initial=0)), int(y_pred.min(initial=0)))
    if lowest < 0 or highest >= MAX_CLASSES:
        raise ValueError(
            f"values from {lowest} to {highest} are not class values (0 to {MAX_CLASSES - 1}): "
            "these look like instance labels; evaluate them as objects instead."
        )
    n_classes = highest + 1
    planes = list(np.ndindex(y_true.shape[:-2]))
    confusion = np.zeros((n_classes, n_classes), np.float64)
    for done, index in enumerate(planes, 1):
        confusion += class_confusion(y_true[index], y_pred[index], n_classes, ignore_label)
        yield ProgressEvent(done, len(planes), "plane")
    scores = confusion_scores(confusion)
    names = list(class_names or [])
    kept = [k for k in range(n_classes) if k != ignore_label]
    iou = [float(scores["iou"][k]) for k in kept]
    dice = [float(scores["dice"][k]) for k in kept]
    return {
        "class": [*kept, "mean"],
        "name": [names[k] if k < len(names) else f"class {k}" for k in kept] + [""],
        "IoU": iou + [_nanmean(iou)],
        "Dice": dice + [_nanmean(dice)],
        "pixels": [int(scores["support"][k]) for k in kept] + [None],
    }


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _shape_message(true_shape: tuple, pred_shape: tuple) -> str:
    return (f"the ground truth has shape {tuple(true_shape)} but the prediction has "
            f"{tuple(pred_shape)}: compare layers of the same image.")


def _checked(y_true, y_pred, axes: str | None, objects_3d: bool | None):
    """Arrays, axes (letters of TZYX) and objects_3d with defaults; ValueError when they do not fit."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(_shape_message(y_true.shape, y_pred.shape))
    if axes is None and not 2 <= y_true.ndim <= len(LABEL_CANONICAL):
        raise ValueError(f"label images of shape {y_true.shape}: expected YX, ZYX, TYX or TZYX.")
    axes = validate_axes(axes or LABEL_CANONICAL[-y_true.ndim:], y_true.shape)
    if "C" in axes:
        raise ValueError(f"label images have no channel axis: axes '{axes}'.")
    if objects_3d is None:
        objects_3d = "Z" in axes
    return y_true, y_pred, axes, bool(objects_3d and "Z" in axes)


def _unit_views(array: np.ndarray, axes: str, objects_3d: bool) -> Iterator[np.ndarray]:
    """Views of the units of ``array`` matched separately: (Z, Y, X) volumes or (Y, X) planes."""
    view = to_canonical(array, axes)[..., 0]  # (T, Z, Y, X)
    for index in np.ndindex(view.shape[:1] if objects_3d else view.shape[:2]):
        yield view[index]


def _unit_count(array: np.ndarray, axes: str, objects_3d: bool) -> int:
    view_shape = to_canonical(array, axes).shape  # (T, Z, Y, X, 1)
    return int(np.prod(view_shape[:1] if objects_3d else view_shape[:2]))


def _units(y_true: np.ndarray, y_pred: np.ndarray, axes: str, objects_3d: bool) -> Iterator[tuple]:
    """(true, predicted) pairs of the units that are matched separately."""
    yield from zip(_unit_views(y_true, axes, objects_3d), _unit_views(y_pred, axes, objects_3d))


def guess_label_kind(labels: np.ndarray, max_classes: int = 16, max_pixels: int = 50_000_000) -> str | None:
    """``"classes"``, ``"instances"`` or None (can't tell) from a label image's content.

    Instance labels have more than ``max_classes`` non-zero values (or negative ones); a
    class map has at most that many, and more separate regions than values (a class covers
    several places). A few values with one region each could be either (None). Images over ``max_pixels`` are not inspected (None).
    """
    labels = np.asarray(labels) if labels.size <= max_pixels else None
    if labels is None or labels.dtype.kind not in "iub":
        return None
    values = np.unique(labels)
    values = values[values != 0]
    if values.size == 0:
        return None
    if values.size > max_classes or values.min() < 0:
        return "instances"
    regions = sum(ndimage.label(labels == value)[1] for value in values)
    return "classes" if regions > values.size else None  # few values, one region each: either

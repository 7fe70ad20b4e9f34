"""Segmentation metrics, identical to StarDist's ``matching`` / ``matching_dataset``.

Instances: IoU between every true and predicted object; a one-to-one assignment (Hungarian,
IoU as tie-breaker); a pair is a true positive when IoU >= tau. For a data set TP, FP, FN and
the IoU of matched pairs are SUMMED over all images before the ratios are taken:
AP(tau) = TP / (TP + FP + FN) (StarDist's "accuracy"), precision, recall, F1 and panoptic
quality = sum of matched IoU / (TP + FP/2 + FN/2).

Semantic: per-class IoU and Dice from a confusion matrix, ignoring unlabelled pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))  # 0.50, 0.55, ..., 0.90


@dataclass(frozen=True)
class MatchCounts:
    """Counts at one IoU threshold; add them over images, then read the ratios."""

    thresh: float
    tp: int
    fp: int
    fn: int
    n_true: int
    n_pred: int
    sum_matched_iou: float

    def __add__(self, other: MatchCounts) -> MatchCounts:
        if other.thresh != self.thresh:
            raise ValueError("cannot add counts of different thresholds")
        return MatchCounts(self.thresh, self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                           self.n_true + other.n_true, self.n_pred + other.n_pred,
                           self.sum_matched_iou + other.sum_matched_iou)

    def stats(self) -> dict[str, float]:
        """Counts plus precision, recall, accuracy (= AP), f1, mean matched IoU, panoptic quality."""
        tp, fp, fn = self.tp, self.fp, self.fn
        return {
            **asdict(self),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "accuracy": _ratio(tp, tp + fp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "mean_matched_score": _ratio(self.sum_matched_iou, tp),
            "mean_true_score": _ratio(self.sum_matched_iou, self.n_true),
            "panoptic_quality": _ratio(self.sum_matched_iou, tp + fp / 2 + fn / 2),
        }


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator > 0 else 0.0


def iou_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """IoU between every true and predicted object.

    Args:
        y_true, y_pred: integer label images of the same shape (any ndim), 0 = background.
    Returns:
        float64 (n_true, n_pred), rows/columns in increasing label order of each image.
    """
    return labelled_iou_matrix(y_true, y_pred)[0]


def labelled_iou_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`iou_matrix` with the object ids of its rows and columns.

    Returns:
        ``(iou float64 (n_true, n_pred), true_ids (n_true,), pred_ids (n_pred,))``, ids increasing.
    """
    if y_true.shape != y_pred.shape:
        raise ValueError(f"label images differ in shape: {y_true.shape} vs {y_pred.shape}")
    true_ids, true_inv = np.unique(y_true, return_inverse=True)
    pred_ids, pred_inv = np.unique(y_pred, return_inverse=True)
    n_t, n_p = len(true_ids), len(pred_ids)
    overlap = np.bincount(true_inv.ravel() * n_p + pred_inv.ravel(), minlength=n_t * n_p)
    overlap = overlap.reshape(n_t, n_p).astype(np.float64)
    keep_t = true_ids != 0
    keep_p = pred_ids != 0
    true_sizes = overlap.sum(axis=1, keepdims=True)
    pred_sizes = overlap.sum(axis=0, keepdims=True)
    union = true_sizes + pred_sizes - overlap
    iou = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    return iou[keep_t][:, keep_p], true_ids[keep_t], pred_ids[keep_p]


def matched_pairs(scores: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """StarDist's optimal one-to-one matching of objects at one IoU threshold.

    The Hungarian assignment maximises the number of pairs with IoU >= ``thresh``, with the
    IoU as tie-breaker; only those pairs are kept.

    Args:
        scores: IoU (n_true, n_pred), e.g. from :func:`iou_matrix`.
    Returns:
        ``(rows, cols)``: int arrays of equal length, ``scores[rows, cols] >= thresh``, rows increasing.
    """
    from scipy.optimize import linear_sum_assignment

    n_matched = min(scores.shape)
    if n_matched == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    costs = -(scores >= thresh).astype(float) - scores / (2 * n_matched)
    rows, cols = linear_sum_assignment(costs)
    ok = scores[rows, cols] >= thresh
    return rows[ok], cols[ok]


def match_counts(
    y_true: np.ndarray, y_pred: np.ndarray, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> list[MatchCounts]:
    """TP/FP/FN of one image pair at each IoU threshold (StarDist's optimal matching)."""
    scores = iou_matrix(np.asarray(y_true), np.asarray(y_pred))
    n_true, n_pred = scores.shape
    counts = []
    for thresh in thresholds:
        rows, cols = matched_pairs(scores, thresh)
        tp = len(rows)
        matched_iou = float(scores[rows, cols].sum())
        counts.append(MatchCounts(float(thresh), tp, n_pred - tp, n_true - tp, n_true, n_pred, matched_iou))
    return counts


def matching_dataset(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> list[dict[str, float]]:
    """Statistics at each threshold with counts summed over all (true, predicted) pairs."""
    totals: list[MatchCounts] | None = None
    for y_true, y_pred in pairs:
        counts = match_counts(y_true, y_pred, thresholds)
        totals = counts if totals is None else [a + b for a, b in zip(totals, counts)]
    if totals is None:
        raise ValueError("no image pairs to evaluate")
    return [c.stats() for c in totals]


def semantic_scores(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, ignore_label: int | None = None
) -> dict[str, np.ndarray]:
    """Per-class IoU and Dice of class maps.

    Args:
        y_true, y_pred: integer class images of the same shape; values in [0, n_classes).
        ignore_label: pixels with this true value (e.g. 0 = unlabelled in sparse annotation)
            are left out.
    Returns:
        ``{"iou": float64 (n_classes,), "dice": float64 (n_classes,), "support": int64 (n_classes,)}``;
        a class absent from both images gets NaN.
    """
    return confusion_scores(class_confusion(y_true, y_pred, n_classes, ignore_label))


def class_confusion(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, ignore_label: int | None = None
) -> np.ndarray:
    """Pixel counts of each (true class, predicted class) pair: float64 (n_classes, n_classes).

    Confusions of several images add up (e.g. plane by plane); ``ignore_label`` as in
    :func:`semantic_scores`.
    """
    y_true = np.asarray(y_true).ravel().astype(np.int64)
    y_pred = np.asarray(y_pred).ravel().astype(np.int64)
    if ignore_label is not None:
        keep = y_true != ignore_label
        y_true, y_pred = y_true[keep], y_pred[keep]
    confusion = np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2)
    return confusion.reshape(n_classes, n_classes).astype(np.float64)


def confusion_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class IoU, Dice and support of a :func:`class_confusion` matrix (see :func:`semantic_scores`)."""
    tp = np.diag(confusion)
    true_total = confusion.sum(axis=1)
    pred_total = confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (true_total + pred_total - tp)
        dice = 2 * tp / (true_total + pred_total)
    return {"iou": iou, "dice": dice, "support": true_total.astype(np.int64)}

"""Scoring segmentations through the API: :func:`iter_evaluate` / :func:`evaluate` (one image or stack, as the
Evaluate dock does) and :func:`evaluate_pairs` (many images, counts summed, as ``unet-maskrcnn evaluate``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.metrics import DEFAULT_THRESHOLDS
from ..core.progress import CancelCheck, ProgressCallback, ProgressGenerator, drain

KINDS = ("instances", "classes")


@dataclass
class Evaluation:
    """The scores of a prediction against its ground truth.

    Attributes:
        kind: ``"instances"`` or ``"classes"``.
        table: columns of the score table (instances: one row per IoU threshold and their mean;
            classes: one row per class, IoU and Dice, and their mean).
        scores: instances: ``{"thresholds": [stats per threshold], "mean", "units", "unit"}``
            (see ``core.evaluation.evaluate_instances``); classes: the table.
        review: instances with ``review_iou``: the ``(matched, false positives, missed)`` label
            images; else None.
    """

    kind: str
    table: dict[str, list]
    scores: dict
    review: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def guess_kind(labels) -> str | None:
    """``"instances"``, ``"classes"`` or None (undecided), judged from the label values."""
    from ..core.evaluation import guess_label_kind

    return guess_label_kind(np.asarray(labels))


def iter_evaluate(
    truth,
    prediction,
    *,
    kind: str | None = None,
    axes: str | None = None,
    objects_3d: bool | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    review_iou: float | None = None,
    class_names: Sequence[str] | None = None,
    ignore_label: int | None = None,
) -> ProgressGenerator[Evaluation]:
    """Score ``prediction`` against ``truth`` (label images of one shape), plane or volume at a time.

    Args:
        kind: ``"instances"`` (StarDist's matching at each IoU threshold), ``"classes"``
            (per-class IoU and Dice); None = guessed from the labels (instances when undecided).
        axes, objects_3d, thresholds, review_iou: instances (see ``core.evaluation``).
        class_names, ignore_label: classes.

    Yields ProgressEvent per plane or volume; returns :class:`Evaluation`.
    """
    from ..core.evaluation import iter_evaluate_classes, iter_evaluate_instances, score_table
    from ..core.validation import check_label_values, check_number

    if kind is None:
        kinds = {guess_kind(truth), guess_kind(prediction)}
        kind = "classes" if "classes" in kinds and "instances" not in kinds else "instances"
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (or None: guessed); got {kind!r}.")
    check_number("review_iou", review_iou, low=0, high=1)
    check_number("ignore_label", ignore_label, low=0, integer=True)
    truth, prediction = check_label_values(truth, "truth"), check_label_values(prediction, "prediction")
    if kind == "classes":
        table = yield from iter_evaluate_classes(truth, prediction, class_names, ignore_label=ignore_label)
        return Evaluation(kind, table, table)
    scores, review = yield from iter_evaluate_instances(truth, prediction, thresholds, axes, objects_3d, review_iou)
    return Evaluation(kind, score_table(scores), scores, review)


def evaluate(truth, prediction, *, on_progress: ProgressCallback | None = None,
             should_cancel: CancelCheck | None = None, **options) -> Evaluation:
    """Run :func:`iter_evaluate` to the end (options as there)."""
    return drain(iter_evaluate(truth, prediction, **options), on_progress, should_cancel)


def evaluate_pairs(pairs: Iterable[tuple], *, kind: str = "instances", ignore_label: int | None = None) -> dict:
    """Scores over many (truth, prediction) label images, counts summed over them (a data set).

    Returns instances: ``{"images": n, "thresholds": [stats per IoU threshold]}`` (StarDist's
    ``matching_dataset``); classes: ``{"images": n, "classes": [{"class", "iou", "dice",
    "support"}, ...]}`` over all pixels.
    """
    from ..core.metrics import matching_dataset, semantic_scores
    from ..core.validation import check_label_values

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    count = 0

    def checked():  # one pair in memory at a time (instances)
        nonlocal count
        for truth, pred in pairs:
            truth, pred = check_label_values(truth, "truth"), check_label_values(pred, "prediction")
            if truth.shape != pred.shape:
                raise ValueError(f"a ground truth has shape {truth.shape} but its prediction {pred.shape}.")
            count += 1
            yield truth, pred

    if kind == "instances":
        thresholds = matching_dataset(checked())
        return {"images": count, "thresholds": thresholds}
    checked = list(checked())
    if not checked:
        raise ValueError("no image pairs to evaluate")
    n_classes = int(max(max(t.max(), p.max()) for t, p in checked)) + 1
    truth = np.concatenate([t.ravel() for t, _ in checked])
    pred = np.concatenate([p.ravel() for _, p in checked])
    scores = semantic_scores(truth, pred, n_classes, ignore_label)
    rows = [{"class": k, "iou": float(scores["iou"][k]), "dice": float(scores["dice"][k]),
             "support": int(scores["support"][k])} for k in range(n_classes) if k != ignore_label]
    return {"images": len(checked), "classes": rows}

"""What differs between training a U-Net and a Mask R-CNN: targets, losses and validation.

A task turns a batch of augmented crops into the network's losses, makes the validation
ground truth of a whole label image, predicts a whole validation image with the same
tiled inference code users run, and scores the predictions:

- :class:`SemanticTask` (U-Net): cross-entropy over labelled pixels; per-class IoU; the
  score is the object IoU (instance labels) or the mean IoU of the annotated classes.
- :class:`InstanceTask` (Mask R-CNN): torchvision's five losses; StarDist matching; the
  score is AP at IoU 0.5 (TP / (TP + FP + FN), summed over the validation images).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from ..progress import drain
from .data import (
    IGNORE_INDEX,
    LABEL_KINDS,
    PAD_LABEL,
    UNLABELLED,
    TrainingPair,
    instance_targets,
    instances_to_classes,
    semantic_targets,
)

UNET_INSTANCE_CLASSES = ("background", "object", "boundary")
VAL_SCORE_THRESHOLD = 0.5
VAL_MARGIN = 64
UNLABELLED_BIAS = -20.0


def unet_class_names(
    pairs: Sequence[TrainingPair], label_kind: str, class_names: Sequence[str] | None
) -> list[str]:
    """Output class names of a U-Net trained on ``pairs``.

    Instances: ``background, object, boundary``, with ``class_names`` naming the object
    (one name) or all three classes. Classes: one name per class 1..K of the label maps
    (K = the largest label), ``class 1 .. class K`` by default. Painted: ``unlabelled``
    (output 0, never trained) and then those K names, so output value k is painted value k.
    """
    if label_kind not in LABEL_KINDS:
        raise ValueError(f"label_kind must be one of {', '.join(LABEL_KINDS)}, got {label_kind!r}.")
    if label_kind == "instances":
        if class_names is None:
            return list(UNET_INSTANCE_CLASSES)
        if len(class_names) == 1:
            return ["background", class_names[0], "boundary"]
        if len(class_names) == 3:
            return list(class_names)
        raise ValueError("With instance labels give one object class name or three names "
                         f"(background, object, boundary), got {len(class_names)}.")
    n_classes = max(int(pair.labels.max(initial=0)) for pair in pairs)
    if n_classes < 1:
        raise ValueError("The class maps contain no labelled pixel (every value is 0 = unlabelled).")
    if class_names is None:
        names = [f"class {k}" for k in range(1, n_classes + 1)]
    elif len(class_names) < n_classes:
        raise ValueError(f"The class maps use classes 1..{n_classes} but {len(class_names)} "
                         "class name(s) were given.")
    else:
        names = list(class_names)
    return [UNLABELLED, *names] if label_kind == "painted" else names


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean cross-entropy over the pixels whose target is not :data:`IGNORE_INDEX`.

    Args:
        logits: (B, K, h, w), any float dtype (the loss is computed in float32).
        targets: int64 (B, h, w), classes in [0, K) or IGNORE_INDEX.
        weights: float32 (K,) per-class weights, or None for 1 each; the mean is weighted.

    Returns:
        A scalar; 0 (with gradients) when every pixel is ignored, e.g. a crop of a sparse
        annotation that holds no labelled pixel.
    """
    total = F.cross_entropy(logits.float(), targets, weight=weights, ignore_index=IGNORE_INDEX, reduction="sum")
    labelled = targets != IGNORE_INDEX
    norm = labelled.sum().float() if weights is None else weights[targets[labelled]].sum()
    return total / norm.clamp(min=1e-12)


class SemanticTask:
    """U-Net training on instance labels (3 classes) or class maps (0 ignored; "painted": output = value).

    Attributes:
        arch: ``"unet"``.
        pad_label: label of crop pixels outside the image (ignored in the loss).
        score_name: the metric selecting the best epoch.
    """

    arch = "unet"
    pad_label = PAD_LABEL

    def __init__(self, label_kind: str, class_weights: Sequence[float] | None = None):
        """``class_weights``: loss weight of each output class (None = equal)."""
        if label_kind not in LABEL_KINDS:
            raise ValueError(f"label_kind must be one of {', '.join(LABEL_KINDS)}, got {label_kind!r}.")
        self.label_kind = label_kind
        self.score_name = "object_iou" if label_kind == "instances" else "mean_iou"
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)

    def init_network(self, network) -> None:
        """Painted labels: output class 0 ("unlabelled") is never a target, so it starts far below
        the others (head bias -20) and even a briefly trained model never outputs it."""
        if self.label_kind == "painted":
            with torch.no_grad():
                network.head.bias[0] = UNLABELLED_BIAS

    def losses(self, network, images: torch.Tensor, labels: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """``{"loss_ce": ...}`` for images float32 (B, C, h, w) and label crops (h, w)."""
        targets = torch.from_numpy(np.stack([semantic_targets(crop, self.label_kind) for crop in labels]))
        weights = None if self.class_weights is None else self.class_weights.to(images.device)
        return {"loss_ce": masked_cross_entropy(network(images), targets.to(images.device), weights)}

    def truth(self, labels: np.ndarray) -> np.ndarray:
        """Ground truth of whole labels (H, W): 3 classes, or the class map itself (0 = ignored)."""
        return instances_to_classes(labels) if self.label_kind == "instances" else labels

    def predict(self, network, source, device, tile: int) -> np.ndarray:
        """uint8 (H, W) classes of a whole plane (``PlaneSource``), by tiled inference."""
        from ..semantic import predict_semantic_plane

        classes, _ = drain(predict_semantic_plane(source, network, tile=tile, overlap=tile // 8, device=device))
        return classes

    def metrics(self, truths: list[np.ndarray], predictions: list[np.ndarray], class_names: list[str]) -> dict:
        """``iou_<class>`` per class and the score, over all validation pixels (None = absent class)."""
        from ..metrics import semantic_scores

        truth = np.concatenate([t.ravel() for t in truths])
        predicted = np.concatenate([p.ravel() for p in predictions]).astype(np.int64)
        if self.label_kind == "instances":
            iou = semantic_scores(truth, predicted, len(class_names))["iou"]
            score = iou[1]
        else:  # class maps: output k is value k + 1 ("classes") or k ("painted", output 0 never trained)
            offset = 1 if self.label_kind == "classes" else 0
            class_names = class_names[1 - offset:]
            iou = semantic_scores(truth, predicted + offset, len(class_names) + 1, ignore_label=0)["iou"][1:]
            score = np.nanmean(iou) if np.any(np.isfinite(iou)) else math.nan
        return {self.score_name: _number(score), **{f"iou_{n}": _number(v) for n, v in zip(class_names, iou)}}


class InstanceTask:
    """Single-class Mask R-CNN training on instance labels (see :class:`SemanticTask`)."""

    arch = "maskrcnn"
    pad_label = 0
    score_name = "ap50"

    def init_network(self, network) -> None:
        """Nothing to adjust in a new or fine-tuned Mask R-CNN."""

    def losses(self, network, images: torch.Tensor, labels: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """torchvision's Mask R-CNN losses for images (B, C, h, w) and instance crops (h, w)."""
        targets = [
            {key: torch.from_numpy(value).to(images.device) for key, value in instance_targets(crop).items()}
            for crop in labels
        ]
        return network(list(images), targets)

    def truth(self, labels: np.ndarray) -> np.ndarray:
        return labels

    def predict(self, network, source, device, tile: int) -> np.ndarray:
        """int32 (H, W) instance labels of a whole plane, by tiled detection and pasting."""
        from ..instances import predict_instances_plane
        from ..models.maskrcnn import detect

        detector = partial(detect, network, score_threshold=VAL_SCORE_THRESHOLD, device=device)
        margin = min(VAL_MARGIN, (tile - 1) // 4)
        return drain(predict_instances_plane(source, detector, tile=tile, margin=margin)).labels

    def metrics(self, truths: list[np.ndarray], predictions: list[np.ndarray], class_names: list[str]) -> dict:
        """AP, precision, recall and F1 at IoU 0.5, and AP at IoU 0.75."""
        from ..metrics import matching_dataset

        at50, at75 = matching_dataset(zip(truths, predictions), thresholds=(0.5, 0.75))
        return {
            "ap50": at50["accuracy"], "precision50": at50["precision"], "recall50": at50["recall"],
            "f1_50": at50["f1"], "ap75": at75["accuracy"],
        }


def _number(value) -> float | None:
    """``value`` as a float, None for NaN (JSON has no NaN)."""
    value = float(value)
    return None if math.isnan(value) else value

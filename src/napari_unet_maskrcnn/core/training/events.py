"""What a training run reports: per-step/epoch events, epoch summaries and the final result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..model_file import ModelSpec


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did.

    Attributes:
        epoch: 1-based epoch number.
        step: optimisation steps of the whole run so far.
        losses: mean training losses of the epoch (``loss`` is their sum).
        metrics: validation metrics (empty without validation images; None = undefined).
        score: the metric that selects the best epoch (U-Net ``object_iou`` or ``mean_iou``,
            Mask R-CNN ``ap50``), or None.
        is_best: this epoch's weights are the best so far.
        lr: learning rate of the epoch's last step.
        elapsed_s: training time so far, in seconds (a resumed run's included).
    """

    epoch: int
    step: int
    losses: dict[str, float]
    metrics: dict[str, float | None]
    score: float | None
    is_best: bool
    lr: float
    elapsed_s: float


@dataclass(frozen=True)
class TrainEvent:
    """Progress of a training run, given to ``on_progress``.

    Attributes:
        stage: ``"step"`` after each optimisation step, ``"validate"`` after each validation
            image, ``"epoch"`` after each epoch (with ``report``), ``"note"`` for a message.
        epoch: the 1-based epoch in progress (or just finished, for ``"epoch"``).
        step: optimisation steps of the whole run so far.
        steps_per_epoch: optimisation steps in one epoch.
        epochs: planned epochs, or None with only a time budget.
        elapsed_s: training time so far, in seconds.
        loss: this step's total loss (``"step"`` only).
        report: the epoch's summary (``"epoch"`` only).
        message: text of a ``"note"`` (e.g. that a fine-tuned model's head was re-initialised) or
            of a ``"warning"`` (:mod:`.run_warnings`: something the user must know, shown by every front end).
    """

    stage: str
    epoch: int
    step: int
    steps_per_epoch: int
    epochs: int | None
    elapsed_s: float
    loss: float | None = None
    report: EpochReport | None = None
    message: str = ""


@dataclass
class TrainResult:
    """The outcome of a training run.

    Attributes:
        network: the kept weights (best epoch), in eval mode on the training device.
        spec: the model description with its provenance.
        path: the model file written, or None without ``output``.
        history: one report per epoch (a resumed run's earlier epochs included).
        best_epoch: the epoch whose weights were kept, or None if no epoch was validated.
        best_metrics: its validation metrics.
        stop_reason: ``"epochs"``, ``"time budget"``, ``"stopped"`` or ``"interrupted"``.
        elapsed_s: training time in seconds.
        steps: optimisation steps taken.
        warnings: the run's warnings (:mod:`.run_warnings`), as ``api.train`` reported them.
    """

    network: torch.nn.Module
    spec: ModelSpec
    path: Path | None
    history: list[EpochReport]
    best_epoch: int | None
    best_metrics: dict[str, float | None]
    stop_reason: str
    elapsed_s: float
    steps: int
    warnings: list[str] = field(default_factory=list)


ProgressHandler = Callable[[TrainEvent], Any]
StopCheck = Callable[[], bool]

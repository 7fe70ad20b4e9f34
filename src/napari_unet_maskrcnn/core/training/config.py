"""The training recipe and the learning-rate schedule it implies.

:class:`TrainConfig` holds every hyperparameter of a run (it is stored, as JSON, in the
provenance of the model file). :class:`Schedule` turns it into a learning rate per step:
a linear warm-up, then a cosine to :data:`MIN_LR_FACTOR` of the peak, over the planned run
measured in steps (``epochs``) or in training time (``minutes``), whichever ends first.
Because the position in the run is computed from (step, seconds), resuming needs no
scheduler state beyond those two numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .augment import AugmentSettings

ARCH_DEFAULTS = {"unet": {"batch_size": 8, "lr": 1e-3}, "maskrcnn": {"batch_size": 4, "lr": 3e-4}}
MIN_LR_FACTOR = 0.01
INSTANCE_CLASS_WEIGHTS = [1.0, 1.0, 5.0]
"""U-Net loss weights of background, object, boundary: the 1-2 pixel boundaries between touching
objects are a few per cent of the pixels, and with equal weights they are barely ever predicted
(DSB2018, 400 steps: boundary IoU 0.02 with equal weights, 0.25 with these, object IoU 0.82 both)."""


@dataclass
class TrainConfig:
    """The training recipe; ``None`` batch size and learning rate take :data:`ARCH_DEFAULTS`.

    Attributes:
        epochs: epochs to train (counting those of a resumed run), or None for no limit.
        minutes: time budget in minutes (counting a resumed run's time), or None. Training
            stops at whichever of ``epochs`` / ``minutes`` comes first; an epoch cut short by
            the budget is still validated.
        crop: side of the training crops in pixels.
        batch_size: crops per optimisation step.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_fraction: part of the run over which the learning rate rises linearly (0..1).
        grad_clip: largest gradient norm (gradients are scaled down above it).
        max_crops_per_image: crops per epoch of the largest images (each image gives
            ``sqrt(H W) / crop`` crops, at least 1).
        val_fraction: part of the pairs held out for validation, drawn with ``seed``.
        val_names: names of the pairs held out (wins over ``val_fraction``); never trained on.
        seed: seeds torch, numpy and random: split, initialisation, crops, augmentation.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        amp: mixed precision: bfloat16 autocast on CPUs with native bf16 and on CUDA
            (float16 with loss scaling on GPUs without bf16); None = wherever supported.
        augment: augmentation strengths.
        checkpoint_dir: folder for ``last.pt`` and ``best.safetensors``; None = no files
            (with ``resume``: the checkpoint's folder).
        checkpoint_every: epochs between writes of ``last.pt`` (it is also written at the end).
        resume: a ``last.pt`` (or its folder) to continue; its model description and
            validation names are reused.
        base: model name or file whose weights start the training (fine-tuning).
        val_tile: tile side (pixels) of validation inference.
        class_weights: U-Net only: loss weight of each output class; None = equal weights
            for class maps and :data:`INSTANCE_CLASS_WEIGHTS` for instance labels.
        prefetch: make the next batches in a background thread while the network trains
            (off by default: slower on a loaded 2-core CPU, see ``core/training/loop.py``).
        balance_groups: group-balanced epochs (:func:`~.groups.balanced_epoch_order`, groups by
            :func:`~.groups.modality`): None = off (every image its plain share); an empty list
            = an equal share per group; or one weight per group of :data:`~.groups.MODALITIES`
            (fluorescence, stained, brightfield).
        mask_roi_size: Mask R-CNN only: side of the mask head's RoIAlign grid (the masks are twice
            as large), set in the new model's description over the base model's or the
            builder's default (14); None = unchanged. The mask head is convolutional, so a
            base model's weights all still fit (e.g. 14 -> 28: 56 x 56 masks from the same head).
    """

    epochs: int | None = 50
    minutes: float | None = None
    crop: int = 256
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    max_crops_per_image: int = 4
    val_fraction: float = 0.2
    val_names: list[str] | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1
    resume: str | None = None
    base: str | None = None
    val_tile: int = 512
    class_weights: list[float] | None = None
    prefetch: bool = False
    balance_groups: list[float] | None = None
    mask_roi_size: int | None = None

    def resolved(self, arch: str) -> TrainConfig:
        """A copy with the architecture's defaults filled in.

        Raises:
            ValueError: no stopping rule, or a value out of range (naming it).
        """
        defaults = ARCH_DEFAULTS[arch]
        config = replace(self, batch_size=self.batch_size or defaults["batch_size"], lr=self.lr or defaults["lr"])
        if config.epochs is None and config.minutes is None:
            raise ValueError("Give a number of epochs or a time budget in minutes (or both).")
        for name in ("crop", "batch_size", "max_crops_per_image", "checkpoint_every", "val_tile"):
            if getattr(config, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}.")
        if config.epochs is not None and config.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {config.epochs}.")
        if config.minutes is not None and config.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {config.minutes}.")
        if not 0.0 <= config.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {config.warmup_fraction}.")
        if config.class_weights is not None and (arch != "unet" or min(config.class_weights) < 0):
            raise ValueError("class_weights are for the U-Net, one non-negative weight per class.")
        if config.mask_roi_size is not None and (arch != "maskrcnn" or config.mask_roi_size < 1):
            raise ValueError("mask_roi_size is for Mask R-CNN, a positive grid side (e.g. 14 or 28).")
        if config.balance_groups is not None:
            from .groups import group_weights

            group_weights(config.balance_groups)
        if config.lr <= 0 or config.grad_clip <= 0:
            raise ValueError("lr and grad_clip must be positive.")
        return config


@dataclass(frozen=True)
class Schedule:
    """Learning rate of each step: linear warm-up, then cosine decay to ``MIN_LR_FACTOR * peak``.

    Attributes:
        peak_lr: learning rate at the end of the warm-up.
        warmup_fraction: part of the run spent warming up.
        total_steps: planned optimisation steps, or None without an epoch limit.
        budget_s: time budget in seconds, or None.
    """

    peak_lr: float
    warmup_fraction: float
    total_steps: int | None
    budget_s: float | None

    @classmethod
    def for_run(cls, config: TrainConfig, steps_per_epoch: int) -> Schedule:
        total = config.epochs * steps_per_epoch if config.epochs is not None else None
        budget = config.minutes * 60.0 if config.minutes is not None else None
        return cls(config.lr, config.warmup_fraction, total, budget)

    def progress(self, step: int, elapsed_s: float) -> float:
        """Position in the run, 0..1: the larger of the step and time fractions."""
        fractions = []
        if self.total_steps:
            fractions.append(step / self.total_steps)
        if self.budget_s:
            fractions.append(elapsed_s / self.budget_s)
        return min(max(fractions), 1.0)

    def lr(self, step: int, elapsed_s: float) -> float:
        """Learning rate of optimisation step ``step`` (1-based) taken after ``elapsed_s`` seconds."""
        position = self.progress(step, elapsed_s)
        if position < self.warmup_fraction:
            return self.peak_lr * position / self.warmup_fraction
        decay = (position - self.warmup_fraction) / (1.0 - self.warmup_fraction)
        return self.peak_lr * (MIN_LR_FACTOR + (1 - MIN_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * decay)))

    def out_of_time(self, elapsed_s: float) -> bool:
        """Whether the time budget is spent."""
        return self.budget_s is not None and elapsed_s >= self.budget_s

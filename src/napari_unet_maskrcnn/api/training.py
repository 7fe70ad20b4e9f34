"""Training through the API: :func:`train` (used by ``unet-maskrcnn train`` and the Train dock).

Every setting's default and range come from :data:`~..core.settings.TRAIN_SETTINGS`, so the
command line's flags and the dock's fields mean the same. A model trained from scratch has
one size everywhere (:data:`~..core.settings.UNET_SCRATCH`, :data:`~..core.settings.MASKRCNN_SCRATCH`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.settings import TRAIN_SETTINGS

_LAZY = {"TrainingPair": "data", "TrainingWarning": "run_warnings", "TrainResult": "events", "TrainEvent": "events",
         "plane_pairs": "regions"}


def __getattr__(name: str):
    """``TrainingPair``, ``TrainingWarning``, ``TrainResult``, ``TrainEvent``, ``plane_pairs`` (training pairs from
    annotated slices and regions, ``core.training.regions``), ``CHECKPOINT_FILES`` (the files a run with
    ``checkpoint_dir`` writes there), imported on first use: importing the API imports no torch."""
    from importlib import import_module

    if name == "CHECKPOINT_FILES":
        from ..core.training.checkpoint import BEST_FILE, CHECKPOINT_FILE

        return (CHECKPOINT_FILE, BEST_FILE)
    if name in _LAZY:
        return getattr(import_module(f"..core.training.{_LAZY[name]}", __package__), name)
    raise AttributeError(name)


def score_name(arch: str, label_kind: str = "instances") -> str:
    """The validation metric that picks the best epoch of a run (``arch`` "unet" or "maskrcnn")."""
    from ..core.training.tasks import InstanceTask, SemanticTask

    return InstanceTask.score_name if arch == "maskrcnn" else SemanticTask(label_kind).score_name


def load_pairs(images_dir: str | os.PathLike, labels_dir: str | os.PathLike) -> list:
    """Every image of ``images_dir`` with the label image of the same stem in ``labels_dir`` (``TrainingPair`` list)."""
    from ..core.training.data import load_pairs as load

    return load(images_dir, labels_dir)


def read_name_list(path: str | os.PathLike) -> list[str]:
    """Names listed in a text file, one per line (validation image stems)."""
    from ..core.training.data import read_name_list as read

    return read(path)

_T = TRAIN_SETTINGS


def _d(name: str):
    return _T[name].default


def train(
    pairs,
    output: str | os.PathLike | None = None,
    *,
    arch: str = _d("arch"),
    label_kind: str = _d("label_kind"),
    class_names: Sequence[str] | None = None,
    base: str | os.PathLike | None = _d("base"),
    epochs: int | None = _d("epochs"),
    minutes: float | None = _d("minutes"),
    val_fraction: float = _d("val_fraction"),
    val_names: Sequence[str] | None = None,
    seed: int = _d("seed"),
    crop: int = _d("crop"),
    batch_size: int | None = _d("batch_size"),
    lr: float | None = _d("lr"),
    device: str = _d("device"),
    precision: str = _d("precision"),
    augment: str = _d("augment"),
    channel: int | None = _d("channel"),
    in_channels: int | None = _d("in_channels"),
    class_weights: Sequence[float] | None = None,
    depth: int = _d("depth"),
    base_width: int = _d("base_width"),
    backbone: str = _d("backbone"),
    fpn_channels: int = _d("fpn_channels"),
    mask_head_channels: int = _d("mask_head_channels"),
    box_head_size: int | None = _d("box_head_size"),
    box_batch_size: int = _d("box_batch_size"),
    mask_roi_size: int | None = _d("mask_roi_size"),
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = _d("checkpoint_every"),
    resume: str | os.PathLike | None = None,
    balance_groups: Sequence[float] | None = None,
    provenance: Mapping[str, Any] | None = None,
    sources: Mapping[str, str] | None = None,
    on_progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite: bool = False,
):
    """Train a U-Net (``arch="unet"``) or Mask R-CNN (``"maskrcnn"``) and write its model file.

    Args:
        pairs: ``TrainingPair`` objects or ``(image, labels)`` tuples (images (H, W) or (H, W, C),
            labels (H, W) integers), or ``(images_dir, labels_dir)``: folders matched by file stem.
        output: the model file (``.safetensors``), written atomically at the end (also when
            stopped or interrupted, with the best weights so far; not when stopped before the
            first step); None = not written (``result.network`` holds the model).
        arch, label_kind: what is learned (see ``core.training.train_unet``).
        class_names: U-Net: one name per class (class maps) or the object's name (instances);
            Mask R-CNN: the object's name (first of them); None = "object" / from the labels.
        base: a model name or file to fine-tune; its size wins over ``depth`` ... ``box_batch_size``.
        mask_roi_size: Mask R-CNN: the mask head's RoIAlign grid (masks twice as large); None = the
            base model's, else 14. Set over a base model's too (its mask head's weights all fit).
        epochs, minutes: stopping rules; training stops at whichever comes first; neither =
            :data:`~..core.settings.DEFAULT_EPOCHS` epochs.
        val_fraction: part of the pairs held out for validation (drawn with ``seed``);
            ``val_names``: the names of the pairs to hold out instead.
        precision: ``"auto"`` (bfloat16 / AMP where supported), ``"fp32"`` or ``"bf16"``.
        augment: one of :data:`~..core.settings.AUGMENT_RECIPES` (``"none"``: plain crops).
        sources: pair name -> where it came from (a stack): validation slices from a stack
            whose other slices train are warned about.
        on_progress: called with every ``TrainEvent`` (steps, epochs, notes and warnings).
        should_stop: polled before every step; True ends the run, keeping the best weights.
        overwrite: let ``output`` replace an existing file (never otherwise).
        The others: as :data:`~..core.settings.TRAIN_SETTINGS` describes them.

    Warnings (:mod:`~..core.training.run_warnings`: no validation possible, an optimistic
    validation, a collapsed model) go to ``on_progress`` as ``TrainEvent("warning")``, or
    without it are raised as ``TrainingWarning``; ``result.warnings`` lists them.

    Returns: ``core.training.TrainResult`` (``path``, ``history``, ``best_metrics``...).

    Raises:
        TypeError, ValueError: a setting of the wrong type or out of range (named), bad pairs.
        OutputClash: ``output`` exists and ``overwrite`` is False.
    """
    from dataclasses import replace
    from pathlib import Path

    from ..core.settings import DEFAULT_EPOCHS, amp_of, check_settings
    from ..core.training import TrainConfig, TrainEvent, train_maskrcnn, train_unet
    from ..core.training.augment import AUGMENT_PRESETS
    from ..core.training.data import as_pairs, load_pairs
    from ..core.training.run_warnings import TrainingWarning, collapse_warning, validation_warnings

    check_settings(_T, {k: v for k, v in locals().items() if k in _T})
    if arch == "maskrcnn" and label_kind != "instances":
        raise ValueError("Mask R-CNN learns from instance labels: use label_kind='instances'.")
    if arch != "maskrcnn" and mask_roi_size is not None:
        raise ValueError("mask_roi_size is a Mask R-CNN setting: drop it for arch='unet'.")
    if arch == "maskrcnn" and class_names is not None and len(class_names) != 1:
        raise ValueError("Mask R-CNN models here have one object class: give one class name.")
    if output is not None:
        from ..core.output_paths import PlannedOutput, check_outputs

        check_outputs([PlannedOutput(Path(output), "the model file (output=)")], [], overwrite=overwrite)
    if isinstance(pairs, tuple) and len(pairs) == 2 and all(isinstance(p, (str, os.PathLike)) for p in pairs):
        pairs = load_pairs(*pairs)
    pairs = as_pairs(pairs)
    config = TrainConfig(
        epochs=epochs if epochs is not None or minutes is not None else DEFAULT_EPOCHS, minutes=minutes, crop=crop,
        batch_size=batch_size, lr=lr, val_fraction=val_fraction, val_names=list(val_names) if val_names else None,
        seed=seed, device=device, amp=amp_of(precision), augment=AUGMENT_PRESETS[augment],
        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None, checkpoint_every=checkpoint_every,
        resume=str(resume) if resume else None, base=str(base) if base else None,
        class_weights=list(class_weights) if class_weights is not None else None,
        balance_groups=list(balance_groups) if balance_groups is not None else None,
        mask_roi_size=mask_roi_size,
    )
    said: list[str] = []

    def warn(message: str, epoch: int = 0, step: int = 0, elapsed_s: float = 0.0) -> None:
        said.append(message)
        if on_progress is not None:
            on_progress(TrainEvent("warning", epoch, step, 0, config.epochs, elapsed_s, message=message))
        else:
            warnings.warn(message, TrainingWarning, stacklevel=3)

    for message in validation_warnings(pairs, config, sources):
        warn(message)
    common = dict(output=output, config=config, in_channels=in_channels, channel=channel,
                  provenance=dict(provenance or {}), on_progress=on_progress, should_stop=should_stop)
    if arch == "unet":
        result = train_unet(pairs, label_kind=label_kind, class_names=class_names, depth=depth,
                            base_width=base_width, **common)
    else:
        builder_options = {"mask_head_channels": mask_head_channels, "box_batch_size_per_image": box_batch_size}
        if box_head_size is not None:
            builder_options["box_head_size"] = box_head_size
        result = train_maskrcnn(pairs, class_name=(list(class_names or []) or ["object"])[0], backbone=backbone,
                                fpn_channels=fpn_channels, builder_options=builder_options, **common)
    collapsed = collapse_warning(arch, result.best_metrics)
    if collapsed:
        warn(collapsed, result.history[-1].epoch if result.history else 0, result.steps, result.elapsed_s)
    return replace(result, warnings=said)

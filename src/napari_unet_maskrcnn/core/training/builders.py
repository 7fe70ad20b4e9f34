"""The public training entry points: :func:`train_unet` and :func:`train_maskrcnn`.

Each builds the model description (:class:`~..model_file.ModelSpec`) and the task
(:mod:`.tasks`) for its architecture and hands them to one shared run (:class:`~.loop.Run`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..inputs import DEFAULT_NORMALIZATION
from ..model_file import ModelSpec
from .config import INSTANCE_CLASS_WEIGHTS, TrainConfig
from .data import TrainingPair, as_pairs
from .events import ProgressHandler, StopCheck, TrainResult
from ..settings import MASKRCNN_SCRATCH, UNET_SCRATCH
from .loop import Run
from .tasks import InstanceTask, SemanticTask, unet_class_names

PairsLike = Sequence[TrainingPair | tuple[np.ndarray, np.ndarray]]


def train_unet(
    pairs: PairsLike,
    *,
    output: str | os.PathLike | None = None,
    config: TrainConfig | None = None,
    label_kind: str = "instances",
    class_names: Sequence[str] | None = None,
    depth: int = UNET_SCRATCH["depth"],
    base_width: int = UNET_SCRATCH["base_width"],
    in_channels: int | None = None,
    channel: int | None = None,
    normalization: dict | None = None,
    provenance: dict | None = None,
    on_progress: ProgressHandler | None = None,
    should_stop: StopCheck | None = None,
) -> TrainResult:
    """Train a U-Net on labelled images; return the best model and write it to ``output``.

    Args:
        pairs: :class:`~.data.TrainingPair` objects or ``(image, labels)`` tuples; images
            (H, W) or (H, W, C) of any real dtype, labels (H, W) integers.
        output: model file written atomically at the end, also when stopped; None = not written.
        config: the recipe; None = :class:`~.config.TrainConfig` defaults.
        label_kind: ``"instances"`` (object ids; background / object / boundary are learned),
            ``"classes"`` (class maps 1..K -> outputs 0..K-1; 0 = unlabelled, left out of the
            loss) or ``"painted"`` (class maps 1..K -> outputs 1..K, the painted values; output
            0 "unlabelled" is never a target).
        class_names: instances: the object's name or all three names; class maps: K names.
        depth, base_width: U-Net size (a ``config.base`` or ``config.resume`` model's win).
        in_channels: network input channels; None = from the images (1 grey, 3 colour).
        channel: train on this channel of multichannel images.
        normalization: intensity normalisation dict; None = the default percentiles.
        provenance: extra provenance stored in the file (e.g. data folders, command line).
        on_progress: called with every :class:`TrainEvent`.
        should_stop: polled before every step; True ends the run, keeping the best weights.
    """
    pairs = as_pairs(pairs)
    config = config or TrainConfig()
    if config.class_weights is None and label_kind == "instances":
        config = replace(config, class_weights=list(INSTANCE_CLASS_WEIGHTS))
    spec = model_spec("unet", {"depth": int(depth), "base_width": int(base_width)},
                      unet_class_names(pairs, label_kind, class_names), pairs, in_channels, channel, normalization)
    if config.class_weights is not None and len(config.class_weights) != len(spec.class_names):
        raise ValueError(f"Give one class weight per class ({', '.join(spec.class_names)}), "
                         f"got {len(config.class_weights)}.")
    task = SemanticTask(label_kind, config.class_weights)
    run = Run(task, spec, pairs, config, channel, provenance, on_progress, should_stop)
    return run.execute(output)


def train_maskrcnn(
    pairs: PairsLike,
    *,
    output: str | os.PathLike | None = None,
    config: TrainConfig | None = None,
    class_name: str = "object",
    backbone: str = "resnet18",
    fpn_channels: int = MASKRCNN_SCRATCH["fpn_channels"],
    builder_options: dict | None = None,
    in_channels: int | None = None,
    channel: int | None = None,
    normalization: dict | None = None,
    provenance: dict | None = None,
    on_progress: ProgressHandler | None = None,
    should_stop: StopCheck | None = None,
) -> TrainResult:
    """Train a single-class Mask R-CNN on instance labels; arguments as in :func:`train_unet`.

    Args:
        class_name: the objects' name, e.g. ``"nucleus"``.
        backbone, fpn_channels: Mask R-CNN size (a ``config.base`` or ``config.resume`` model's win).
        builder_options: more keyword arguments of ``build_maskrcnn`` (e.g. ``box_head_size``).
    """
    pairs = as_pairs(pairs)
    spec = model_spec("maskrcnn", {"backbone": backbone, "fpn_channels": int(fpn_channels), **(builder_options or {})},
                      [class_name], pairs, in_channels, channel, normalization)
    run = Run(InstanceTask(), spec, pairs, config, channel, provenance, on_progress, should_stop)
    return run.execute(output)


def model_spec(arch: str, config: dict, class_names: list[str], pairs: Sequence[TrainingPair],
               in_channels: int | None, channel: int | None, normalization: dict | None) -> ModelSpec:
    """The new model's description; input channels from the images unless given, default normalisation."""
    return ModelSpec(
        arch=arch,
        config=config,
        class_names=list(class_names),
        in_channels=in_channels or infer_in_channels(pairs, channel),
        normalization=dict(normalization or DEFAULT_NORMALIZATION),
    )


def infer_in_channels(pairs: Sequence[TrainingPair], channel: int | None = None) -> int:
    """Input channels for these images: 1 with ``channel``; 3 for RGB(A) mixed with grey; else their count."""
    if channel is not None:
        return 1
    counts = {1 if pair.image.ndim == 2 else min(pair.image.shape[2], 3) for pair in pairs}
    if counts <= {1, 3} or len(counts) == 1:
        return max(counts)
    raise ValueError(
        f"The images have different channel counts ({sorted(counts)}): choose one channel or give in_channels."
    )

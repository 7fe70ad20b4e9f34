"""Training runs of the U-Net and Mask R-CNN: epochs, validation, best model, checkpoints.

:func:`~.builders.train_unet` and :func:`~.builders.train_maskrcnn` take in-memory pairs (the GUI passes layers;
the CLI reads folders with :func:`~.data.load_pairs`) and share one loop (:class:`Run`):

- each epoch crops every training image a few times in random order
  (:func:`~.data.epoch_order`; with ``balance_groups``, the same number of crops shared out
  between imaging modalities, :func:`~.groups.balanced_epoch_order`), augments the crops (:mod:`.augment`) and takes AdamW steps
  with gradient clipping and the warm-up + cosine :class:`~.config.Schedule`, in bfloat16
  autocast where the hardware has it;
- after each epoch the whole validation images go through the inference code users run
  (see :mod:`.tasks`) and the best epoch's weights are kept;
- a pair with an annotated ``region`` trains and validates on that region only
  (:func:`~.data.restrict_to_region`);
- with a ``checkpoint_dir``, ``last.pt`` (:mod:`.checkpoint`) is written every
  ``checkpoint_every`` epochs and at the end, and ``best.safetensors`` (a usable model
  file) whenever validation improves; ``resume`` continues from ``last.pt``;
- progress goes to ``on_progress(TrainEvent)``; ``should_stop()`` is polled before every
  step and validation image.

However a run ends (epochs done, time budget, ``should_stop``, or Ctrl-C, whose
``KeyboardInterrupt`` is re-raised afterwards), the best weights (the current ones if no
epoch was validated) are written atomically to ``output`` with the provenance inside.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..inputs import prepare_plane
from ..model_file import ModelSpec, build_network, load_model_file, read_spec, save_model
from ..object_size import median_diameter
from .augment import random_sample
from .checkpoint import (
    BEST_FILE,
    load_checkpoint,
    random_states,
    restore_random_states,
    save_checkpoint,
    seed_everything,
)
from .config import Schedule, TrainConfig
from .data import TrainingPair, crops_per_image, epoch_order, restrict_to_region, split_pairs
from .events import EpochReport, ProgressHandler, StopCheck, TrainEvent, TrainResult
from .precision import Clock, Precision
from .prefetch import BatchPrefetcher
from .provenance import with_provenance


@dataclass
class _State:
    """What a run accumulates (and a checkpoint carries)."""

    epoch: int = 0
    step: int = 0
    best_epoch: int | None = None
    best_score: float = -math.inf
    best_metrics: dict = field(default_factory=dict)
    best_weights: dict | None = None
    history: list[EpochReport] = field(default_factory=list)


class _Stopped(Exception):
    """``should_stop`` asked to end the run."""


class Run:
    """One training run (see the module docstring); :meth:`execute` runs it."""

    def __init__(self, task, spec: ModelSpec, pairs: list[TrainingPair], config: TrainConfig | None,
                 channel: int | None, provenance: dict | None, on_progress: ProgressHandler | None,
                 should_stop: StopCheck | None):
        from ..device import choose_device

        self.task = task
        self.config = config = (config or TrainConfig()).resolved(task.arch)
        self.channel = channel
        self.extra_provenance = copy.deepcopy(provenance or {})
        self.on_progress = on_progress or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self.notes: list[str] = []
        self.base_provenance: dict = {}
        self.device = choose_device(config.device)
        checkpoint = load_checkpoint(config.resume) if config.resume else None
        if checkpoint is not None:
            spec = self._resumed_spec(checkpoint)
        elif config.base:
            spec = self._base_spec(spec)
        spec = self._with_mask_roi_size(spec, resumed=checkpoint is not None)
        if spec.pixel_size_um is None:
            spec = replace(spec, pixel_size_um=_common_pixel_size(pairs))
        self.train_pairs, self.val_pairs = split_pairs(
            pairs, val_fraction=config.val_fraction, val_names=self.config.val_names, seed=config.seed
        )
        if getattr(task, "label_kind", "instances") == "instances":
            diameter = training_diameter(self.train_pairs)
            if diameter is not None:
                spec = replace(spec, object_diameter_px=round(diameter, 2))
        self.spec = spec
        seed_everything(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.network = build_network(spec)
        if config.base and checkpoint is None:
            self._load_base_weights()
        if checkpoint is None:
            task.init_network(self.network)
        self.network.to(self.device)
        self.parameters = list(self.network.parameters())
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.lr, weight_decay=config.weight_decay)
        self.precision = Precision(self.device, config.amp)
        self.state = _State()
        elapsed = self._restore(checkpoint) if checkpoint is not None else 0.0
        self.train_data = [self._data(pair, task.pad_label) for pair in self.train_pairs]
        self.val_data = [(source, task.truth(labels)) for source, labels in
                         (self._data(pair, 0) for pair in self.val_pairs)]
        self.shapes = [source.shape for source, _ in self.train_data]
        self.groups: list[str] | None = None
        if config.balance_groups is not None:
            from collections import Counter

            from .groups import modality

            self.groups = [modality(pair.image) for pair in self.train_pairs]
            counts = Counter(self.groups)
            self.notes.append("Group-balanced epochs: " + ", ".join(
                f"{name} {counts[name]} images" for name in sorted(counts)) + ".")
        crops = sum(crops_per_image(shape, config.crop, config.max_crops_per_image) for shape in self.shapes)
        self.steps_per_epoch = math.ceil(crops / config.batch_size)
        self.schedule = Schedule.for_run(config, self.steps_per_epoch)
        self.clock = Clock(elapsed)
        self.lr = 0.0

    # -- setup -------------------------------------------------------------------------------

    def _resumed_spec(self, checkpoint: dict) -> ModelSpec:
        spec = ModelSpec.from_json(checkpoint["spec"], self.config.resume)
        if spec.arch != self.task.arch:
            raise ValueError(f"Checkpoint '{self.config.resume}' is a {spec.arch} run, not {self.task.arch}.")
        folder = Path(self.config.resume)
        self.config = replace(
            self.config,
            val_names=list(checkpoint["val_names"]),
            checkpoint_dir=self.config.checkpoint_dir or str(folder if folder.is_dir() else folder.parent),
        )
        return spec

    def _base_spec(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` with the base model's architecture, input channels and normalisation."""
        from ..registry import resolve_model

        base = read_spec(resolve_model(self.config.base))
        self.base_provenance = dict(base.provenance)
        if base.arch != spec.arch:
            raise ValueError(f"Base model '{self.config.base}' is a {base.arch} model; this trains a {spec.arch}.")
        if base.in_channels != spec.in_channels:
            self.notes.append(
                f"The base model takes {base.in_channels} channel(s); the images are converted to that."
            )
        return replace(spec, config=dict(base.config), in_channels=base.in_channels,
                       normalization=dict(base.normalization), pixel_size_um=base.pixel_size_um,
                       defaults=dict(base.defaults))

    def _with_mask_roi_size(self, spec: ModelSpec, resumed: bool) -> ModelSpec:
        """``spec`` with ``config.mask_roi_size`` as its mask RoIAlign grid (a resumed run keeps its own)."""
        wanted = self.config.mask_roi_size
        if wanted is None:
            return spec
        from ..models.maskrcnn import MASK_ROI_SIZE

        current = int(spec.config.get("mask_roi_size", MASK_ROI_SIZE))
        if resumed:
            if current != wanted:
                raise ValueError(f"The checkpoint's model has a mask grid of {current}, not {wanted}: "
                                 "resume without mask_roi_size, or start a new run from its best model.")
            return spec
        if current != wanted:
            source = f"the base model's {current}" if self.config.base else f"the default {current}"
            self.notes.append(f"Mask head RoIAlign grid {wanted} x {wanted} (was {source}): "
                              f"{2 * wanted} x {2 * wanted} masks.")
        return replace(spec, config={**spec.config, "mask_roi_size": int(wanted)})

    def _load_base_weights(self) -> None:
        """Copy the base model's weights; layers whose shape differs (class heads) stay new."""
        from ..registry import resolve_model

        base_spec, base = load_model_file(resolve_model(self.config.base))
        own = self.network.state_dict()
        kept = {key: value for key, value in base.state_dict().items()
                if key in own and own[key].shape == value.shape}
        self.network.load_state_dict(kept, strict=False)
        fresh = sorted(set(own) - set(kept))
        self.notes.append(f"Fine-tuning from '{self.config.base}' ({len(kept)} of {len(own)} tensors copied).")
        if fresh:
            self.notes.append(
                f"The base model's classes ({', '.join(base_spec.class_names)}) differ from this training's "
                f"({', '.join(self.spec.class_names)}): its class-specific layers are re-initialised "
                f"({', '.join(fresh)})."
            )

    def _restore(self, checkpoint: dict) -> float:
        """Load a checkpoint's weights, optimiser, progress and random states; return its seconds."""
        self.network.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.precision.load_state_dict(checkpoint.get("scaler", {}))
        state = self.state
        state.epoch, state.step = int(checkpoint["epoch"]), int(checkpoint["step"])
        state.history = [EpochReport(**report) for report in checkpoint.get("history", [])]
        best = checkpoint.get("best", {})
        resumed = Path(self.config.resume)
        best_file = (resumed if resumed.is_dir() else resumed.parent) / BEST_FILE
        if best.get("epoch") is not None and best_file.is_file():
            state.best_epoch, state.best_score = best["epoch"], float(best["score"])
            state.best_metrics = dict(best["metrics"])
            state.best_weights = load_model_file(best_file)[1].state_dict()
        elif best.get("epoch") is not None:
            self.notes.append(f"'{best_file}' is missing: the best epoch is chosen again from here on.")
        restore_random_states(checkpoint["rng"], self.rng)
        self.notes.append(f"Resumed after epoch {state.epoch} (step {state.step}).")
        return float(checkpoint["elapsed_s"])

    def _data(self, pair: TrainingPair, outside_label: int):
        """(source, labels) of a pair as training sees them: its region only, when it has one."""
        source = prepare_plane(pair.image, self.spec.in_channels, self.channel, self.spec.normalization)
        return restrict_to_region(source, pair.labels, pair.region, outside_label)

    # -- the run -----------------------------------------------------------------------------

    def execute(self, output: str | os.PathLike | None) -> TrainResult:
        """Train until a stopping rule, then write ``output``; Ctrl-C writes it and re-raises."""
        for note in self.notes:
            self._emit("note", message=note)
        try:
            reason = self._epochs()
        except KeyboardInterrupt:
            self._finish("interrupted", output)
            raise
        return self._finish(reason, output)

    def _epochs(self) -> str:
        """Run epochs until one of the stopping rules; return the reason."""
        config, state = self.config, self.state
        try:
            while config.epochs is None or state.epoch < config.epochs:
                if self.schedule.out_of_time(self.clock.elapsed()):
                    return "time budget"
                if self.should_stop():
                    raise _Stopped
                losses, cut_short = self._train_epoch()
                self._end_epoch(self._validate(losses))
                if cut_short:
                    return "time budget"
        except _Stopped:
            return "stopped"
        return "epochs"

    def _train_epoch(self) -> tuple[dict[str, float], bool]:
        """One pass over the training images: (mean losses, whether the time budget cut it short).

        With ``config.prefetch`` the next batches are cropped and augmented in a background
        thread (:class:`BatchPrefetcher`) while the network trains on the current one. It is
        off by default: on a loaded 2-core AVX2 EPYC it cut Mask R-CNN training from 0.60 to
        0.19 crops/s (``benchmarks/training_throughput.py``; the producer thread competes with
        torch's threads and for the GIL).
        """
        config = self.config
        if self.groups is not None:
            from .groups import balanced_epoch_order, group_weights

            order = balanced_epoch_order(self.shapes, self.groups, config.crop, config.max_crops_per_image,
                                         self.rng, group_weights(config.balance_groups))
        else:
            order = epoch_order(self.shapes, config.crop, config.max_crops_per_image, self.rng)
        batches = [order[start : start + config.batch_size] for start in range(0, len(order), config.batch_size)]
        sums: dict[str, float] = {}
        steps = 0
        with BatchPrefetcher(self._make_batch, batches, depth=2 if config.prefetch else 0) as prefetched:
            for samples in prefetched:
                if self.should_stop():
                    raise _Stopped
                if self.schedule.out_of_time(self.clock.elapsed()):
                    return _means(sums, steps), True
                losses = self._step(samples)
                if losses is not None:
                    for key, value in losses.items():
                        sums[key] = sums.get(key, 0.0) + value
                    steps += 1
                self._emit("step", loss=None if losses is None else losses["loss"])
        return _means(sums, steps), False

    def _make_batch(self, indices: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Augmented (image (C, crop, crop), labels (crop, crop)) crops of the given training images."""
        config = self.config
        return [random_sample(*self.train_data[i], config.crop, self.rng, config.augment, self.task.pad_label)
                for i in indices]

    def _step(self, samples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float] | None:
        """One optimisation step on a batch of crops; None if it was skipped."""
        config = self.config
        images = torch.from_numpy(np.stack([image for image, _ in samples])).to(self.device)
        self.lr = self.schedule.lr(self.state.step + 1, self.clock.elapsed())
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.network.train()
        with self.precision.autocast():
            losses = self.task.losses(self.network, images, [labels for _, labels in samples])
        total = sum(losses.values())
        self.state.step += 1
        if not self.precision.step(total, self.optimizer, self.parameters, config.grad_clip):
            self._emit("note", message=f"Step {self.state.step}: the loss is not finite; the step was skipped.")
            return None
        return {"loss": total.item(), **{key: value.item() for key, value in losses.items()}}

    def _validate(self, losses: dict[str, float]) -> EpochReport:
        """Score the current weights on the whole validation images; keep them if best."""
        state = self.state
        metrics: dict[str, float | None] = {}
        if self.val_data:
            truths, predictions = [], []
            for source, truth in self.val_data:
                if self.should_stop():
                    raise _Stopped
                predictions.append(self.task.predict(self.network, source, self.device, self.config.val_tile))
                truths.append(truth)
                self._emit("validate")
            metrics = self.task.metrics(truths, predictions, self.spec.class_names)
        score = metrics.get(self.task.score_name)
        value = -math.inf if score is None else score
        is_best = value >= state.best_score  # ties go to the later, longer-trained epoch
        if is_best:
            state.best_epoch, state.best_score, state.best_metrics = state.epoch + 1, value, metrics
            state.best_weights = {
                key: value.detach().to("cpu", copy=True) for key, value in self.network.state_dict().items()
            }
        return EpochReport(state.epoch + 1, state.step, losses, metrics, score, is_best, self.lr,
                           self.clock.elapsed())

    def _end_epoch(self, report: EpochReport) -> None:
        """Record the epoch, write the best model and the periodic checkpoint, report it."""
        state, config = self.state, self.config
        state.epoch += 1
        state.history.append(report)
        if config.checkpoint_dir and report.is_best:  # the network holds the best weights right now
            save_model(Path(config.checkpoint_dir) / BEST_FILE, self.network,
                       self._spec_with_provenance("in progress"))
        if config.checkpoint_dir and state.epoch % config.checkpoint_every == 0:
            self._save_checkpoint()
        self.on_progress(TrainEvent("epoch", state.epoch, state.step, self.steps_per_epoch, config.epochs,
                                    self.clock.elapsed(), report=report))

    def _finish(self, reason: str, output) -> TrainResult:
        """Write the last checkpoint (unless interrupted mid-step) and the kept weights to ``output``."""
        state = self.state
        if self.config.checkpoint_dir and reason != "interrupted":
            self._save_checkpoint()
        if state.best_weights is not None:
            self.network.load_state_dict(state.best_weights)
        self.network.eval()
        spec = self._spec_with_provenance(reason)
        # a run stopped before its first step has nothing to keep: no file
        path = save_model(output, self.network, spec) if output is not None and state.step > 0 else None
        return TrainResult(self.network, spec, path, list(state.history), state.best_epoch,
                           dict(state.best_metrics), reason, self.clock.elapsed(), state.step)

    # -- helpers -----------------------------------------------------------------------------

    def _emit(self, stage: str, **fields) -> None:
        self.on_progress(TrainEvent(stage, self.state.epoch + 1, self.state.step, self.steps_per_epoch,
                                    self.config.epochs, self.clock.elapsed(), **fields))

    def _save_checkpoint(self) -> None:
        state = self.state
        save_checkpoint(self.config.checkpoint_dir, {
            "spec": self.spec.to_json(),
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.precision.state_dict(),
            "epoch": state.epoch,
            "step": state.step,
            "elapsed_s": self.clock.elapsed(),
            "best": {"epoch": state.best_epoch, "score": state.best_score, "metrics": state.best_metrics},
            "history": [asdict(report) for report in state.history],
            "val_names": [pair.name for pair in self.val_pairs],
            "rng": random_states(self.rng),
        })

    def _spec_with_provenance(self, reason: str) -> ModelSpec:
        return with_provenance(
            self.spec, self.extra_provenance, reason=reason, config=self.config, task=self.task, state=self.state,
            train_pairs=self.train_pairs, val_pairs=self.val_pairs, channel=self.channel,
            elapsed_s=self.clock.elapsed(), device=self.device, precision_label=self.precision.label,
            base_provenance=self.base_provenance,
        )

def _means(sums: dict[str, float], steps: int) -> dict[str, float]:
    return {key: value / steps for key, value in sums.items()} if steps else {}


def training_diameter(pairs: Sequence[TrainingPair]) -> float | None:
    """Median equivalent diameter (pixels) of the instance objects of ``pairs`` (inside their regions)."""
    return median_diameter([pair.labels if pair.region is None else np.where(pair.region, pair.labels, 0)
                            for pair in pairs])


def _common_pixel_size(pairs: Sequence[TrainingPair]) -> float | None:
    """Median X pixel size (µm) of the pairs when every one has it, else None."""
    sizes = [pair.pixel_size_um for pair in pairs]
    return float(np.median(sizes)) if sizes and all(size is not None for size in sizes) else None

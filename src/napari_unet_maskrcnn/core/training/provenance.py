"""Provenance stored in a trained model file: data, recipe, validation, training, hardware, software."""

from __future__ import annotations

import copy
import platform
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model_file import ModelSpec
from ..version import package_version


def stage_summary(provenance: dict) -> dict:
    """One training run of a model's history: when, how long, on what, from what, how good."""
    training, recipe = provenance.get("training", {}), provenance.get("recipe", {})
    validation, hardware = provenance.get("validation", {}), provenance.get("hardware", {})
    return {
        "finished_utc": training.get("finished_utc"),
        "time_s": float(training.get("time_s") or 0.0),
        "epochs": training.get("epochs"),
        "steps": training.get("steps"),
        "base_model": training.get("base_model"),
        "command_line": provenance.get("command_line"),
        "augment": recipe.get("augment"),
        "hardware": {key: hardware.get(key) for key in ("cpu", "device", "torch_threads", "precision")},
        "best_validation": validation.get("best_metrics"),
        "evaluation": provenance.get("evaluation"),
    }


def previous_stages(base_provenance: dict) -> list[dict]:
    """The training stages recorded in a base model's provenance (one for files without ``stages``)."""
    if not base_provenance.get("training"):
        return []
    return list(base_provenance.get("stages") or [stage_summary(base_provenance)])


def with_provenance(spec: ModelSpec, extra: dict, *, reason: str, config, task, state, train_pairs: list,
                    val_pairs: list, channel: int | None, elapsed_s: float, device: torch.device,
                    precision_label: str, base_provenance: dict | None = None) -> ModelSpec:
    """``spec`` with data, recipe, validation, training, hardware and software provenance.

    ``extra`` is the caller's own provenance (kept, with its ``data`` entries merged);
    ``state`` is the run's accumulated state (epochs, steps, best epoch, history).
    ``base_provenance`` is the provenance of the model this run started from (warm restart
    or fine-tuning): its ``stages`` (or, for older files, its own training) come first in
    ``stages``, so a model that is trained on in several runs records all of them and
    ``total_cpu_hours`` sums their times.
    """
    provenance = copy.deepcopy(extra)
    label_kind = getattr(task, "label_kind", "instances")
    provenance["data"] = {
        **provenance.get("data", {}),
        "n_images": len(train_pairs) + len(val_pairs),
        "n_train": len(train_pairs),
        "n_val": len(val_pairs),
        "val_names": [pair.name for pair in val_pairs],
        "label_kind": label_kind,
        "channel": channel,
        "n_with_region": sum(pair.region is not None for pair in (*train_pairs, *val_pairs)),
    }
    recipe = asdict(config)
    for key in ("device", "resume", "checkpoint_dir", "val_names"):
        recipe.pop(key)
    provenance["recipe"] = {"arch": spec.arch, "architecture": dict(spec.config), **recipe}
    provenance["validation"] = {
        "metric": task.score_name,
        "best_epoch": state.best_epoch,
        "best_metrics": state.best_metrics,
        "epochs": [{"epoch": r.epoch, "loss": r.losses.get("loss"), **r.metrics} for r in state.history],
    }
    provenance["training"] = {
        "stop_reason": reason,
        "epochs": state.epoch,
        "steps": state.step,
        "time_s": round(elapsed_s, 1),
        "resumed_from": str(config.resume) if config.resume else None,
        "base_model": config.base,
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    provenance["hardware"] = hardware(device, precision_label)
    provenance["software"] = software()
    provenance["stages"] = [*previous_stages(base_provenance or {}), stage_summary(provenance)]
    provenance["total_cpu_hours"] = round(sum(stage["time_s"] for stage in provenance["stages"]) / 3600.0, 3)
    score = state.best_metrics.get(task.score_name)
    quality = f", {task.score_name} {score:.3f}" if score is not None else ""
    provenance.setdefault("description", f"{spec.arch} trained on {len(train_pairs)} image(s)"
                                         f"{quality} ({reason})")
    return replace(spec, provenance=provenance)


def hardware(device: torch.device, precision_label: str) -> dict[str, Any]:
    info = {
        "device": str(device),
        "precision": precision_label,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def software() -> dict[str, str]:
    import torchvision

    return {
        "napari_unet_maskrcnn": package_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }

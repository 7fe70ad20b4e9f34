"""Resumable training checkpoints: plain tensors and dicts, written atomically.

``last.pt`` holds everything a run needs to continue: the model description (JSON), the
weights, the optimizer and loss-scaler states, the schedule position (step, training
seconds), the completed epochs and their reports, the best epoch so far, the validation
names, and the random states of torch, numpy and Python. It is a ``torch.save`` file of
tensors, numbers, strings, lists and dicts only, so ``torch.load(weights_only=True)`` reads
it and nothing is unpickled that could run code. The best weights are not in it: they are
``best.safetensors`` in the same folder, an ordinary model file.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FILE = "last.pt"
BEST_FILE = "best.safetensors"
CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = ("format", "spec", "model", "optimizer", "epoch", "step", "elapsed_s", "rng", "val_names")


def save_checkpoint(folder: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format number) to ``folder/last.pt`` atomically; returns the path."""
    from ..io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_FILE
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (a ``last.pt`` file, or the folder holding one) with ``weights_only=True``.

    Raises:
        ValueError: the file is missing, unreadable, or not a checkpoint of this plugin.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise ValueError(f"No checkpoint at '{path}'.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for foreign or truncated files
        raise ValueError(f"'{path}' is not a readable checkpoint ({type(err).__name__}: {err}).") from err
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in REQUIRED_KEYS):
        raise ValueError(f"'{path}' is not a training checkpoint of napari-unet-maskrcnn.")
    if checkpoint["format"] > CHECKPOINT_FORMAT:
        raise ValueError(f"'{path}' uses checkpoint format {checkpoint['format']}; update napari-unet-maskrcnn.")
    return checkpoint


def random_states(rng: np.random.Generator) -> dict[str, Any]:
    """The random states of torch (CPU and CUDA), numpy (``rng``) and Python."""
    states = {
        "torch": torch.get_rng_state(),
        "numpy": rng.bit_generator.state,
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any], rng: np.random.Generator) -> None:
    """Undo :func:`random_states`: the generators continue where the checkpoint left them."""
    torch.set_rng_state(states["torch"])
    rng.bit_generator.state = states["numpy"]
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's legacy global generator and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)

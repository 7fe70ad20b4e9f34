"""Tiny randomly initialised model files, for tests and demos of the machinery (not for use)."""

from __future__ import annotations

import os
from pathlib import Path

from .model_file import ModelSpec, build_network, save_model

TINY_CONFIGS = {
    "unet": {"depth": 2, "base_width": 8},
    "maskrcnn": {"backbone": "resnet18", "fpn_channels": 32, "box_head_size": 64,
                 "mask_head_channels": 32},
}


def make_tiny_model_file(
    path: str | os.PathLike,
    arch: str = "unet",
    in_channels: int = 1,
    class_names: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write an untrained tiny ``arch`` model to ``path`` and return the path.

    Its outputs are meaningless; it exercises loading, tiling, stacks and the GUI quickly.
    """
    import torch

    if class_names is None:
        class_names = ["background", "object", "boundary"] if arch == "unet" else ["object"]
    spec = ModelSpec(
        arch=arch,
        config=dict(TINY_CONFIGS[arch]),
        class_names=list(class_names),
        in_channels=in_channels,
        name=f"tiny-{arch}",
        provenance={"description": "untrained tiny test model"},
    )
    torch.manual_seed(seed)
    network = build_network(spec)
    return save_model(path, network, spec)

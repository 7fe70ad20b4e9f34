"""Test-time augmentation for U-Nets: class probabilities averaged over the four flips of a tile.

Each tile is also seen mirrored left-right, up-down and both; the network's softmax outputs are
mirrored back and averaged. A network wrapped in :class:`FlipAveraged` is a drop-in replacement
for the plain one anywhere tiles are classified (tiling, blending and blocks unchanged): it
returns the log of the averaged probabilities, whose softmax is that average.
"""

from __future__ import annotations

import torch

FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
"""Dimensions flipped in each view of a (B, C, H, W) batch: none, X, Y, both."""


class FlipAveraged(torch.nn.Module):
    """``network`` seen through the four flips of its input; costs four forward passes per tile.

    forward: float32 (B, C, H, W) -> log of the mean softmax, float32 (B, K, H, W).
    """

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        views = torch.cat([tiles.flip(dims) if dims else tiles for dims in FLIPS])
        probabilities = torch.softmax(self.network(views).float(), dim=1).chunk(len(FLIPS))
        mean = sum(p.flip(dims) if dims else p for p, dims in zip(probabilities, FLIPS)) / len(FLIPS)
        return torch.log(mean.clamp_min(torch.finfo(mean.dtype).tiny))

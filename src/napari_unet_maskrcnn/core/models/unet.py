"""A classic 2D U-Net for per-pixel (semantic) classification of any-sized images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _DoubleConv(nn.Sequential):
    """Two ``3x3 conv -> BatchNorm -> ReLU`` layers: (B, in, H, W) -> (B, out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) returning per-pixel class logits.

    The encoder has ``depth`` max-pool steps; level ``i`` has ``base_width * 2**i``
    feature channels (the bottleneck, level ``depth``, the most). The decoder upsamples with
    2x2 transposed convolutions and concatenates the encoder's features of the same level.
    With ``depth=4, base_width=32`` the network has about 7.8 million parameters.

    Args:
        in_channels: image channels the network takes (1 = greyscale, 3 = RGB).
        num_classes: output classes K (index 0 usually background).
        depth: number of 2x downsamplings; inputs are padded internally to a
            multiple of ``2**depth`` pixels, so any height and width work.
        base_width: feature channels of the first level.
    """

    def __init__(self, in_channels: int, num_classes: int, *, depth: int = 4, base_width: int = 32):
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("depth", depth),
            ("base_width", base_width),
        ):
            if int(value) < 1:
                raise ValueError(f"UNet {name} must be at least 1, got {value}.")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.depth = int(depth)
        widths = [int(base_width) * 2**level for level in range(self.depth + 1)]
        self.encoders = nn.ModuleList(
            _DoubleConv(c_in, c_out)
            for c_in, c_out in zip([self.in_channels, *widths[:-1]], widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.upsamplers = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2)
            for level in reversed(range(self.depth))
        )
        self.decoders = nn.ModuleList(
            _DoubleConv(2 * widths[level], widths[level]) for level in reversed(range(self.depth))
        )
        self.head = nn.Conv2d(widths[0], self.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for every pixel.

        Args:
            x: float32 images (B, in_channels, H, W), any H, W >= 1.

        Returns:
            float32 logits (B, num_classes, H, W); ``softmax`` over dim 1 gives probabilities.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects a (batch, {self.in_channels}, height, width) tensor, got shape "
                f"{tuple(x.shape)}."
            )
        height, width = x.shape[-2:]
        features = _pad_to_multiple(x, 2**self.depth)
        skips = []
        for encoder in self.encoders[:-1]:
            features = encoder(features)
            skips.append(features)
            features = self.pool(features)
        features = self.encoders[-1](features)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            features = decoder(torch.cat([skip, upsample(features)], dim=1))
        return self.head(features)[..., :height, :width]


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom and right so H and W become multiples of ``multiple``.

    Reflection padding is used when each side is long enough for it (the padding must be
    shorter than the side), edge replication otherwise (e.g. a 1-pixel-high image).
    """
    height, width = x.shape[-2:]
    pad_h = -height % multiple
    pad_w = -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)

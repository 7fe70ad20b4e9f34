"""Resampling of planes for the object size: a plane read resized, window by window, and results
mapped back onto the plane's own pixel grid (pixel-centre convention, anti-aliased when shrinking).

Sources here follow ``inputs.PlaneSource``'s reading interface (``shape`` (H, W), ``channels``,
``read(y0, y1, x0, x1)`` -> float32 (C, h, w), ``part(window)``), so the blocks of
:mod:`.blockwise` run on a resized plane, or a window of one, as on the plane itself.
"""

from __future__ import annotations

import math

import numpy as np


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H', W') of a (H, W) plane resized by ``scale`` (rounded, at least 1 pixel)."""
    return tuple(max(1, int(round(n * scale))) for n in shape)


class ScaledSource:
    """A ``PlaneSource`` resized by ``scale``, read lazily window by window.

    ``read`` of the resized plane reads the matching window of ``source`` plus the margin
    the anti-aliasing filter and the interpolation need, so every window equals the same
    part of the whole resized plane (no seams between tiles).

    Attributes:
        shape: (H', W') of the resized plane, :func:`scaled_shape`.
        channels: as ``source``.
    """

    def __init__(self, source, scale: float):
        self._source = source
        height, width = source.shape
        self.shape = scaled_shape((height, width), scale)
        self.channels = source.channels
        self._factors = (height / self.shape[0], width / self.shape[1])  # source pixels per output pixel

    def part(self, window, load: bool = True) -> ScaledSource:
        """This source (block tasks ask for a part; a resized plane is read lazily from its source anyway)."""
        return self

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Window ``[y0, y1) x [x0, x1)`` of the resized plane: float32 (channels, y1 - y0, x1 - x0)."""
        height, width = self._source.shape
        rows = _positions(y0, y1, self._factors[0], height)
        cols = _positions(x0, x1, self._factors[1], width)
        pads = [_filter_radius(f) + 1 for f in self._factors]
        r0, c0 = max(int(rows[0]) - pads[0], 0), max(int(cols[0]) - pads[1], 0)
        r1 = min(int(math.ceil(rows[-1])) + 1 + pads[0], height)
        c1 = min(int(math.ceil(cols[-1])) + 1 + pads[1], width)
        window = self._source.read(r0, r1, c0, c1)
        return _resample(window, rows - r0, cols - c0, self._factors)


class CentralWindow:
    """The central ``side`` x ``side`` window (or less) of a source, read as a source of its own.

    Attributes:
        shape: (h, w) of the window; ``whole_shape``: (H, W) of the source it is cut from.
        channels: as the source.
    """

    def __init__(self, source, side: int):
        self._source = source
        self.whole_shape = tuple(source.shape)
        self.shape = tuple(min(side, n) for n in self.whole_shape)
        self.channels = source.channels
        self._offset = tuple((n - m) // 2 for n, m in zip(self.whole_shape, self.shape))

    def part(self, window, load: bool = True) -> CentralWindow:
        """This source (block tasks ask for a part; the window is read lazily from its source anyway)."""
        return self

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Window ``[y0, y1) x [x0, x1)`` of this window: float32 (channels, y1 - y0, x1 - x0)."""
        oy, ox = self._offset
        return self._source.read(y0 + oy, y1 + oy, x0 + ox, x1 + ox)


def nearest_to_grid(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of (h, w) ``labels`` (any dtype) to exactly (H, W) (pixel centres)."""
    rows = _nearest(labels.shape[0], shape[0])
    cols = _nearest(labels.shape[1], shape[1])
    return labels[rows[:, None], cols[None, :]]


def linear_to_grid(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Linear resize of float (K, h, w) ``array`` to float32 (K, H, W), anti-aliased when shrinking."""
    factors = (array.shape[1] / shape[0], array.shape[2] / shape[1])
    rows = _positions(0, shape[0], factors[0], array.shape[1])
    cols = _positions(0, shape[1], factors[1], array.shape[2])
    return _resample(np.asarray(array, np.float32), rows, cols, factors)


def _nearest(source_len: int, out_len: int) -> np.ndarray:
    """Source index of each output pixel whose centre maps into it."""
    index = np.floor((np.arange(out_len) + 0.5) * source_len / out_len).astype(np.int64)
    return np.minimum(index, source_len - 1)


def _positions(start: int, stop: int, factor: float, source_len: int) -> np.ndarray:
    """Source coordinates (pixel-centre convention, clipped to the plane) of output pixels ``start..stop-1``."""
    return np.clip((np.arange(start, stop) + 0.5) * factor - 0.5, 0.0, source_len - 1.0)


def _sigma(factor: float) -> float:
    """Anti-aliasing Gaussian sigma (source pixels) when ``factor`` source pixels make one output pixel."""
    return max(0.0, (factor - 1.0) / 2.0)


def _filter_radius(factor: float) -> int:
    """Pixels the Gaussian of :func:`_sigma` reaches (scipy's default truncation at 4 sigma)."""
    return int(4.0 * _sigma(factor) + 0.5)


def _resample(window: np.ndarray, rows: np.ndarray, cols: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """Anti-aliased linear samples of float (C, h, w) ``window`` at ``rows`` x ``cols`` (window coordinates)."""
    from scipy.ndimage import gaussian_filter

    sigmas = (0.0, _sigma(factors[0]), _sigma(factors[1]))
    if any(sigmas):
        window = gaussian_filter(window, sigmas, mode="nearest")
    return _interpolate(_interpolate(window, rows, axis=1), cols, axis=2).astype(np.float32, copy=False)


def _interpolate(array: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``array`` along ``axis`` at fractional ``positions`` (within range)."""
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, array.shape[axis] - 1)
    shape = [1] * array.ndim
    shape[axis] = -1
    frac = (positions - low).reshape(shape).astype(np.float32)
    return np.take(array, low, axis=axis) * (1 - frac) + np.take(array, high, axis=axis) * frac

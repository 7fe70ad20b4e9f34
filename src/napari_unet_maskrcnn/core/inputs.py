"""From a raw image plane to network input: dtype, channels, NaN/inf and normalisation.

:func:`prepare_plane` looks at a plane once (channel layout, and intensity statistics on a
bounded subsample) and returns a :class:`PlaneSource`, whose :meth:`PlaneSource.read`
converts one window at a time. A 10k x 10k plane is therefore never converted to float
as a whole: memory stays proportional to the tile size. The plane may be a lazy dask array
(over zarr or a TIFF, see :mod:`.arrays`): only the windows read and the subsample are
then ever loaded.

Channels (``C`` is the plane's channel count; greyscale (H, W) counts as C = 1):

- ``channel`` given: that channel, repeated ``in_channels`` times.
- C == 1: repeated ``in_channels`` times.
- C == ``in_channels``: used as is.
- RGB (C = 3) or RGBA (C = 4, alpha dropped): the mean of R, G, B for a 1-channel model,
  R, G, B for a 3-channel model. A translucent alpha triggers one warning.
- C < ``in_channels`` (e.g. two fluorescence channels for an RGB model): the channels in
  order, padded with zero channels, as a composite of red, green and black.
- otherwise: ValueError asking to choose ``channel``.

Normalisation (``normalization`` dict from the model file), per output channel:

- ``{"kind": "percentile", "low": 1.0, "high": 99.8}`` (default): (x - p_low) / (p_high - p_low).
  When p_high == p_low (sparse bright spots on a flat background) the min and max are used.
- ``{"kind": "minmax"}``: (x - min) / (max - min).
- ``{"kind": "none"}``: a cast to float32 only.

Statistics come from the finite values of a strided subsample of at most
:data:`SAMPLE_PIXELS` pixels, computed once per plane. Results are not clipped to 0..1
(as in cellpose and stardist) but to :data:`OUTPUT_RANGE`, which keeps the tails the
network saw in training while stopping hot pixels from reaching values in the hundreds; a
``"clip": [low, high]`` or ``"clip": None`` entry in the dict overrides it (``none`` is
only clipped to the float32 range). A constant plane reads as zeros. NaN reads as
the low anchor (0 after normalisation); +inf and -inf read as the largest and smallest
finite sample values; a plane without finite values reads as zeros.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import is_lazy, materialise
from .tiling import Window

DEFAULT_NORMALIZATION = {"kind": "percentile", "low": 1.0, "high": 99.8}
NORMALIZATION_KINDS = ("percentile", "minmax", "none")
OUTPUT_RANGE = (-1.0, 2.0)
SAMPLE_PIXELS = 1 << 20
_FLOAT32_MAX = float(np.finfo(np.float32).max)

Mix = tuple[int, ...]
"""Input channels averaged into one output channel; empty means a channel of zeros."""


@dataclass(frozen=True)
class Scaling:
    """How raw values of one output channel become network input: ``(x - low) * scale``.

    Attributes:
        low: raw value that maps to 0 (NaN is read as this value).
        scale: 1 / (high - low), or 0 for a constant channel (which reads as zeros).
        finite_min, finite_max: values that replace -inf and +inf.
        clip: (low, high) bounds of the output, or None.
    """

    low: float
    scale: float
    finite_min: float
    finite_max: float
    clip: tuple[float, float] | None


class PlaneSource:
    """A plane ready for tiled inference: reads normalised float32 windows on demand.

    Attributes:
        shape: (H, W) of the plane, in pixels.
        channels: channels of every window, the model's ``in_channels``.
        scalings: one :class:`Scaling` per output channel (raw-intensity units).
    """

    def __init__(self, pixels, mixes: list[Mix], scalings: list[Scaling], origin: tuple[int, int] = (0, 0),
                 shape: tuple[int, int] | None = None):
        """``pixels`` (H, W, C) raw plane (numpy or dask); one mix and one scaling per output channel.

        ``origin`` and ``shape`` are for :meth:`part`: ``pixels`` then holds only the part
        of a plane of ``shape`` that starts at ``origin``.
        """
        self._pixels = pixels
        self._mixes = mixes
        self.scalings = scalings
        self._work_dtype = _work_dtype(pixels.dtype)
        self._origin = origin
        self.shape: tuple[int, int] = shape or (int(pixels.shape[0]), int(pixels.shape[1]))
        self.channels = len(mixes)

    def crop(self, window: Window) -> PlaneSource:
        """A plane of its own, shape ``window.shape``: the pixels of ``window`` (read into
        memory), normalised with this plane's statistics (a window's own would differ)."""
        return PlaneSource(self.part(window)._pixels, self._mixes, self.scalings)

    def part(self, window: Window, load: bool = True) -> PlaneSource:
        """The same plane, holding only the raw pixels of ``window`` (read into memory if ``load``).

        Reads of the returned source must stay inside ``window``. ``load=True`` reads a
        block of a lazy (zarr, TIFF) plane in one go instead of tile by tile;
        ``load=False`` keeps it lazy with a dask graph cut down to that window, small to
        send to a dask.distributed worker.
        """
        oy, ox = self._origin
        pixels = self._pixels[window.y0 - oy : window.y1 - oy, window.x0 - ox : window.x1 - ox]
        if load:
            pixels = materialise(pixels)
        elif is_lazy(pixels):
            import dask

            (pixels,) = dask.optimize(pixels)
        return PlaneSource(pixels, self._mixes, self.scalings, (window.y0, window.x0), self.shape)

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Window ``[y0, y1) x [x0, x1)`` as finite float32 (channels, y1 - y0, x1 - x0)."""
        height, width = self.shape
        if not (0 <= y0 <= y1 <= height and 0 <= x0 <= x1 <= width):
            raise ValueError(f"window y[{y0}:{y1}] x[{x0}:{x1}] lies outside the plane {self.shape}")
        oy, ox = self._origin
        if y0 < oy or x0 < ox or y1 - oy > self._pixels.shape[0] or x1 - ox > self._pixels.shape[1]:
            raise ValueError(f"window y[{y0}:{y1}] x[{x0}:{x1}] lies outside the part of the plane this source holds")
        window = materialise(self._pixels[y0 - oy : y1 - oy, x0 - ox : x1 - ox])
        out = np.empty((self.channels, y1 - y0, x1 - x0), np.float32)
        first: dict[Mix, int] = {}
        for index, (mix, scaling) in enumerate(zip(self._mixes, self.scalings)):
            if mix in first:
                out[index] = out[first[mix]]
            else:
                out[index] = _normalise(_mix(window, mix, self._work_dtype), scaling)
                first[mix] = index
        return out


def prepare_plane(
    plane: np.ndarray,
    in_channels: int,
    channel: int | None = None,
    normalization: Mapping[str, Any] | None = None,
) -> PlaneSource:
    """Wrap one image plane for a network taking ``in_channels`` channels.

    Args:
        plane: (H, W) or (H, W, C) array of any real dtype (bool, integers, float16/32/64).
            It is not copied; a memory-mapped array stays on disk, and a dask array
            (zarr, TIFF) is read only window by window.
        in_channels: channels the network takes (1 greyscale, 3 RGB).
        channel: index of the plane's channel to segment, or None (see the module doc).
        normalization: the model's normalisation dict; None means :data:`DEFAULT_NORMALIZATION`.

    Raises:
        ValueError: bad shape or dtype, ambiguous or out-of-range channel, bad normalisation.
    """
    pixels = _as_hwc(plane)
    mixes, drops_alpha = channel_mixes(pixels.shape[2], in_channels, channel)
    if drops_alpha and not _is_opaque(pixels[..., 3]):
        warnings.warn(
            "The image has 4 channels with a translucent alpha channel: it is treated as RGBA and "
            "the alpha channel is ignored. If it is a 4-channel fluorescence image, choose one "
            "channel with channel=0..3 (GUI: the Channel box).",
            UserWarning,
            stacklevel=2,
        )
    kind, percentiles, clip = _parse_normalization(normalization)
    sample = _subsample(pixels)
    work = _work_dtype(pixels.dtype)
    stats: dict[Mix, Scaling] = {}
    for mix in mixes:
        if mix not in stats:
            stats[mix] = _scaling(_mix(sample, mix, work).ravel(), kind, percentiles, clip)
    return PlaneSource(pixels, mixes, [stats[mix] for mix in mixes])


def channel_mixes(n_channels: int, in_channels: int, channel: int | None = None) -> tuple[list[Mix], bool]:
    """Which input channels make each of the ``in_channels`` output channels.

    Returns ``(mixes, drops_alpha)``: one tuple of input channel indices per output channel
    (averaged; empty = zeros), and whether an RGBA alpha channel is being ignored.
    See the module docstring for the rules.
    """
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}")
    if channel is not None:
        if not 0 <= channel < n_channels:
            choice = "leave it empty" if n_channels == 1 else f"choose channel=0..{n_channels - 1}"
            raise ValueError(
                f"channel={channel} is out of range: the image has {n_channels} channel(s); "
                f"{choice} (GUI: the Channel box)."
            )
        return [(channel,)] * in_channels, False
    if n_channels == 1:
        return [(0,)] * in_channels, False
    if n_channels == in_channels:
        return [(c,) for c in range(n_channels)], False
    if n_channels in (3, 4) and in_channels in (1, 3):
        mixes = [(0, 1, 2)] if in_channels == 1 else [(0,), (1,), (2,)]
        return mixes, n_channels == 4
    if n_channels < in_channels:
        return [(c,) for c in range(n_channels)] + [()] * (in_channels - n_channels), False
    raise ValueError(
        f"image has {n_channels} channels; choose which one to segment with "
        f"channel=0..{n_channels - 1} (GUI: the Channel box); the model takes {in_channels}."
    )


def _as_hwc(plane):
    """(H, W, C) view of a (H, W) or (H, W, C) real-valued plane (numpy, or dask left lazy)."""
    pixels = plane if is_lazy(plane) else np.asanyarray(plane)
    if pixels.ndim not in (2, 3) or 0 in pixels.shape:
        raise ValueError(
            f"expected one image plane shaped (H, W) or (H, W, C), got shape {pixels.shape}; "
            "give the image's axes so stacks are split into planes."
        )
    if pixels.dtype.kind not in "buif":
        raise ValueError(f"cannot segment an image of dtype {pixels.dtype}; convert it to a real number type.")
    return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels


def _work_dtype(dtype: np.dtype) -> type:
    """float64 for 32/64-bit integers and float64 (float32 would lose their precision), else float32."""
    return np.float64 if dtype.itemsize >= 4 and dtype != np.float32 else np.float32


def _mix(pixels: np.ndarray, mix: Mix, dtype: type) -> np.ndarray:
    """(h, w) float array: the mean of channels ``mix`` of (h, w, C) ``pixels`` (zeros if empty)."""
    if not mix:
        return np.zeros(pixels.shape[:2], dtype)
    out = pixels[..., mix[0]].astype(dtype)
    for c in mix[1:]:
        out += pixels[..., c]
    if len(mix) > 1:
        out /= len(mix)
    return out


def _subsample(pixels: np.ndarray) -> np.ndarray:
    """Regularly strided sample of (H, W, C) ``pixels`` with at most :data:`SAMPLE_PIXELS` pixels.

    A view of a numpy plane; a lazy plane is read chunk by chunk, keeping only the sample.
    """
    height, width = pixels.shape[:2]
    stride = max(1, math.ceil(math.sqrt(height * width / SAMPLE_PIXELS)))
    return materialise(pixels[::stride, ::stride])


def _parse_normalization(
    normalization: Mapping[str, Any] | None,
) -> tuple[str, tuple[float, float], tuple[float, float] | None]:
    """``(kind, (low, high) percentiles, output clip or None)`` from a normalisation dict."""
    spec = dict(DEFAULT_NORMALIZATION if normalization is None else normalization)
    kind = spec.get("kind", "percentile")
    if kind not in NORMALIZATION_KINDS:
        raise ValueError(
            f"unknown normalization kind {kind!r}; the model file must use one of {', '.join(NORMALIZATION_KINDS)}."
        )
    low = float(spec.get("low", DEFAULT_NORMALIZATION["low"]))
    high = float(spec.get("high", DEFAULT_NORMALIZATION["high"]))
    if kind == "percentile" and not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentile normalization needs 0 <= low < high <= 100, got low={low}, high={high}.")
    clip = spec.get("clip", OUTPUT_RANGE if kind != "none" else (-_FLOAT32_MAX, _FLOAT32_MAX))
    if clip is not None:
        clip = (float(clip[0]), float(clip[1]))
        if not clip[0] < clip[1]:
            raise ValueError(f"normalization clip must be [low, high] with low < high, got {list(clip)}.")
    return kind, (low, high), clip


def _scaling(values: np.ndarray, kind: str, percentiles: tuple[float, float], clip) -> Scaling:
    """Scaling of one output channel from its 1D sample ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Scaling(0.0, 0.0, 0.0, 0.0, clip)
    finite_min, finite_max = float(finite.min()), float(finite.max())
    if kind == "none":
        return Scaling(0.0, 1.0, finite_min, finite_max, clip)
    low, high = finite_min, finite_max
    if kind == "percentile":
        p_low, p_high = (float(p) for p in np.percentile(finite, percentiles))
        if p_high > p_low:
            low, high = p_low, p_high
    span = high - low
    scale = 1.0 / span if 0.0 < span < math.inf else 0.0
    return Scaling(low, scale, finite_min, finite_max, clip)


def _normalise(raw: np.ndarray, scaling: Scaling) -> np.ndarray:
    """Finite float32 ``(raw - low) * scale``, clipped; ``raw`` (a fresh float array) is reused."""
    np.nan_to_num(raw, copy=False, nan=scaling.low, posinf=scaling.finite_max, neginf=scaling.finite_min)
    with np.errstate(over="ignore", invalid="ignore"):
        raw -= scaling.low
        raw *= scaling.scale
    if scaling.clip is not None:
        np.clip(raw, *scaling.clip, out=raw)
    # Values near +-1e308 (float64 input) can overflow above, or in the cast to float32.
    return np.nan_to_num(raw.astype(np.float32), copy=False, nan=0.0)


def _is_opaque(alpha: np.ndarray) -> bool:
    """Whether an (H, W) alpha channel is fully opaque (checked in row strips, bounded memory)."""
    if alpha.dtype.kind in "ui":
        opaque = np.iinfo(alpha.dtype).max
    else:
        opaque = True if alpha.dtype.kind == "b" else 1.0
    rows = max(1, SAMPLE_PIXELS // alpha.shape[1])
    return all(np.all(materialise(alpha[y : y + rows]) == opaque) for y in range(0, alpha.shape[0], rows))

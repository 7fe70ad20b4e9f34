"""Tile grids over a 2D plane, shared by the U-Net and Mask R-CNN tiled inference."""

from __future__ import annotations

from dataclasses import dataclass


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Start offsets of windows of size ``tile`` covering ``[0, length)`` with stride ``step``.

    The last window is shifted back so it ends exactly at ``length`` (no window hangs
    over the edge unless ``length < tile``, in which case the single window starts at 0).

    >>> tile_starts(10, 4, 3)
    [0, 3, 6]
    >>> tile_starts(3, 4, 3)
    [0]
    """
    if tile <= 0 or step <= 0:
        raise ValueError(f"tile ({tile}) and step ({step}) must be positive")
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


@dataclass(frozen=True)
class Window:
    """A rectangle ``[y0, y1) x [x0, x1)`` in plane pixel coordinates."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y1 - self.y0, self.x1 - self.x0)


def grid(shape: tuple[int, int], tile: int, step: int) -> list[Window]:
    """Row-major windows of at most ``tile x tile`` covering a plane of ``shape`` (H, W)."""
    height, width = shape
    return [
        Window(y, min(y + tile, height), x, min(x + tile, width))
        for y in tile_starts(height, tile, step)
        for x in tile_starts(width, tile, step)
    ]


def split_evenly(length: int, parts: int) -> list[int]:
    """Boundaries ``[0, ..., length]`` of ``parts`` consecutive near-equal intervals.

    >>> split_evenly(10, 3)
    [0, 3, 6, 10]
    """
    return [i * length // parts for i in range(parts + 1)]


def core_bounds(length: int, tile: int, margin: int) -> list[int]:
    """Boundaries of the cores along one axis for :func:`core_grid` (one core if ``length <= tile``)."""
    if margin < 0 or tile <= 2 * margin:
        raise ValueError(f"tile ({tile}) must be larger than twice the margin ({margin}), and margin >= 0")
    if length <= tile:
        return [0, length]
    core = tile - 2 * margin
    return split_evenly(length, -(-length // core))


def core_grid(shape: tuple[int, int], tile: int, margin: int) -> list[tuple[Window, Window]]:
    """Row-major ``(core, read)`` windows for tiled detection with ownership.

    The cores (at most ``tile - 2 * margin`` pixels a side, near-equal) partition the plane
    of ``shape`` (H, W); each read window is its core grown by ``margin`` on every side and
    clipped to the plane, so it is at most ``tile x tile``. An axis no longer than ``tile``
    gets a single core spanning it.
    """
    height, width = shape
    ys, xs = core_bounds(height, tile, margin), core_bounds(width, tile, margin)
    return [
        (
            Window(y0, y1, x0, x1),
            Window(max(y0 - margin, 0), min(y1 + margin, height), max(x0 - margin, 0), min(x1 + margin, width)),
        )
        for y0, y1 in zip(ys[:-1], ys[1:])
        for x0, x1 in zip(xs[:-1], xs[1:])
    ]


DEFAULT_ACTIVATION_BUDGET_MB = 1024
"""Activation memory a default tile may take (``NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB`` overrides)."""
BLOCK_RUN_BUDGET_SHARE = 0.5
"""Share of the budget a block run's tile gets: its block sums and pixels live beside the network."""
TILE_MULTIPLE = 64
UNET_FASTEST_TILE = 512
"""Largest default U-Net tile: on the 2-core AMD EPYC (AVX-512, bf16) the bundled U-Nets ran a
2048 x 2048 image end to end in 4.07 s / 7.27 s with 512 px tiles against 6.36 s (1472 px) /
11.07 s (1056 px, balanced) with memory-sized ones in two runs (one run under heavier load
measured the opposite): their 16-channel full-resolution activations stay in cache at 512 px."""
SMALLEST_AUTO_TILE = 256
LARGEST_AUTO_TILE = 8192


def activation_bytes_per_pixel(arch: str, config: dict, in_channels: int = 1) -> float:
    """Peak float32 activation bytes per input pixel of a network's inference (no torch needed).

    Measured as peak resident memory minus the memory before the forward, with the inference
    preparation of :mod:`.inference` (folded batch norm, channels-last), on 1024 x 1024 and
    1536 x 1536 inputs (AMD EPYC, torch 2.14): the bundled U-Nets (depth 4, base width 16)
    445 B/px, i.e. 7 float32 per base-width channel (the widest full-resolution tensors are
    the decoder's concatenation and its convolutions; deeper levels add little);
    maskrcnn-nuclei (ResNet-18, FPN 128) 290-330 B/px (backbone, FPN levels, RPN on every
    anchor; the box and mask heads run in bounded chunks, see ``maskrcnn.BOX_CHUNK``). bfloat16
    autocast needs about 55% of it, so the float32 figure is a safe bound for both.
    """
    if arch == "unet":
        return 4.0 * (7 * int(config.get("base_width", 32)) + 2 * int(in_channels))
    # Mask R-CNN: the stem at 1/4 of the pixels (64 channels, 1/2 resolution), the FPN's
    # full-size level (1/16 of the pixels) and its inner and output tensors, RPN anchors:
    # 2.6 B per FPN channel plus the stem and ResNet stage 1 (4x wider in a ResNet-50)
    stage1 = 256 if config.get("backbone", "resnet18") == "resnet50" else 64
    return 2.6 * int(config.get("fpn_channels", 256)) + 1.0 * stage1 + 4.0 * int(in_channels)


def tile_budget_bytes(share: float = 1.0) -> float:
    """The activation budget of a default tile in bytes (``share`` of it)."""
    import os

    megabytes = float(os.environ.get("NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB", DEFAULT_ACTIVATION_BUDGET_MB))
    return max(megabytes, 1.0) * 2**20 * share


def tile_for_budget(bytes_per_pixel: float, budget_bytes: float) -> int:
    """The largest square tile (a multiple of :data:`TILE_MULTIPLE`) whose activations fit ``budget_bytes``.

    Clipped to ``[SMALLEST_AUTO_TILE, LARGEST_AUTO_TILE]``. A plane no larger than the tile is
    then one window (no margins, nothing blended); larger planes get margins and overlaps only
    where tiles meet (:func:`core_grid`, :func:`grid`).
    """
    side = int((budget_bytes / max(bytes_per_pixel, 1.0)) ** 0.5) // TILE_MULTIPLE * TILE_MULTIPLE
    return int(min(max(side, SMALLEST_AUTO_TILE), LARGEST_AUTO_TILE))


def balanced_tile(shape: tuple[int, int], tile: int, overlap: int, multiple: int = 32) -> int:
    """The smallest tile (a multiple of ``multiple``, at most ``tile``) covering ``shape`` with as few
    :func:`grid` windows as ``tile`` needs.

    ``grid`` shifts a row's last window back so it ends at the plane's edge: a 2048 px side
    with 1472 px tiles (64 px overlap) reads two windows of 1472 px overlapping by 896 px;
    1056 px tiles read the same two windows' worth of pixels less 40%, overlapping by 64 px.
    """
    smallest = 2 * overlap + multiple
    best = smallest
    for length in shape:
        if length <= tile:
            best = max(best, length)
            continue
        count = -(-(length - overlap) // (tile - overlap))
        side = -(-(length + (count - 1) * overlap) // count)
        best = max(best, -(-side // multiple) * multiple)
    return int(min(best, tile))


def window_tile_count(shape: tuple[int, int], window: Window, tile: int, overlap: int) -> int:
    """How many tiles :func:`predict_semantic_window` runs for ``window`` of a plane of ``shape``."""
    counts = []
    for length, start, stop in ((shape[0], window.y0, window.y1), (shape[1], window.x0, window.x1)):
        side = min(tile, length)
        counts.append(sum(1 for s in tile_starts(length, tile, tile - overlap) if s < stop and s + side > start))
    return counts[0] * counts[1]

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

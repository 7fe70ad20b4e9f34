"""Tiled U-Net inference over one 2D plane with smooth blending and bounded memory.

The plane is cut into overlapping ``tile x tile`` windows (stride ``tile - overlap``). Each
tile's softmax probabilities are weighted by a window that is 1 in the middle and falls
smoothly (raised cosine) over the ``overlap`` pixels at its edges, never reaching 0; the
weighted sums are divided by the summed weights, so overlapping tiles fade into each other
without seams and every pixel, plane borders included, is an exact weighted mean.

Memory is bounded by the tile size, not the image: tiles are processed one row band at a
time and accumulated into a strip of ``(K, tile, W)`` sums. After each band, the rows that
no later band touches are finalised (argmax into the uint8 output) and the strip shifts up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .device import autocast
from .progress import ProgressEvent, ProgressGenerator
from .tiling import Window, tile_starts

if TYPE_CHECKING:
    from .inputs import PlaneSource

MAX_CLASSES = 256  # classes are stored as uint8


def predict_semantic_plane(
    source: PlaneSource,
    network: torch.nn.Module,
    *,
    tile: int = 512,
    overlap: int = 64,
    device: str | torch.device = "cpu",
    return_probabilities: bool = False,
    batch_size: int = 1,
    autocast_dtype: torch.dtype | None = None,
) -> ProgressGenerator[tuple[np.ndarray, np.ndarray | None]]:
    """Classify every pixel of a plane with a semantic network, tile by tile.

    A generator: it yields ``ProgressEvent(done, total, "tile")`` after each tile (counted
    within this plane) and returns the result; drain it with :func:`progress.drain`.
    Closing it at any yield is safe (it holds nothing but local arrays).

    Args:
        source: the plane: ``.shape`` (H, W), ``.channels`` C and
            ``.read(y0, y1, x0, x1) -> float32 (C, y1 - y0, x1 - x0)``, normalised and finite.
        network: maps float32 (B, C, h, w) to logits (B, K, h, w) for any h, w; it is
            switched to eval mode and must already be on ``device``.
        tile: tile side in pixels; a plane side shorter than this is one tile of that side.
        overlap: pixels shared by neighbouring tiles (0 <= overlap < tile), blended smoothly.
        device: where tiles are sent for the network (``"cpu"``, ``"cuda"``...).
        return_probabilities: also return the blended probabilities of the whole plane.
        batch_size: tiles of one row band sent to the network per forward pass.
        autocast_dtype: run the network under autocast with this dtype (e.g. bfloat16);
            None = float32. Probabilities are always blended in float32.

    Returns:
        ``(classes, probabilities)``: classes uint8 (H, W), the argmax over classes of the
        blended probabilities; probabilities float32 (K, H, W) summing to 1 over K, or
        None unless ``return_probabilities``.
    """
    _check_settings(tile, overlap, batch_size)
    height, width = source.shape
    if height < 1 or width < 1:
        raise ValueError(f"Cannot segment an empty plane of shape {(height, width)}.")
    step = tile - overlap
    row_starts = tile_starts(height, tile, step)
    col_starts = tile_starts(width, tile, step)
    tile_h, tile_w = min(tile, height), min(tile, width)
    device = torch.device(device)
    weights = blend_weights(tile_h, tile_w, overlap)
    weights_on_device = torch.from_numpy(weights).to(device)
    network.eval()

    total = len(row_starts) * len(col_starts)
    done = 0
    classes = np.empty((height, width), np.uint8)
    probabilities = None
    strip = None
    for band, y0 in enumerate(row_starts):
        for batch_x0 in _chunks(col_starts, batch_size):
            tiles = np.stack([source.read(y0, y0 + tile_h, x0, x0 + tile_w) for x0 in batch_x0])
            weighted = _weighted_probabilities(network, tiles, weights_on_device, autocast_dtype)
            if strip is None:
                strip = _Strip(weighted.shape[1], tile_h, width)
                if return_probabilities:
                    probabilities = np.empty((weighted.shape[1], height, width), np.float32)
            for x0, tile_weighted in zip(batch_x0, weighted):
                strip.add(x0, tile_weighted, weights)
                done += 1
                yield ProgressEvent(done, total, "tile")
        y1 = row_starts[band + 1] if band + 1 < len(row_starts) else height
        rows = strip.pop(y1 - y0)
        classes[y0:y1] = rows.argmax(axis=0)
        if probabilities is not None:
            probabilities[:, y0:y1] = rows
    return classes, probabilities


def predict_semantic_window(
    source: PlaneSource,
    network: torch.nn.Module,
    window: Window,
    *,
    tile: int = 512,
    overlap: int = 64,
    device: str | torch.device = "cpu",
    autocast_dtype: torch.dtype | None = None,
    return_probabilities: bool = False,
) -> ProgressGenerator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Classes uint8 ``window.shape`` of one block of a plane, equal to that part of
    :func:`predict_semantic_plane` run on the whole plane.

    A generator: yields ``ProgressEvent(done, total, "tile")`` after each tile of the block.
    The tiles are those of the whole plane's grid that touch ``window`` (the ones at the
    block's edges are computed again by the neighbouring blocks), summed in the same order,
    so the blended probabilities are the same floats. Memory: ``(K, h, w)`` sums of the
    block and the raw pixels of the tiles it needs, read once.

    Returns:
        the classes, or with ``return_probabilities`` ``(classes, float32 (K, h, w) probabilities)``.
    """
    _check_settings(tile, overlap, 1)
    height, width = source.shape
    step = tile - overlap
    tile_h, tile_w = min(tile, height), min(tile, width)
    rows = [y for y in tile_starts(height, tile, step) if y < window.y1 and y + tile_h > window.y0]
    cols = [x for x in tile_starts(width, tile, step) if x < window.x1 and x + tile_w > window.x0]
    source = source.part(Window(rows[0], rows[-1] + tile_h, cols[0], cols[-1] + tile_w))
    device = torch.device(device)
    weights = blend_weights(tile_h, tile_w, overlap)
    weights_on_device = torch.from_numpy(weights).to(device)
    network.eval()
    sums = weight_sums = None
    done, total = 0, len(rows) * len(cols)
    for y0 in rows:
        for x0 in cols:
            tile_image = source.read(y0, y0 + tile_h, x0, x0 + tile_w)[np.newaxis]
            weighted = _weighted_probabilities(network, tile_image, weights_on_device, autocast_dtype)[0]
            if sums is None:
                sums = np.zeros((weighted.shape[0], *window.shape), np.float32)
                weight_sums = np.zeros(window.shape, np.float32)
            ys = slice(max(y0, window.y0), min(y0 + tile_h, window.y1))
            xs = slice(max(x0, window.x0), min(x0 + tile_w, window.x1))
            out = (slice(ys.start - window.y0, ys.stop - window.y0), slice(xs.start - window.x0, xs.stop - window.x0))
            inside = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
            sums[(slice(None), *out)] += weighted[(slice(None), *inside)]
            weight_sums[out] += weights[inside]
            done += 1
            yield ProgressEvent(done, total, "tile")
    if return_probabilities:
        sums /= weight_sums
        return sums.argmax(axis=0).astype(np.uint8), sums
    return _blended_classes(sums, weight_sums)


def _blended_classes(sums: np.ndarray, weight_sums: np.ndarray, band: int = 256) -> np.ndarray:
    """uint8 (h, w) argmax of ``sums`` (K, h, w) / ``weight_sums`` (h, w), ``band`` rows at a time.

    Band by band, the temporaries (the quotient and argmax's int64 indices) stay a few MB
    instead of twice the sums for a whole block; the floats are those of the whole quotient.
    """
    classes = np.empty(weight_sums.shape, np.uint8)
    for y0 in range(0, weight_sums.shape[0], band):
        rows = slice(y0, y0 + band)
        classes[rows] = (sums[:, rows] / weight_sums[rows]).argmax(axis=0)
    return classes


def blend_weights(tile_h: int, tile_w: int, overlap: int) -> np.ndarray:
    """Blending weights of one tile: float32 (tile_h, tile_w), in (0, 1].

    The outer product of :func:`blend_ramp` along each axis.
    """
    return np.outer(blend_ramp(tile_h, overlap), blend_ramp(tile_w, overlap))


def blend_ramp(length: int, overlap: int) -> np.ndarray:
    """1D blending weights: float32 (length,), 1 in the middle, raised cosine near both ends.

    Pixel ``i`` at distance ``d = min(i + 0.5, length - i - 0.5)`` from the nearest end gets
    ``(1 - cos(pi * d / overlap)) / 2`` when ``d < overlap``, else 1. The weights are strictly
    positive, and where two tiles overlap by exactly ``overlap`` pixels their weights sum to 1.
    """
    if overlap == 0:
        return np.ones(length, np.float32)
    position = np.arange(length) + 0.5
    distance = np.minimum(position, length - position)
    ramp = 0.5 - 0.5 * np.cos(np.pi * distance / overlap)
    return np.where(distance < overlap, ramp, 1.0).astype(np.float32)


class _Strip:
    """Blending sums for the rows one band of tiles covers, starting at the band's top row.

    Attributes:
        sums: float32 (K, rows, W), weighted probabilities summed over tiles.
        weights: float32 (rows, W), the summed weights.
    """

    def __init__(self, num_classes: int, rows: int, width: int):
        if num_classes > MAX_CLASSES:
            raise ValueError(
                f"The network outputs {num_classes} classes; at most {MAX_CLASSES} are supported."
            )
        self.sums = np.zeros((num_classes, rows, width), np.float32)
        self.weights = np.zeros((rows, width), np.float32)

    def add(self, x0: int, weighted: np.ndarray, weights: np.ndarray) -> None:
        """Add one tile at column ``x0``: weighted (K, h, w) probabilities and weights (h, w)."""
        h, w = weights.shape
        self.sums[:, :h, x0 : x0 + w] += weighted
        self.weights[:h, x0 : x0 + w] += weights

    def pop(self, n_rows: int) -> np.ndarray:
        """Blended probabilities float32 (K, n_rows, W) of the top rows, which are then dropped.

        The remaining rows move to the top and the freed rows at the bottom are zeroed.
        """
        blended = self.sums[:, :n_rows] / self.weights[:n_rows]
        keep = self.weights.shape[0] - n_rows
        self.sums[:, :keep] = self.sums[:, n_rows:]
        self.sums[:, keep:] = 0.0
        self.weights[:keep] = self.weights[n_rows:]
        self.weights[keep:] = 0.0
        return blended


@torch.inference_mode()
def _weighted_probabilities(
    network: torch.nn.Module, tiles: np.ndarray, weights: torch.Tensor,
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Softmax probabilities of a batch of tiles times the blending weights.

    Inference mode is entered here, per forward pass, not around the generator's yields,
    so the caller's autograd state is never changed between steps.

    Args:
        tiles: float32 (B, C, h, w).
        weights: float32 (h, w) on the network's device.

    Returns:
        float32 (B, K, h, w) on the CPU.
    """
    batch = torch.from_numpy(tiles).to(weights.device)
    with autocast(weights.device, autocast_dtype):
        logits = network(batch)
    if logits.ndim != 4 or logits.shape[0] != batch.shape[0] or logits.shape[2:] != batch.shape[2:]:
        raise ValueError(
            f"The network turned tiles of shape {tuple(batch.shape)} into {tuple(logits.shape)}; "
            "a semantic network must return (batch, classes, height, width) logits of the "
            "same height and width."
        )
    return (torch.softmax(logits.float(), dim=1) * weights).cpu().numpy()


def _chunks(values: Sequence[int], size: int) -> list[Sequence[int]]:
    """``values`` cut into consecutive runs of at most ``size``."""
    return [values[i : i + size] for i in range(0, len(values), size)]


def _check_settings(tile: int, overlap: int, batch_size: int) -> None:
    """Raise ValueError, naming the allowed range, for an unusable tiling setting."""
    if tile < 1:
        raise ValueError(f"tile must be at least 1 pixel, got {tile}.")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile) = [0, {tile}), got {overlap}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")

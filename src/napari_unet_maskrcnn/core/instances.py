"""Tiled instance segmentation of one plane with a detector (Mask R-CNN or any stand-in).

The plane is cut into *cores* that partition it; the detector sees each core plus a
``margin`` of context on every side. A detection belongs to the tile whose core holds its
box centre, so an object reaching up to about ``margin`` pixels past its core is seen
whole in that tile and kept exactly once: no duplicated and no chopped objects at seams.
The detector is told which boxes the tile owns (``keep``), so it need not segment the others.

The kept detections of all tiles are then pasted into one label image in descending score
order, each claiming only pixels no better-scoring object took. Memory: the ``(H, W)``
int32 output, one tile of image and detections, and one box-sized boolean mask per kept
detection; never an ``(N, H, W)`` array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import ndimage

from .progress import ProgressEvent, ProgressGenerator
from .tiling import Window, core_grid

Detector = Callable[..., dict[str, np.ndarray]]  # detector(image, keep=...) -> detections


@dataclass
class PlaneInstances:
    """Instances found in one plane.

    Attributes:
        labels: int32 ``(H, W)``, 0 = background, objects ``1..n`` (consecutive).
        scores: float32 ``(n,)``; ``scores[i]`` is the detection score of label ``i + 1``.
        classes: int32 ``(n,)``; ``classes[i]`` is the 1-based class of label ``i + 1``.
    """

    labels: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


@dataclass
class _Candidate:
    """One owned detection, thresholded: ``mask`` is a bool box-sized crop at ``(y0, x0)`` of the plane."""

    score: float
    class_id: int
    y0: int
    x0: int
    mask: np.ndarray


def predict_instances_plane(
    source,
    detector: Detector,
    *,
    tile: int = 512,
    margin: int = 64,
    mask_threshold: float = 0.5,
    min_size: int = 10,
) -> ProgressGenerator[PlaneInstances]:
    """Segment the instances of one plane, tile by tile.

    Args:
        source: a ``PlaneSource``: ``.shape`` (H, W), ``.read(y0, y1, x0, x1)`` -> float32
            ``(C, h, w)`` normalised image.
        detector: ``detector(image float32 (C, h, w), keep=...) -> dict`` with ``boxes (N, 4)``
            x0, y0, x1, y1 (pixel edges of ``image``), ``scores (N,)``, ``labels (N,)``
            (1-based classes), ``masks (N, M, M)`` soft masks in the box frame; e.g.
            ``functools.partial(maskrcnn.detect, network, score_threshold=0.5)``. ``keep`` maps
            boxes ``(N, 4)`` to bool ``(N,)``, the ones this tile owns: a detector may skip
            the masks of the others (they are dropped here either way).
        tile: largest side (pixels) of the image given to the detector.
        margin: context (pixels) around each core; objects up to about ``margin`` pixels
            beyond a core edge are still seen whole.
        mask_threshold: soft-mask probability above which a pixel belongs to the object.
        min_size: objects left with fewer pixels (after overlaps are resolved) are dropped.

    Yields:
        ``ProgressEvent(done, total, "tile")`` after each tile (counted within the plane).

    Returns:
        :class:`PlaneInstances`, labels numbered by descending score.
    """
    shape = tuple(source.shape)
    windows = core_grid(shape, tile, margin)
    candidates: list[_Candidate] = []
    for done, (core, read) in enumerate(windows, start=1):
        image = source.read(read.y0, read.y1, read.x0, read.x1)
        owned = partial(_owned, core=core, read=read, plane_shape=shape)
        candidates += _owned_candidates(detector(image, keep=owned), core, read, shape, mask_threshold)
        yield ProgressEvent(done, len(windows), "tile")
    return _paste_by_score(candidates, shape, min_size)


def _owned(boxes: np.ndarray, core: Window, read: Window, plane_shape: tuple[int, int]) -> np.ndarray:
    """bool ``(N,)``: which boxes (x0, y0, x1, y1 in pixels of the ``read`` window) have their centre in ``core``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2 + read.x0
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2 + read.y0
    return _inside(centre_y, core.y0, core.y1, plane_shape[0]) & _inside(centre_x, core.x0, core.x1, plane_shape[1])


def _owned_candidates(
    detections: dict[str, np.ndarray],
    core: Window,
    read: Window,
    plane_shape: tuple[int, int],
    mask_threshold: float,
) -> list[_Candidate]:
    """Thresholded, plane-positioned masks of the detections whose box centre lies in ``core``."""
    boxes = np.asarray(detections["boxes"], dtype=np.float64).reshape(-1, 4)
    candidates = []
    for i in np.flatnonzero(_owned(boxes, core, read, plane_shape)):
        pasted = _box_mask(detections["masks"][i], boxes[i], read.shape, mask_threshold)
        if pasted is not None:
            y0, x0, mask = pasted
            candidates.append(
                _Candidate(
                    float(detections["scores"][i]), int(detections["labels"][i]), y0 + read.y0, x0 + read.x0, mask
                )
            )
    return candidates


def _inside(centre: np.ndarray, start: int, stop: int, length: int) -> np.ndarray:
    """Whether ``centre`` (clipped into ``[0, length)``) lies in ``[start, stop)``."""
    centre = np.clip(centre, 0, np.nextafter(length, 0))
    return (centre >= start) & (centre < stop)


def _box_mask(
    soft: np.ndarray, box: np.ndarray, image_shape: tuple[int, int], threshold: float
) -> tuple[int, int, np.ndarray] | None:
    """Resize a box-frame soft mask onto the image pixels around its box and threshold it.

    Args:
        soft: ``(M, M)`` probabilities; cell ``j`` covers ``[x0 + j w / M, x0 + (j + 1) w / M)``.
        box: x0, y0, x1, y1 in pixel edges of the image.
        image_shape: (h, w) of the image the box lives in (the mask is clipped to it).
        threshold: probability above which a pixel is in.

    Returns:
        ``(y0, x0, bool (h', w') crop)`` or None when no pixel passes the threshold.
    """
    soft = np.asarray(soft, dtype=np.float64)
    x0, y0, x1, y1 = box
    ys, rows = _interp_weights(y0, y1, soft.shape[0], image_shape[0])
    xs, cols = _interp_weights(x0, x1, soft.shape[1], image_shape[1])
    if rows.shape[0] == 0 or cols.shape[0] == 0:
        return None
    mask = (rows @ soft @ cols.T) > threshold
    found_y, found_x = np.nonzero(mask)
    if found_y.size == 0:
        return None
    mask = mask[found_y.min() : found_y.max() + 1, found_x.min() : found_x.max() + 1]
    return ys + int(found_y.min()), xs + int(found_x.min()), mask


def _interp_weights(low: float, high: float, cells: int, length: int) -> tuple[int, np.ndarray]:
    """Bilinear weights sampling a ``cells``-long profile spanning ``[low, high)`` at pixel centres.

    Covers the pixels ``start .. start + n - 1`` (clipped to ``[0, length)``) where the
    profile, zero outside, can be non-zero. Returns ``(start, weights float64 (n, cells))``.
    """
    step = (high - low) / cells
    if step <= 0:
        return 0, np.zeros((0, cells))
    start = max(int(np.floor(low - step)), 0)
    stop = min(int(np.ceil(high + step)), length)
    position = (np.arange(start, stop) + 0.5 - low) / step - 0.5  # in cell indices
    left = np.floor(position).astype(np.int64)
    frac = position - left
    weights = np.zeros((position.size, cells + 2))  # one zero cell padded on each side
    rows = np.arange(position.size)
    weights[rows, np.clip(left + 1, 0, cells + 1)] += 1 - frac
    weights[rows, np.clip(left + 2, 0, cells + 1)] += frac
    return start, weights[:, 1:-1]


def _paste_by_score(candidates: list[_Candidate], shape: tuple[int, int], min_size: int) -> PlaneInstances:
    """Paste candidates best score first, each keeping only unclaimed pixels (largest piece)."""
    labels = np.zeros(shape, dtype=np.int32)
    order = np.lexsort(
        ([c.x0 for c in candidates], [c.y0 for c in candidates], [-c.score for c in candidates])
    )
    scores, classes = [], []
    for index in order:
        candidate = candidates[index]
        if _claim(labels, candidate, len(scores) + 1, min_size):
            scores.append(candidate.score)
            classes.append(candidate.class_id)
    return PlaneInstances(labels, np.asarray(scores, dtype=np.float32), np.asarray(classes, dtype=np.int32))


def _claim(labels: np.ndarray, candidate: _Candidate, new_id: int, min_size: int) -> bool:
    """Write ``new_id`` on the candidate's still-free pixels if at least ``min_size`` remain.

    Only the largest connected piece of the free pixels is kept. Returns whether it was written.
    """
    height, width = candidate.mask.shape
    region = labels[candidate.y0 : candidate.y0 + height, candidate.x0 : candidate.x0 + width]
    free = candidate.mask & (region == 0)
    pieces, count = ndimage.label(free)
    if count > 1:
        sizes = np.bincount(pieces.ravel())
        free = pieces == np.argmax(sizes[1:]) + 1
    if free.sum() < max(min_size, 1):
        return False
    region[free] = new_id
    return True

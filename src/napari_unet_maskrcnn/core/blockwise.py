"""Segmentation block by block: the one way every run computes (in memory, into zarr, on a cluster).

A plane is cut into blocks, each computed by a task that :func:`.executor.run_tasks` runs
here (reporting each tile, so a run can be followed and cancelled) or on dask.distributed
workers; the tasks read their own pixels (a dask graph cut to the block) and return small
results, and the caller writes them into ``out`` (a numpy or zarr array shaped (T, Z, H,
W)). A plane up to a block's size is one block, each tile computed once. The result equals
the whole-plane functions exactly:

- U-Net (:func:`iter_semantic_blocks`): each block blends the tiles of the *whole plane's*
  grid that touch it, in the same order (:func:`.semantic.predict_semantic_window`).
- Mask R-CNN (:func:`iter_instance_objects`): blocks are groups of the whole plane's
  owned cores with their margins (:func:`.tiling.core_grid`), so each block returns the
  very detections the whole-plane run keeps. Overlaps are then resolved over the whole
  plane in score order on a one-bit-per-pixel map (H x W / 8 bytes), and the labels are
  painted chunk by chunk with ids unique over the image (:func:`paint_time_point`); z-slices
  are linked from the objects' masks without a whole label image (:func:`link_time_point`).

The run generators that use these blocks are :mod:`.semantic_run` and :mod:`.instance_run`.

Memory of the calling process: the normalisation subsample, the one-bit map and the kept
objects' box-sized masks; never a whole plane of probabilities or labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np

from .executor import TaskProgress, run_tasks
from .settings import BLOCK
from .instance_table import PlaneObject
from .instances import _Candidate, _claim, _owned, _owned_candidates
from .linking import greedy_matches, link_ids
from .progress import ProgressEvent, ProgressGenerator
from .tiling import Window, core_bounds, core_grid

DEFAULT_BLOCK = BLOCK  # declared in core.settings
"""Block side in pixels: 270 MB of blending sums (3 classes) per U-Net block, 1.2x tile work."""


@dataclass(frozen=True)
class NetworkRun:
    """What a worker needs to get the network: a model file, a device name, a precision, and
    whether to use test-time flips (:mod:`.flip_averaging`: a U-Net averages its tiles' class
    probabilities, a Mask R-CNN fuses its detections over the four flips)."""

    model: str
    device: str
    precision: str
    tta: bool = False

    def load(self):
        """``(network, torch device, autocast dtype)``; the network is cached per process."""
        from .device import choose_device, inference_dtype
        from .registry import load_model

        device = choose_device(self.device)
        spec, network = load_model(self.model, device)
        if self.tta and spec.arch == "unet":
            from .flip_averaging import FlipAveraged

            network = FlipAveraged(network)
        return network, device, inference_dtype(self.precision, device)

    def detector(self, score_threshold: float, nms_iou: float):
        """A Mask R-CNN's ``detector(image, keep=None)`` for :func:`.instances.predict_instances_plane`.

        With ``tta`` the four flipped views are each detected down to
        ``TTA_VIEW_SCORE_FACTOR x score_threshold`` and fused (:class:`.flip_averaging.FlipFusedDetector`).
        """
        from .models.maskrcnn import detect

        network, device, dtype = self.load()
        mask_dtype = dtype
        if self.precision == "auto":  # float32 detections and scores, masks in bfloat16 where native
            dtype = None
        if not self.tta:
            return partial(detect, network, score_threshold=score_threshold, nms_iou=nms_iou, device=device,
                           autocast_dtype=dtype, mask_autocast_dtype=mask_dtype)
        from .flip_averaging import TTA_VIEW_SCORE_FACTOR, FlipFusedDetector

        view = partial(detect, network, score_threshold=score_threshold * TTA_VIEW_SCORE_FACTOR,
                       nms_iou=nms_iou, device=device, autocast_dtype=dtype, mask_autocast_dtype=mask_dtype)
        return FlipFusedDetector(view, score_threshold=score_threshold)


def block_windows(shape: tuple[int, int], block: int) -> list[Window]:
    """Row-major ``block x block`` windows partitioning a plane of ``shape`` (H, W)."""
    height, width = shape
    return [
        Window(y, min(y + block, height), x, min(x + block, width))
        for y in range(0, height, block)
        for x in range(0, width, block)
    ]


def semantic_windows(shape: tuple[int, int], tile: int, overlap: int, block: int) -> list[Window]:
    """Blocks of about ``block`` pixels a side whose edges fall on tile starts of the plane's grid.

    A block then needs its own tiles and one more row and column of tiles (those reaching
    into it from above and from the left), the fewest possible.
    """
    from .tiling import tile_starts

    bounds = []
    for length in shape:
        starts = tile_starts(length, tile, tile - overlap)
        every = max(1, round(block / (tile - overlap)))
        bounds.append(starts[::every] + [length])
    ys, xs = bounds
    return [Window(y0, y1, x0, x1) for y0, y1 in zip(ys[:-1], ys[1:]) for x0, x1 in zip(xs[:-1], xs[1:])]


def _grown(window: Window, by: int, shape: tuple[int, int]) -> Window:
    return Window(max(window.y0 - by, 0), min(window.y1 + by, shape[0]),
                  max(window.x0 - by, 0), min(window.x1 + by, shape[1]))


def semantic_block(run: NetworkRun, source, window: Window, tile: int, overlap: int,
                   probabilities: bool = False) -> ProgressGenerator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Task: uint8 classes of ``window`` (with ``probabilities``, also their float32 (K, h, w)
    probabilities); yields per tile (see :func:`.semantic.predict_semantic_window`)."""
    from .semantic import predict_semantic_window

    network, device, dtype = run.load()
    return (yield from predict_semantic_window(source, network, window, tile=tile, overlap=overlap, device=device,
                                               autocast_dtype=dtype, return_probabilities=probabilities))


def iter_semantic_blocks(
    sources: dict[tuple[int, int], object],
    out,
    run: NetworkRun,
    *,
    tile: int,
    overlap: int,
    block: int = DEFAULT_BLOCK,
    client=None,
    probabilities=None,
) -> ProgressGenerator[None]:
    """Write the classes of every plane into ``out`` (T, Z, H, W) block by block.

    Args:
        sources: ``(t, z) -> PlaneSource`` of each plane (normalisation already fixed).
        out: writable uint8 array (numpy or zarr) shaped (T, Z, H, W).
        block: block side in pixels (rounded to whole tiles): larger blocks recompute fewer
            tiles at their edges, (1 + 1 / tiles per side)**2 of the work, but hold
            ``K x block**2`` float32 sums; a plane up to ``block`` is one block (each tile once).
        client: a dask.distributed Client, or None to compute here.
        probabilities: None, or a float32 array (K, T, Z, H, W) to fill with the blended
            class probabilities too (in memory).

    Yields ``ProgressEvent(done, total, stage)`` counted in tiles: ``"tile"`` after each tile
    computed here, ``"block"`` as a cluster's blocks finish (in any order).
    """
    from .tiling import window_tile_count

    items, where, tiles = [], [], []
    for (t, z), source in sources.items():
        for window in semantic_windows(source.shape, tile, overlap, block):
            part = source.part(_grown(window, tile, source.shape), load=False)
            items.append((run, part, window, tile, overlap, probabilities is not None))
            where.append((t, z, window))
            tiles.append(window_tile_count(source.shape, window, tile, overlap))
    finished, total = 0, sum(tiles)
    for item in run_tasks(semantic_block, items, client, key="unet-block"):
        if isinstance(item, TaskProgress):
            yield ProgressEvent(finished + item.event.done, total, "tile")
            continue
        index, result = item
        t, z, window = where[index]
        ys, xs = slice(window.y0, window.y1), slice(window.x0, window.x1)
        if probabilities is not None:
            result, probabilities[:, t, z, ys, xs] = result
        out[t, z, ys, xs] = result
        finished += tiles[index]
        if client is not None:
            yield ProgressEvent(finished, total, "block")


def instance_block(
    run: NetworkRun, source, cells: list[tuple[Window, Window]], detector_options: dict, mask_threshold: float
) -> ProgressGenerator[list[_Candidate]]:
    """Task: the owned, thresholded detections of a group of ``(core, read)`` cells; yields per cell."""
    detector = run.detector(**detector_options)
    reads = [read for _, read in cells]
    source = source.part(_union(reads), load=True)
    candidates = []
    for done, (core, read) in enumerate(cells, 1):
        image = source.read(read.y0, read.y1, read.x0, read.x1)
        owned = partial(_owned, core=core, read=read, plane_shape=source.shape)
        candidates += _owned_candidates(detector(image, keep=owned), core, read, source.shape, mask_threshold)
        yield ProgressEvent(done, len(cells), "tile")
    return candidates


def iter_instance_objects(
    sources: dict[tuple[int, int], object],
    run: NetworkRun,
    *,
    tile: int,
    margin: int,
    mask_threshold: float,
    min_size: int,
    detector_options: dict,
    block: int = DEFAULT_BLOCK,
    client=None,
) -> ProgressGenerator[dict[tuple[int, int], list[PlaneObject]]]:
    """The kept objects of every plane, detected block by block (here or on a cluster).

    Args as in :func:`iter_semantic_blocks`, plus those of
    :func:`.instances.predict_instances_plane` and ``detector_options`` (score_threshold,
    nms_iou) for :func:`.models.maskrcnn.detect`.

    Yields ``ProgressEvent(done, total, stage)`` counted in tiles (``"tile"`` here, ``"block"``
    from a cluster), then one ``"resolve"`` step per plane; returns ``(t, z) -> objects``
    in label order (as :func:`.instances._paste_by_score` numbers them).
    """
    items, where, tiles = [], [], []
    for (t, z), source in sources.items():
        for cells in _cell_groups(source.shape, tile, margin, block):
            part = source.part(_union([read for _, read in cells]), load=False)
            items.append((run, part, cells, detector_options, mask_threshold))
            where.append((t, z))
            tiles.append(len(cells))
    total = sum(tiles) + len(sources)
    candidates: dict[tuple[int, int], list[_Candidate]] = defaultdict(list)
    done = 0
    for item in run_tasks(instance_block, items, client, key="maskrcnn-block"):
        if isinstance(item, TaskProgress):
            yield ProgressEvent(done + item.event.done, total, "tile")
            continue
        index, found = item
        candidates[where[index]] += found
        done += tiles[index]
        if client is not None:
            yield ProgressEvent(done, total, "block")
    objects = {}
    for (t, z), source in sources.items():
        objects[t, z] = _resolve(candidates.pop((t, z), []), source.shape, min_size, t, z)
        done += 1
        yield ProgressEvent(done, total, "resolve")
    return objects


def link_time_point(planes: list[list[PlaneObject]], z_link_iou: float):
    """Ids of one time point's objects, linked across its z-slices (``planes[z]``).

    Returns ``(scores, classes, objects, ids)``: stack ids ``1..n`` have ``scores[i - 1]``,
    ``classes[i - 1]``; ``objects`` all planes' objects in order and ``ids`` their stack ids.
    """
    matches = [None] + [
        _match_objects(planes[z], planes[z - 1], z_link_iou) if 0 < z_link_iou <= 1 else None
        for z in range(1, len(planes))
    ]
    ids, scores, classes = link_ids(
        [np.asarray([o.score for o in p], np.float32) for p in planes],
        [np.asarray([o.class_id for o in p], np.int32) for p in planes], matches,
    )
    objects = [o for p in planes for o in p]
    object_ids = np.concatenate([i[1:] for i in ids]).astype(np.int64) if objects else np.zeros(0, np.int64)
    return scores, classes, objects, object_ids


def paint_time_point(out, t: int, objects: list[PlaneObject], ids: np.ndarray, shape: tuple[int, int]) -> None:
    """Write ``out[t]`` (Z, H, W) chunk by chunk from the objects' masks: object ``i`` gets ``ids[i]``."""
    _paint(out, t, objects, ids, shape, _chunk_side(out))


def _cell_groups(shape, tile: int, margin: int, block: int) -> list[list[tuple[Window, Window]]]:
    """The plane's ``core_grid`` cells grouped into blocks of about ``block`` pixels a side."""
    cells = core_grid(shape, tile, margin)
    n_y = len(core_bounds(shape[0], tile, margin)) - 1
    n_x = len(core_bounds(shape[1], tile, margin)) - 1
    per_side = max(1, block // max(tile - 2 * margin, 1))
    return [
        [cells[i * n_x + j] for i in range(by, min(by + per_side, n_y)) for j in range(bx, min(bx + per_side, n_x))]
        for by in range(0, n_y, per_side)
        for bx in range(0, n_x, per_side)
    ]


def _union(windows: list[Window]) -> Window:
    return Window(min(w.y0 for w in windows), max(w.y1 for w in windows),
                  min(w.x0 for w in windows), max(w.x1 for w in windows))


class _BitPlane:
    """One bit per pixel of an (H, W) plane: which pixels an object already claimed."""

    def __init__(self, shape: tuple[int, int]):
        self.bits = np.zeros((shape[0], -(-shape[1] // 8)), np.uint8)

    def get(self, y0: int, x0: int, shape: tuple[int, int]) -> np.ndarray:
        """bool ``shape`` crop at ``(y0, x0)``."""
        h, w = shape
        packed = self.bits[y0 : y0 + h, x0 // 8 : -(-(x0 + w) // 8)]
        return np.unpackbits(packed, axis=1)[:, x0 % 8 : x0 % 8 + w].astype(bool)

    def add(self, y0: int, x0: int, mask: np.ndarray) -> None:
        """Set the bits of bool ``mask`` placed at ``(y0, x0)``."""
        h, w = mask.shape
        cols = slice(x0 // 8, -(-(x0 + w) // 8))
        bits = np.unpackbits(self.bits[y0 : y0 + h, cols], axis=1)
        bits[:, x0 % 8 : x0 % 8 + w] |= mask
        self.bits[y0 : y0 + h, cols] = np.packbits(bits, axis=1)


def _resolve(candidates: list[_Candidate], shape, min_size: int, t: int, z: int) -> list[PlaneObject]:
    """Kept objects of one plane in label order, as :func:`.instances._paste_by_score` keeps them."""
    claimed = _BitPlane(shape)
    order = np.lexsort(
        ([c.x0 for c in candidates], [c.y0 for c in candidates], [-c.score for c in candidates])
    )
    kept = []
    for index in order:
        candidate = candidates[index]
        region = claimed.get(candidate.y0, candidate.x0, candidate.mask.shape).astype(np.int32)
        local = _Candidate(candidate.score, candidate.class_id, 0, 0, candidate.mask)
        if _claim(region, local, 2, min_size):
            mask = region == 2
            claimed.add(candidate.y0, candidate.x0, mask)
            kept.append(PlaneObject(t, z, candidate.y0, candidate.x0, mask, candidate.score, candidate.class_id))
    return kept


def _boxes(objects: list[PlaneObject]) -> np.ndarray:
    """int64 (n, 4) y0, y1, x0, x1 of the objects' masks."""
    return np.asarray([(o.y0, o.y0 + o.mask.shape[0], o.x0, o.x0 + o.mask.shape[1]) for o in objects],
                      np.int64).reshape(-1, 4)


def _match_objects(here: list[PlaneObject], previous: list[PlaneObject], iou_threshold: float):
    """:func:`.linking.match_by_iou` of two slices computed from the objects' masks."""
    boxes_a, boxes_b = _boxes(here), _boxes(previous)
    pairs = []
    for a, box in enumerate(boxes_a):
        touching = np.flatnonzero(
            (boxes_b[:, 0] < box[1]) & (boxes_b[:, 1] > box[0]) & (boxes_b[:, 2] < box[3]) & (boxes_b[:, 3] > box[2])
        ) if len(boxes_b) else []
        for b in touching:
            y0, y1 = max(box[0], boxes_b[b, 0]), min(box[1], boxes_b[b, 1])
            x0, x1 = max(box[2], boxes_b[b, 2]), min(box[3], boxes_b[b, 3])
            crop_a = here[a].mask[y0 - box[0] : y1 - box[0], x0 - box[2] : x1 - box[2]]
            crop_b = previous[b].mask[y0 - boxes_b[b, 0] : y1 - boxes_b[b, 0], x0 - boxes_b[b, 2] : x1 - boxes_b[b, 2]]
            overlap = int(np.count_nonzero(crop_a & crop_b))
            if overlap:
                pairs.append((a + 1, b + 1, overlap))
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs_a, pairs_b, overlap = (np.asarray(column, np.int64) for column in zip(*sorted(pairs)))
    area_a = np.asarray([o.mask.sum() for o in here], np.int64)
    area_b = np.asarray([o.mask.sum() for o in previous], np.int64)
    union = area_a[pairs_a - 1] + area_b[pairs_b - 1] - overlap
    return greedy_matches(pairs_a, pairs_b, overlap / union, iou_threshold)


def _chunk_side(out) -> int:
    chunks = getattr(out, "chunks", None)
    if isinstance(chunks, tuple) and chunks and all(isinstance(c, int) for c in chunks):
        return max(int(chunks[-1]), int(chunks[-2]))
    return 1024


def _paint(out, t: int, objects: list[PlaneObject], ids: np.ndarray, shape, side: int) -> None:
    """Write ``out[t]`` chunk by chunk (``side`` pixels square): object ``i`` gets ``ids[i]``."""
    n_z = out.shape[1]
    touching: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for i, (y0, y1, x0, x1) in enumerate(_boxes(objects)):
        for cy in range(y0 // side, (y1 - 1) // side + 1):
            for cx in range(x0 // side, (x1 - 1) // side + 1):
                touching[objects[i].z, cy, cx].append(i)
    for z in range(n_z):
        for window in block_windows(shape, side):
            canvas = np.zeros(window.shape, out.dtype)
            for i in touching.get((z, window.y0 // side, window.x0 // side), ()):
                obj = objects[i]
                y0, y1 = max(obj.y0, window.y0), min(obj.y0 + obj.mask.shape[0], window.y1)
                x0, x1 = max(obj.x0, window.x0), min(obj.x0 + obj.mask.shape[1], window.x1)
                crop = obj.mask[y0 - obj.y0 : y1 - obj.y0, x0 - obj.x0 : x1 - obj.x0]
                canvas[y0 - window.y0 : y1 - window.y0, x0 - window.x0 : x1 - window.x0][crop] = ids[i]
            out[t, z, window.y0 : window.y1, window.x0 : window.x1] = canvas


class CanonicalWriter:
    """An (T, Z, H, W) view for writing into a label array whose axes are letters of TZYX.

    ``writer[t, z, ys, xs] = plane_part`` writes into ``array`` in its own axis order.
    """

    def __init__(self, array, axes: str):
        self.array = array
        self.axes = axes
        sizes = dict(zip(axes, array.shape))
        self.shape = tuple(sizes.get(a, 1) for a in "TZYX")
        self.dtype = np.dtype(array.dtype)
        chunks = dict(zip(axes, getattr(array, "chunks", array.shape)))
        self.chunks = tuple(int(chunks.get(a, 1)) for a in "TZYX")

    def __setitem__(self, key, value) -> None:
        index = dict(zip("TZYX", key))
        self.array[tuple(index[a] for a in self.axes)] = value


@contextmanager
def open_output(out, shape: tuple[int, int, int, int], axes: str, dtype, *, beside_image: bool = False,
                pixel_size=None, name: str = "labels") -> Iterator[CanonicalWriter]:
    """The (T, Z, H, W) writer of an ``out=`` target: a zarr (or numpy) array, or a folder to create.

    Args:
        out: a writable array shaped like the result (axes ``axes``), or a ``.zarr`` path,
            created atomically by :func:`.zarr_io.labels_zarr` in T, Z, Y, X order.
        shape: canonical (T, Z, H, W) of the result.
        axes: the result's axes (letters of TZYX, the caller's order).

    Raises:
        ValueError: an array of another shape, or a non-integer dtype.
    """
    import os

    if isinstance(out, CanonicalWriter):
        yield out
        return
    if isinstance(out, (str, os.PathLike)):
        from .zarr_io import labels_zarr

        ngff_axes = "".join(a for a in "TZYX" if a in axes)
        sizes = dict(zip("TZYX", shape))
        with labels_zarr(out, tuple(sizes[a] for a in ngff_axes), ngff_axes, dtype=dtype,
                         pixel_size=pixel_size, name=name, beside_image=beside_image,
                         overwrite=getattr(out, "overwrite", False)) as array:
            yield CanonicalWriter(array, ngff_axes)
        return
    sizes = dict(zip("TZYX", shape))
    expected = tuple(sizes[a] for a in axes)
    if tuple(out.shape) != expected:
        raise ValueError(f"out has shape {tuple(out.shape)}; the result ({axes}) needs shape {expected}.")
    if np.dtype(out.dtype).kind not in "ui" or np.dtype(out.dtype).itemsize < np.dtype(dtype).itemsize:
        raise ValueError(f"out has dtype {out.dtype}; the result needs {np.dtype(dtype).name} (or a wider integer).")
    yield CanonicalWriter(out, axes)

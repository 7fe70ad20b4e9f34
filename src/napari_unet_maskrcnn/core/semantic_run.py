"""One U-Net run over a whole image: the generator the API uses in memory, into zarr
(``out=``) and on a cluster (``client=``).

Every plane's classes are computed block by block (:func:`.blockwise.iter_semantic_blocks`,
here or on the cluster's workers) and written into the output array (numpy or zarr). Runs
in memory also follow the objects' size plane by plane
(:func:`.object_size.segment_at_object_size`: a resized plane goes through the same blocks,
with its probabilities, and is mapped back) and may keep the class probabilities; block runs
segment at native scale with one estimate for the run
(:func:`.object_size.native_run_object_size`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blockwise import NetworkRun, iter_semantic_blocks, semantic_windows
from .object_size import (ObjectSize, boundary_classes_to_grid, equivalent_diameters, native_run_object_size,
                          segment_at_object_size, semantic_to_grid, SizeRequest)
from .progress import ProgressGenerator, RunProgress


@dataclass(frozen=True)
class SemanticSettings:
    """A U-Net run's settings: ``tile`` and ``overlap`` in pixels of the (resized) plane,
    ``block`` the block side (pixels), ``boundary_class`` the index of the model's
    ``boundary`` class (None without one) and ``min_size`` the smallest object (pixels) when
    objects are split from the classes to measure their size."""

    tile: int
    overlap: int
    block: int
    boundary_class: int | None
    min_size: int


def iter_semantic_run(
    sources: dict[tuple[int, int], object],
    out,
    run: NetworkRun,
    settings: SemanticSettings,
    size: SizeRequest,
    n_classes: int,
    *,
    probabilities: np.ndarray | None = None,
    client=None,
    in_memory: bool = True,
) -> ProgressGenerator[list[ObjectSize]]:
    """Classes of every plane written into ``out`` (T, Z, H, W).

    Args:
        sources: ``(t, z) -> PlaneSource`` of every plane (all of one shape).
        out: writable uint8 array (numpy, zarr or :class:`.blockwise.CanonicalWriter`) (T, Z, H, W).
        run: where and how the network runs.
        size: the object size asked for; ``in_memory`` False (zarr / cluster runs) keeps every
            plane at native scale with one estimate for the run, from the middle plane of the
            first time point.
        n_classes: the model's output classes K.
        probabilities: None, or a float32 (K, T, Z, H, W) array to fill too (in memory only).
        client: a dask.distributed Client computing the blocks, or None.

    Yields ProgressEvent over the whole run; returns one :class:`.object_size.ObjectSize` per
    plane (one for a run at native scale).
    """
    from .tiling import window_tile_count

    blocks = dict(tile=settings.tile, overlap=settings.overlap, block=settings.block)
    if not in_memory:
        n_z = 1 + max(z for _, z in sources)
        sizes = [(yield from native_run_object_size(sources[0, n_z // 2], size))]
        yield from iter_semantic_blocks(sources, out, run, client=client, **blocks)
        return sizes
    shape = tuple(next(iter(sources.values())).shape)
    per_plane = sum(window_tile_count(shape, window, settings.tile, settings.overlap)
                    for window in semantic_windows(shape, settings.tile, settings.overlap, settings.block))
    progress = RunProgress(per_plane, len(sources))

    def predict(plane, resized: bool):
        classes = np.zeros((1, 1, *plane.shape), np.uint8)
        keep = probabilities is not None or resized
        probs = np.zeros((n_classes, 1, 1, *plane.shape), np.float32) if keep else None
        yield from iter_semantic_blocks({(0, 0): plane}, classes, run, client=client, probabilities=probs, **blocks)
        return classes[0, 0], (probs[:, 0, 0] if keep else None)

    sizes = []
    for (t, z), source in sources.items():
        (classes, plane_probabilities), plane_size = yield from progress.relay(segment_at_object_size(
            source, predict, _measure(settings), _to_grid(settings), mode=size.mode, scale=size.scale,
            model_diameter=size.model_diameter, diameter=size.diameter, trained_range=size.trained_range,
        ))
        out[t, z, 0 : shape[0], 0 : shape[1]] = classes
        if probabilities is not None:
            probabilities[:, t, z] = plane_probabilities
        sizes.append(plane_size)
    return sizes


MEASURE_WINDOW = 2048
"""Side (pixels) of the central window of a plane's classes whose objects are measured: enough
objects for a median, and a x4 resized pass of a 2048² plane (8192²) is not split whole to be checked."""


def _measure(settings: SemanticSettings):
    """The objects' equivalent diameters of a plane's ``(classes, probabilities)``: split by
    watershed inside the boundary class (models without one: None, nothing to measure), on the
    central :data:`MEASURE_WINDOW` square, objects cut by its edges left out when others remain."""
    from .postprocess import instances_from_classes

    def measure(result):
        if settings.boundary_class is None:
            return None
        classes = result[0]
        y0, x0 = (max(0, (n - MEASURE_WINDOW) // 2) for n in classes.shape)
        window = classes[y0 : y0 + MEASURE_WINDOW, x0 : x0 + MEASURE_WINDOW]
        labels = instances_from_classes(window, object_class=1, boundary_class=settings.boundary_class,
                                        min_size=settings.min_size)
        if window.shape != classes.shape:
            edges = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
            inner = np.where(np.isin(labels, edges), 0, labels)
            labels = inner if inner.any() else labels
        return equivalent_diameters(labels)

    return measure


def _to_grid(settings: SemanticSettings):
    def to_grid(result, shape):
        if settings.boundary_class is None:
            return semantic_to_grid(result, shape)
        return boundary_classes_to_grid(result, shape, object_class=1, boundary_class=settings.boundary_class)

    return to_grid

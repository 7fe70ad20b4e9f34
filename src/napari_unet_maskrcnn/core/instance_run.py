"""One Mask R-CNN run over a whole image: the generator the API uses in memory, into zarr
(``out=``) and on a cluster (``client=``).

Every plane is detected block by block (:func:`.blockwise.iter_instance_objects`, here or on
the cluster's workers) into box-sized object masks; the objects of a time point are linked
across z (:func:`.blockwise.link_time_point`), painted into the output array (numpy or zarr)
chunk by chunk, and measured into one table (:func:`.instance_table.object_table`). Runs in
memory also follow the objects' size plane by plane (:func:`.object_size.segment_at_object_size`:
a resized plane goes through the same blocks); block runs segment at native scale with one
estimate for the run (:func:`.object_size.native_run_object_size`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blockwise import NetworkRun, iter_instance_objects, link_time_point, paint_time_point
from .instance_table import object_table
from .object_size import (ObjectSize, mask_diameters, native_run_object_size, objects_to_grid,
                          segment_at_object_size, SizeRequest)
from .progress import ProgressGenerator, RunProgress


@dataclass(frozen=True)
class InstanceSettings:
    """A Mask R-CNN run's settings (checked and completed from the model's defaults by the API).

    ``tile``, ``margin`` in pixels of the (resized) plane; ``min_size`` in the image's pixels;
    ``block`` the block side of runs on a cluster or into zarr (pixels).
    """

    tile: int
    margin: int
    score_threshold: float
    mask_threshold: float
    nms_iou: float
    min_size: int
    z_link_iou: float
    block: int


def iter_instance_run(
    sources: dict[tuple[int, int], object],
    out,
    run: NetworkRun,
    settings: InstanceSettings,
    size: SizeRequest,
    class_names: list[str],
    *,
    spacing: tuple[float, ...] | None = None,
    client=None,
    in_memory: bool = True,
) -> ProgressGenerator[tuple[dict[str, np.ndarray], list[ObjectSize]]]:
    """Instance labels of every plane written into ``out`` (T, Z, H, W), ids unique over it all.

    Args:
        sources: ``(t, z) -> PlaneSource`` of every plane (all of one shape).
        out: writable integer array (numpy, zarr or :class:`.blockwise.CanonicalWriter`) (T, Z, H, W).
        run: where and how the network runs.
        size: the object size asked for; ``in_memory`` False (zarr / cluster runs) keeps every
            plane at native scale with one estimate for the run, from the middle plane of the
            first time point (a central window of it).
        spacing: pixel size per axis of the table (Z, Y, X for stacks, else Y, X).
        client: a dask.distributed Client computing the blocks, or None.

    Yields ProgressEvent over the whole run. Returns ``(table, object sizes)``: the table of
    :func:`.instance_table.object_table` with a ``t`` column for time series, and one
    :class:`.object_size.ObjectSize` per plane (one for a run at native scale).
    """
    n_t = 1 + max(t for t, _ in sources)
    n_z = 1 + max(z for _, z in sources)
    shape = tuple(next(iter(sources.values())).shape)
    options = dict(tile=settings.tile, margin=settings.margin, mask_threshold=settings.mask_threshold,
                   detector_options=dict(score_threshold=settings.score_threshold, nms_iou=settings.nms_iou),
                   block=settings.block, client=client)
    if not in_memory:
        sizes = [(yield from native_run_object_size(sources[0, n_z // 2], size))]
        objects = yield from iter_instance_objects(sources, run, min_size=settings.min_size, **options)
    else:
        objects, sizes = yield from _objects_at_object_size(sources, run, settings, size, options)
    tables, next_id = [], 0
    for t in range(n_t):
        scores, classes, pieces, ids = link_time_point([objects.pop((t, z)) for z in range(n_z)],
                                                       settings.z_link_iou if n_z > 1 else 0.0)
        paint_time_point(out, t, pieces, ids + next_id, shape)
        table = object_table(pieces, ids, scores, classes, class_names, n_z, spacing)
        table["label"] = table["label"] + next_id
        if n_t > 1:
            table["t"] = np.full(len(table["label"]), t, np.int64)
        tables.append(table)
        next_id += len(scores)
    return {key: np.concatenate([table[key] for table in tables]) for key in tables[0]}, sizes


def _objects_at_object_size(sources, run, settings: InstanceSettings, size: SizeRequest, options: dict):
    """Plane by plane, at the object size the model knows: ``((t, z) -> objects, sizes)``."""
    from .tiling import core_grid

    shape = tuple(next(iter(sources.values())).shape)
    progress = RunProgress(len(core_grid(shape, settings.tile, settings.margin)) + 1, len(sources))
    objects, sizes = {}, []
    for (t, z), source in sources.items():

        def predict(plane, resized: bool):
            whole = getattr(plane, "whole_shape", plane.shape)  # a central window's: its resized plane's
            area_ratio = whole[0] * whole[1] / (shape[0] * shape[1])
            min_size = int(settings.min_size * area_ratio) if resized else settings.min_size
            found = yield from iter_instance_objects({(t, z): plane}, run, min_size=min_size, **options)
            return found[t, z], tuple(plane.shape)

        def to_grid(result, plane_shape):
            return objects_to_grid(result[0], result[1], plane_shape, settings.min_size, t, z), plane_shape

        (found, _), plane_size = yield from progress.relay(segment_at_object_size(
            source, predict, lambda result: mask_diameters(o.mask for o in result[0]), to_grid,
            mode=size.mode, scale=size.scale, model_diameter=size.model_diameter, diameter=size.diameter,
            trained_range=size.trained_range,
        ))
        objects[t, z] = found
        sizes.append(plane_size)
    return objects, sizes

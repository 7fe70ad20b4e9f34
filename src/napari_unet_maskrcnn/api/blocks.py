"""Runs written block by block: into a zarr array / OME-Zarr folder (``out=``) or computed on a
``dask.distributed`` cluster (``client=``); results equal the in-memory path's."""

from __future__ import annotations

import os

import numpy as np

from ..core.axes import from_canonical, output_axes
from ..core.progress import ProgressEvent
from .results import InstanceResult, SemanticResult, object_size_report
from .runs import canonical_plane, table_spacing


def native_object_size(canonical, spec, channel, mode: str, scale: float | None, diameter: float | None):
    """The :class:`ObjectSize` of a block run (``out=`` / ``client=``), which segments at native scale.

    Automatic (``scale`` None): the diameter is estimated from the image alone on a central
    window of the middle plane of the first time point (:mod:`~..core.size_estimator`,
    NumPy only: a ``client=`` run's caller still never loads torch) and must lie in the
    model's trained range. A generator (one ``"object size"`` event).

    Raises:
        ValueError: the given or estimated diameter needs the planes resized (with the fix).
    """
    from ..core.object_size import ObjectSize, automatic_scale

    model_diameter = spec.object_diameter_px
    note = None
    if scale is None:
        source = plane_source(canonical, spec, channel, 0, canonical.shape[1] // 2)
        scale, diameter, note = automatic_scale(source, model_diameter)
        yield ProgressEvent(1, 1, "object size")
        if scale is None:  # unsure near the trained size: in memory a native pass would decide
            scale, note = 1.0, note + ", native scale kept"
        if scale != 1.0:
            raise ValueError(
                f"The objects measure about {diameter:.1f} px across (estimated on the image's central "
                f"window), outside the range this model was trained for ({model_diameter:.1f} px); out= "
                f"and client= segment at the image's own scale. Resize the image by {scale:.2f} first, "
                "segment it in memory (no out=/client=; --output-format tif), give the objects' diameter "
                "if the estimate is wrong, or diameter=0 (GUI/CLI: 0) to segment at native scale anyway."
            )
    elif scale != 1.0:
        raise ValueError(f"out= and client= segment planes at their own scale, but the diameter asks to resize "
                         f"them by {scale:.2f}: give diameter=0 (GUI/CLI: 0), or resize the image first.")
    return ObjectSize(mode, diameter if mode != "off" else None, 1.0, model_diameter, note)


def plane_source(canonical, spec, channel, t: int, z: int):
    """The ``PlaneSource`` of plane (t, z) of a canonical TZYXC image."""
    from ..core.inputs import prepare_plane

    return prepare_plane(canonical_plane(canonical, t, z), spec.in_channels, channel, spec.normalization)


def plane_sources(canonical, spec, channel) -> dict:
    n_t, n_z = canonical.shape[:2]
    return {(t, z): plane_source(canonical, spec, channel, t, z) for t in range(n_t) for z in range(n_z)}


def block_output(out, canonical, axes, dtype):
    """Context manager giving the (T, Z, H, W) writer: ``out``, or a numpy array when None."""
    from contextlib import nullcontext

    from ..core.blockwise import CanonicalWriter, open_output

    shape = canonical.shape[:4]
    if out is None:
        return nullcontext(CanonicalWriter(np.zeros(shape, dtype), "TZYX"))
    return open_output(out, shape, output_axes(axes), dtype)


def block_result(writer, out, axes):
    """The result array and its axes: in memory, the given array, or the zarr array written at ``out``."""
    from ..core.blockwise import CanonicalWriter

    if out is None:
        return from_canonical(writer.array, axes), output_axes(axes)
    if isinstance(out, CanonicalWriter):
        return out.array, out.axes
    if isinstance(out, (str, os.PathLike)):
        import zarr

        from ..core.zarr_io import label_array_path

        return zarr.open_array(label_array_path(out, False), mode="r+"), writer.axes
    return out, output_axes(axes)


def semantic_blocks(canonical, axes, spec, run, channel, tile, overlap, out, client, block, size):
    from ..core.blockwise import iter_semantic_blocks

    sources = plane_sources(canonical, spec, channel)
    with block_output(out, canonical, axes, np.uint8) as writer:
        yield from iter_semantic_blocks(sources, writer, run, tile=tile, overlap=overlap, block=block,
                                        client=client)
    classes, result_axes = block_result(writer, out, axes)
    return SemanticResult(classes, list(spec.class_names), None, result_axes, None, *object_size_report([size]))


def instance_blocks(canonical, axes, spec, run, channel, tile, margin, out, client, block,
                     detector_options, mask_threshold, min_size, z_link_iou, spacing, size):
    from ..core.blockwise import iter_instance_blocks, object_table

    sources = plane_sources(canonical, spec, channel)
    n_z = canonical.shape[1]
    with block_output(out, canonical, axes, np.uint32) as writer:
        per_time = yield from iter_instance_blocks(
            sources, writer, run, tile=tile, margin=margin, mask_threshold=mask_threshold, min_size=min_size,
            detector_options=detector_options, z_link_iou=z_link_iou if n_z > 1 else 0.0, block=block,
            client=client,
        )
    tables, next_id = [], 0
    for t, (scores, classes, objects, ids) in enumerate(per_time):
        table = object_table(objects, ids, scores, classes, list(spec.class_names), n_z, table_spacing(spacing, n_z))
        table["label"] = table["label"] + next_id
        if len(per_time) > 1:
            table["t"] = np.full(len(table["label"]), t, np.int64)
        tables.append(table)
        next_id += len(scores)
    table = {key: np.concatenate([tab[key] for tab in tables]) for key in tables[0]}
    labels, result_axes = block_result(writer, out, axes)
    return InstanceResult(labels, table, list(spec.class_names), result_axes, *object_size_report([size]))

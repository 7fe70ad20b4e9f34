"""The planes a run reads and the array it writes: in memory (numpy), into a zarr array /
OME-Zarr folder (``out=``); the same blocks fill either (:mod:`~..core.instance_run`,
:mod:`~..core.semantic_run`)."""

from __future__ import annotations

import os

import numpy as np

from ..core.axes import from_canonical, output_axes
from .runs import canonical_plane


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

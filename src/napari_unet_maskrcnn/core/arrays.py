"""Images that need not fit in memory: numpy, dask and zarr arrays, zarr folders, TIFF as zarr.

:func:`as_array` turns any supported input into a numpy array (kept as is) or a dask array
(lazy: nothing is read until a window of it is). The core slices that array plane by plane
and window by window and reads each window with :func:`materialise`, so a zarr or
(Big)TIFF image of any size is read tile by tile.

A TIFF is read through tifffile's zarr store (``TiffFile.aszarr()``) by
:class:`TiffZarrArray`, which reopens the file wherever it is unpickled: a dask array over
it can be sent to dask.distributed workers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

ZARR_SUFFIX = ".zarr"


def is_lazy(array: Any) -> bool:
    """Whether ``array`` is a dask array (slicing it reads nothing)."""
    return type(array).__module__.startswith("dask.")


def as_array(image: Any):
    """numpy arrays unchanged; dask arrays lazy (:func:`bounded_chunks`); zarr arrays and array-likes with
    ``shape``/``dtype``/``__getitem__`` (tifffile stores, h5py datasets) as dask arrays;
    anything else (lists) through ``np.asarray``.

    A ``str``/``Path`` is opened lazily with :func:`open_lazy` (TIFF or zarr).
    """
    if isinstance(image, np.ndarray):
        return image
    if is_lazy(image):
        return bounded_chunks(image)
    if isinstance(image, (str, os.PathLike)):
        return open_lazy(image)
    if all(hasattr(image, name) for name in ("shape", "dtype", "__getitem__")) and not np.isscalar(image):
        import dask.array as da

        return da.from_array(image, chunks=_chunks(image), asarray=True, fancy=False)
    return np.asarray(image)


MAX_CHUNK_ELEMENTS = 2**20
"""Largest chunk (elements) that one window read may load whole; bigger dask chunks are split."""


def bounded_chunks(array):
    """``array`` (dask), or a dask array over it whose chunks hold at most :data:`MAX_CHUNK_ELEMENTS`.

    Reading a window of a transposed, sliced or channel-split view of a dask array (the
    canonical TZYXC view, a plane's channels) computes every chunk it touches whole: dask
    fuses a slice into the read of the source only when nothing lies between them. A napari
    layer backed by one chunk per plane (a multiscale level, ``da.from_array(memmap)``)
    would thus be read whole for every tile. Over-large chunks are therefore split along
    the original chunk boundaries, and each new chunk is read as one plain slice of
    ``array`` (:class:`DaskWindows`), which dask fuses into the source read.
    """
    import dask.array as da

    sides = list(array.chunksize)
    if math.prod(sides) <= MAX_CHUNK_ELEMENTS:
        return array
    while math.prod(sides) > MAX_CHUNK_ELEMENTS:
        largest = max(range(len(sides)), key=sides.__getitem__)
        sides[largest] = -(-sides[largest] // 2)
    chunks = tuple(
        tuple(piece for c in dim for piece in [side] * (c // side) + ([c % side] if c % side else []))
        for dim, side in zip(array.chunks, sides)
    )
    return da.from_array(DaskWindows(array), chunks=chunks, asarray=True, fancy=False,
                         name=f"windows-{array.name}")


class DaskWindows:
    """Array-like over a dask array: ``self[key]`` computes ``array[key]`` (one plain slice) here."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key) -> np.ndarray:
        return materialise(self.array[key])


def materialise(array: Any) -> np.ndarray:
    """A numpy array of ``array`` (a window of the image): dask computes it in this thread.

    The synchronous scheduler is used so that reading a window inside a dask.distributed
    task never sends work back to the cluster.
    """
    if is_lazy(array):
        return np.asarray(array.compute(scheduler="synchronous"))
    return np.asarray(array)


def open_lazy(path: str | os.PathLike):
    """A dask array over a TIFF file (tifffile's zarr store) or a zarr / OME-Zarr folder.

    OME-Zarr: the highest resolution of the first image. Use
    :func:`napari_unet_maskrcnn.core.io.read_image` with ``lazy=True`` for axes and pixel size.
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import dask.array as da

        tiff = TiffZarrArray(path)
        return da.from_array(tiff, chunks=_chunks(tiff), asarray=True, fancy=False)
    from .zarr_io import open_zarr_image

    return open_zarr_image(path).data


class TiffZarrArray:
    """Read-only array over the first series (full resolution) of a TIFF via tifffile's zarr store.

    Slicing reads only the TIFF tiles or strips that the slice touches. Picklable: the file
    is reopened on first use after unpickling (dask.distributed workers).

    Attributes:
        path: the TIFF file.
        shape, dtype, ndim: of the series' full-resolution level.
        axes: tifffile's axes letters of the series (e.g. ``"YXS"``, ``"QYX"``).
        chunks: the store's chunk shape (one TIFF tile or strip).
    """

    def __init__(self, path: str | os.PathLike):
        import tifffile

        self.path = Path(path)
        self._array = None
        with tifffile.TiffFile(self.path) as tif:
            series = tif.series[0]
            self.shape = tuple(int(n) for n in series.shape)
            self.dtype = np.dtype(series.dtype)
            self.axes = series.axes
        self.ndim = len(self.shape)
        self.chunks = self._open().chunks

    def _open(self):
        if self._array is None:
            import tifffile
            import zarr

            store = tifffile.imread(self.path, aszarr=True, series=0, level=0)
            self._array = zarr.open(store, mode="r")
        return self._array

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self._open()[key])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}


def _chunks(array) -> tuple[int, ...]:
    """dask chunks following the source's own chunks (zarr chunks, TIFF tiles or strips).

    For a TIFF (``axes`` known) the Y and X chunk sides are grown to at least 1024 pixels
    so that strips or small tiles are not read one task at a time.
    """
    shape = tuple(array.shape)
    chunks = getattr(array, "chunks", None)
    if not chunks or len(chunks) != len(shape) or not all(isinstance(c, int) for c in chunks):
        return tuple(1 if i < len(shape) - 2 else n for i, n in enumerate(shape))
    chunks = list(chunks)
    axes = getattr(array, "axes", "")
    for axis in [axes.index(a) for a in "YX" if a in axes]:
        if chunks[axis] < 1024:
            chunks[axis] = min(shape[axis], -(-1024 // chunks[axis]) * chunks[axis])
    return tuple(chunks)

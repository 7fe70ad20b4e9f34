"""Reading images and writing label images, with axes, pixel size and atomic writes.

- :func:`read_image`: TIFF (ImageJ, OME or plain; via tifffile), PNG/JPEG/BMP (via
  Pillow) and zarr / OME-Zarr folders into an :class:`ImageData` with the array, its axes
  and its pixel size in µm. ``lazy=True`` gives a dask array instead (TIFF through
  tifffile's zarr store; zarr always), read window by window later.
- :func:`write_labels`: an ImageJ-compatible TIFF (uint16), or an OME-TIFF when ids need
  uint32 or the data needs a BigTIFF (ImageJ hyperstacks can hold neither; Fiji opens the
  OME-TIFF with Bio-Formats).
  Axes and pixel size are stored so that :func:`read_image` gets them back.
- :func:`atomic_path`: write to a hidden temporary file beside the target and rename it
  at the end, so readers never see a partial file and a failed write changes nothing.
"""

from __future__ import annotations

import math
import os
import uuid
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .axes import resolve_axes, validate_axes
from .image_data import ImageData, ImageReadError, normal_unit as _normal_unit, unit_um as _unit_um

TIFF_SUFFIXES = (".tif", ".tiff")
PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SUPPORTED_SUFFIXES = TIFF_SUFFIXES + PILLOW_SUFFIXES
CLASSIC_TIFF_BYTES = 2**32 - 2**25
"""Above this many bytes of pixels, labels go to a BigTIFF (OME), which ImageJ TIFFs cannot be."""
MAX_RESOLUTION_PIXEL_UM = 20.0
"""Pixel sizes from inch/cm resolution tags above this (µm) are ignored: they are the
print or screen defaults of general image software (72, 96, 300 dpi), not a calibration."""

_PAPER_UNITS = ("inch", "in", "cm")
_TIFF_RESOLUTION_UNITS = {2: "inch", 3: "cm"}
_PILLOW_MODES_KEPT = {"1", "L", "I;16", "I;16L", "I;16B", "I", "F", "RGB", "RGBA"}
_PILLOW_MODES_WITH_ALPHA = {"LA", "La", "PA", "RGBa"}
_SPATIAL = "XYZ"
_IMAGEJ_ORDER = "TZCYX"


def read_image(path: str | os.PathLike, lazy: bool = False) -> ImageData:
    """Read a TIFF, PNG, JPEG, BMP image or a zarr / OME-Zarr folder with its axes and pixel size.

    ``lazy``: return TIFF pixels as a dask array over tifffile's zarr store (nothing is read
    yet). zarr folders are always lazy; PNG/JPEG/BMP are always read.

    TIFF: the first series (full resolution of a pyramid); axes from its metadata
    (tifffile's ``S`` samples become ``C``; unknown letters are guessed); pixel size from
    OME ``PhysicalSize*``, else ImageJ ``spacing``/``unit`` and the X/Y resolution tags.
    PNG/JPEG/BMP: ``YX`` (greyscale, 8 or 16 bit) or ``YXC`` (RGB, RGBA).

    Raises:
        ImageReadError: missing file, folder, unsupported extension, empty or corrupt file.
    """
    from .zarr_io import is_zarr_path, open_zarr_image

    if is_zarr_path(path):
        return open_zarr_image(path)
    path = _check_readable(Path(path))
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            return _read_tiff(path, lazy)
        return _read_pillow(path)
    except ImageReadError:
        raise
    except PermissionError as err:
        raise ImageReadError(path, "permission denied.", "Check that you may read this file.") from err
    except Exception as err:  # tifffile, Pillow and codecs raise many types for bad files
        raise ImageReadError(
            path,
            f"could not be read ({type(err).__name__}: {err}).",
            "The file may be truncated or corrupt: check that it opens in Fiji, or export it again.",
        ) from err


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    axes: str = "YX",
    pixel_size: Mapping[str, float] | None = None,
) -> Path:
    """Write a label image (ids >= 0) atomically as a zlib-compressed TIFF; returns ``path``.

    uint16 when the largest id is <= 65535, else uint32. uint16 labels below 4 GB are an
    ImageJ hyperstack; others an OME-TIFF (BigTIFF when large).
    Dimensions are stored in ImageJ order (T, Z, C, Y, X), so an unusual input order such
    as ``ZTYX`` is read back transposed, with matching axes.

    Args:
        path: a ``.tif`` or ``.tiff`` file name; its folder must exist.
        labels: integer or bool array, dimensions ordered as ``axes``.
        axes: letters T, Z, C, Y, X, one per dimension of ``labels``.
        pixel_size: micrometres per pixel for ``"X"``, ``"Y"``, ``"Z"`` (others ignored);
            a single X or Y value is used for both (square pixels). An ImageJ file stores
            Z only together with X/Y (ImageJ calibrates the plane first).

    Raises:
        ValueError: non-integer or negative labels, ids above 2**32 - 1, bad axes, bad name.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ValueError(f"Labels are written as TIFF: name the file '{path.stem}.tif' instead of '{path.name}'.")
    labels = np.asarray(labels)
    axes = validate_axes(axes, labels.shape)
    data = _label_array(labels)
    order = sorted(range(len(axes)), key=lambda i: _IMAGEJ_ORDER.index(axes[i]))
    data = np.transpose(data, order)
    file_axes = "".join(axes[i] for i in order)
    sizes = _checked_pixel_size(pixel_size or {})
    with atomic_path(path) as tmp:
        if data.dtype == np.uint16 and data.nbytes <= CLASSIC_TIFF_BYTES:
            _write_imagej(tmp, data, file_axes, sizes)
        else:
            _write_ome(tmp, data, file_axes, sizes)
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary name is hidden (leading dot) and keeps the suffix, so writers that pick
    a format from the extension still work. If the block raises, the temporary file is
    removed and an existing ``path`` is left untouched.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write '{path}': the folder '{path.parent}' does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"Cannot write '{path}': it is a folder.")
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_readable(path: Path) -> Path:
    """``path`` if it is a non-empty file with a supported extension, else ImageReadError."""
    supported = ", ".join(SUPPORTED_SUFFIXES)
    if not path.exists():
        raise ImageReadError(path, "no such file.", f"Check the path (relative paths start at '{Path.cwd()}').")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file.", f"Give the image files inside it ({supported}).")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ImageReadError(
            path,
            f"unsupported extension '{path.suffix}'.",
            f"Supported: {supported}. Convert the image to TIFF first (Fiji: File > Save As > Tiff...).",
        )
    if path.stat().st_size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes).", "It was probably not copied or saved completely.")
    return path


def _read_tiff(path: Path, lazy: bool = False) -> ImageData:
    """ImageData of the first series of a TIFF file (a dask array over its zarr store if ``lazy``)."""
    import tifffile

    from .arrays import open_lazy

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        check_declared_size(tif, path, lazy)
        data = open_lazy(path) if lazy else series.asarray()
        axes = resolve_axes(series.axes, data.shape)
        if tif.is_ome:
            sizes = _ome_pixel_size(tif.ome_metadata)
        else:
            imagej = tif.imagej_metadata or {}
            sizes = _tiff_resolution_pixel_size(series.keyframe, imagej.get("unit"))
            if "spacing" in imagej and _unit_um(imagej.get("unit")):
                sizes["Z"] = float(imagej["spacing"]) * _unit_um(imagej.get("unit"))
    return ImageData(data, axes, _present(sizes, axes), path)


MEMORY_FRACTION = 0.8
"""A whole (not lazy) read may take at most this part of the memory available now."""


def check_declared_size(tif, path: Path, lazy: bool) -> None:
    """Refuse a TIFF whose header promises pixels its file cannot hold, before anything is allocated.

    The first and last pages of the first series must list one strip or tile per chunk of the
    declared image, all inside the file, and uncompressed data must have the declared bytes.
    A whole read (``lazy`` False) must also fit in the memory available now.

    Raises:
        ImageReadError: naming the file, the declared size and what to do.
    """
    series = tif.series[0]
    size = path.stat().st_size
    declared = " x ".join(str(n) for n in series.shape)
    pages = [page for page in (series.keyframe, series.pages[-1] if len(series.pages) else None)
             if page is not None and hasattr(page, "dataoffsets")]
    for page in pages:
        offsets, counts = page.dataoffsets, page.databytecounts
        expected = math.prod(getattr(page, "chunked", ()) or (len(offsets),))
        beyond = any(o + c > size for o, c in zip(offsets, counts))
        short = page.compression == 1 and sum(counts) < page.nbytes
        if len(offsets) != expected or beyond or short:
            raise ImageReadError(
                path, f"its header declares {declared} pixels ({series.dtype}), but the file ({size} bytes) "
                "does not hold them: it is truncated or its header is corrupt.",
                "Export the image again (e.g. Fiji: File > Save As > Tiff...).",
            )
    if not lazy:
        available = available_memory()
        if available and series.nbytes > MEMORY_FRACTION * available:
            raise ImageReadError(
                path, f"holds {declared} pixels ({series.nbytes / 2**30:.1f} GiB), more than the "
                f"{available / 2**30:.1f} GiB of memory available.",
                "Segment it block by block (command line: --output-format zarr; Python: out=), or crop it.",
            )


def available_memory() -> int | None:
    """Bytes of memory available now (psutil), or None when unknown."""
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def _read_pillow(path: Path) -> ImageData:
    """ImageData of a PNG, JPEG or BMP file: (H, W) or (H, W, C)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as err:
            raise ImageReadError(path, f"is too large for Pillow ({err}).", "Save it as TIFF instead.") from err
        with image:
            image.load()
            data = _pillow_array(image)
            dpi = image.info.get("dpi")
    sizes = {}
    if dpi and all(d > 0 for d in dpi):
        sizes = _resolution_sizes(float(dpi[0]), float(dpi[1]), "inch")
    axes = "YX" if data.ndim == 2 else "YXC"
    return ImageData(data, axes, sizes, path)


def _pillow_array(image) -> np.ndarray:
    """Pixels of a loaded Pillow image; 16-bit PNG stays uint16, palettes become RGB(A)."""
    if image.mode not in _PILLOW_MODES_KEPT:
        has_alpha = image.mode in _PILLOW_MODES_WITH_ALPHA or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    data = np.array(image)  # a writable copy (np.asarray would view Pillow's read-only bytes)
    if image.mode == "I" and image.format == "PNG":  # older Pillow opens 16-bit PNG as int32
        return data.astype(np.uint16)
    return data.astype(data.dtype.newbyteorder("="), copy=False)


def _ome_pixel_size(xml: str | None) -> dict[str, float]:
    """PhysicalSizeX/Y/Z of the first OME ``Pixels`` element, in µm."""
    if not xml:
        return {}
    pixels = ElementTree.fromstring(xml).find(".//{*}Pixels")
    if pixels is None:
        return {}
    sizes = {}
    for axis in _SPATIAL:
        value = pixels.get(f"PhysicalSize{axis}")
        factor = _unit_um(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        if value is not None and factor and float(value) > 0:
            sizes[axis] = float(value) * factor
    return sizes


def _tiff_resolution_pixel_size(page, imagej_unit: str | None) -> dict[str, float]:
    """X/Y pixel size in µm from a TIFF page's resolution tags and the ImageJ unit, if any."""
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return {}
    unit = imagej_unit
    if unit is None:
        unit = _TIFF_RESOLUTION_UNITS.get(int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2)
    x_res, y_res = (_rational(tags[name].value) for name in ("XResolution", "YResolution"))
    if not (x_res > 0 and y_res > 0):
        return {}
    return _resolution_sizes(x_res, y_res, unit)


def _resolution_sizes(x_per_unit: float, y_per_unit: float, unit: str | None) -> dict[str, float]:
    """{"X", "Y"} pixel sizes in µm from pixels per ``unit``; {} if unknown or implausible."""
    factor = _unit_um(unit)
    if not factor:
        return {}
    sizes = {"X": factor / x_per_unit, "Y": factor / y_per_unit}
    paper = _normal_unit(unit) in _PAPER_UNITS
    if paper and max(sizes.values()) > MAX_RESOLUTION_PIXEL_UM:
        return {}
    return sizes


def _rational(value) -> float:
    """A TIFF RATIONAL tag value, ``(numerator, denominator)`` or a number, as a float."""
    if isinstance(value, tuple):
        return value[0] / value[1] if value[1] else 0.0
    return float(value)


def _present(sizes: dict[str, float], axes: str) -> dict[str, float]:
    """The finite, positive pixel sizes of spatial axes present in ``axes``."""
    return {a: v for a, v in sizes.items() if a in axes and math.isfinite(v) and v > 0}


def _label_array(labels: np.ndarray) -> np.ndarray:
    """``labels`` as uint16, or uint32 when ids exceed 65535; never wraps around."""
    if labels.dtype.kind not in "bui":
        raise ValueError(f"labels must be integers (got dtype {labels.dtype}); round or cast them first.")
    if labels.size == 0:
        return labels.astype(np.uint16)
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f"labels contain negative ids (minimum {low}); label ids must be >= 0.")
    if high > np.iinfo(np.uint32).max:
        raise ValueError(f"label id {high} does not fit in uint32; relabel to consecutive ids first.")
    return labels.astype(np.uint16 if high <= np.iinfo(np.uint16).max else np.uint32, copy=False)


def _checked_pixel_size(pixel_size: Mapping[str, float]) -> dict[str, float]:
    """Validated {"X", "Y", "Z"} micrometre sizes; a lone X or Y is used for both."""
    sizes = {str(k).upper(): float(v) for k, v in pixel_size.items() if str(k).upper() in _SPATIAL}
    bad = {k: v for k, v in sizes.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise ValueError(f"pixel sizes must be positive micrometres, got {bad}.")
    if "X" in sizes or "Y" in sizes:
        sizes.setdefault("X", sizes.get("Y"))
        sizes.setdefault("Y", sizes["X"])
    return sizes


def _write_imagej(path: Path, data: np.ndarray, axes: str, sizes: dict[str, float]) -> None:
    """uint16 ImageJ hyperstack; axes in ImageJ order, pixel size as resolution + spacing in µm."""
    import tifffile

    metadata: dict[str, object] = {"axes": axes}
    resolution = None
    if "X" in sizes:
        metadata["unit"] = "um"
        resolution = (1.0 / sizes["X"], 1.0 / sizes["Y"])
        if "Z" in sizes:
            metadata["spacing"] = sizes["Z"]
    tifffile.imwrite(path, data, imagej=True, metadata=metadata, resolution=resolution, compression="zlib")


def _write_ome(path: Path, data: np.ndarray, axes: str, sizes: dict[str, float]) -> None:
    """OME-TIFF (BigTIFF when large); pixel size as OME PhysicalSize* and resolution per cm."""
    import tifffile

    metadata: dict[str, object] = {"axes": axes}
    for axis, size in sizes.items():
        metadata[f"PhysicalSize{axis}"] = size
        metadata[f"PhysicalSize{axis}Unit"] = "µm"
    resolution = (1e4 / sizes["X"], 1e4 / sizes["Y"]) if "X" in sizes else None
    tifffile.imwrite(
        path, data, ome=True, metadata=metadata, resolution=resolution,
        resolutionunit="CENTIMETER" if resolution else None, compression="zlib",
        bigtiff=data.nbytes > CLASSIC_TIFF_BYTES,
    )


def write_table_csv(path: Path, table: dict) -> Path:
    """Write a table of equal-length columns (a header row, then one row per entry) to CSV atomically."""
    import csv

    columns = list(table)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*(table[c].tolist() for c in columns)):
            writer.writerow(row)
    return path

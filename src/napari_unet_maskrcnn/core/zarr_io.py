"""zarr and OME-Zarr images in, label images out, without loading either into memory.

- :func:`open_zarr_image`: a ``.zarr`` folder (a plain zarr array, or an OME-Zarr image:
  the highest resolution of its first multiscale) as a lazy dask array with axes and
  pixel size, in an :class:`~napari_unet_maskrcnn.core.io.ImageData`.
- :func:`zarr_contents`: the images and label images of a zarr folder, opened in place
  (writable) for display and editing.
- :func:`labels_zarr`: creates a label array that the caller fills chunk by chunk inside
  a temporary folder and renames to its final name only when the block succeeds, so a
  failed or cancelled run leaves nothing behind. The result is OME-Zarr (NGFF 0.5 on zarr v3,
  its metadata written by ome-zarr-py): a label image ``<stem>.zarr/0``, or
  ``<stem>.zarr/labels/<name>/0`` when the input was OME-Zarr (the NGFF place of labels beside
  an image), with axes, units and pixel size (the dataset's ``scale`` transformation).

OME-Zarr inputs may be NGFF 0.4 (zarr v2, metadata at the top of the attributes) or 0.5
(zarr v3, under ``ome``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .axes import resolve_axes

_AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def is_zarr_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a zarr folder (``*.zarr``, or a folder with zarr metadata)."""
    path = Path(path)
    if path.suffix.lower() == ".zarr":
        return True
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup"))


def ome_multiscale(group) -> dict | None:
    """The first ``multiscales`` entry of an OME-Zarr group (NGFF 0.4 or 0.5), or None."""
    attrs = dict(group.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    return multiscales[0] if multiscales else None


def is_ome_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an OME-Zarr image (a zarr group with ``multiscales`` metadata)."""
    import zarr

    try:
        node = zarr.open(Path(path), mode="r")
    except Exception:  # not zarr at all
        return False
    return isinstance(node, zarr.Group) and ome_multiscale(node) is not None


def open_zarr_image(path: str | os.PathLike):
    """ImageData (lazy dask ``data``) of a zarr array or OME-Zarr image folder.

    Raises:
        ImageReadError: not a zarr folder, or a group without an image in it.
    """
    import dask.array as da

    from .image_data import ImageData

    image = _contents(Path(path), writable=False)[0]
    return ImageData(da.from_zarr(image.array), image.axes, image.pixel_size, Path(path))


def _highest_resolution(group) -> tuple:
    """``(zarr array, axis letters or None, pixel size in µm)`` of an OME-Zarr group's first multiscale."""
    from .image_data import unit_um as _unit_um

    multiscale = ome_multiscale(group)
    dataset = multiscale["datasets"][0]
    axes_meta = multiscale.get("axes") or []
    names = "".join((a["name"] if isinstance(a, dict) else str(a))[:1].upper() for a in axes_meta)
    scales = [t["scale"] for t in dataset.get("coordinateTransformations", []) if t.get("type") == "scale"]
    pixel_size = {}
    for i, axis in enumerate(axes_meta):
        unit = axis.get("unit") if isinstance(axis, dict) else None
        if scales and names[i] in "ZYX" and _unit_um(unit):
            pixel_size[names[i]] = float(scales[0][i]) * _unit_um(unit)
    return group[dataset["path"]], names or None, pixel_size


@dataclass(frozen=True)
class ZarrContent:
    """One image or label image of a zarr folder, for display (nothing read yet).

    Attributes:
        name: the folder's stem, or ``"<stem> <label name>"`` for OME-Zarr labels.
        array: the zarr array (highest resolution), writable when the folder is.
        axes: letters of TZCYX, one per dimension of ``array``.
        pixel_size: micrometres per pixel along "X", "Y", "Z" (those known).
        labels: True for a label image (OME-Zarr ``image-label``, or under ``labels/``).
    """

    name: str
    array: Any
    axes: str
    pixel_size: dict[str, float]
    labels: bool


def zarr_contents(path: str | os.PathLike) -> list[ZarrContent]:
    """The images of a zarr folder: a plain array, an OME-Zarr image and/or the label images
    under its ``labels/`` (NGFF), or an OME-Zarr label image (the ``out=`` / ``--output-format
    zarr`` results of :func:`labels_zarr`: ``<stem>.zarr/0``, or ``<stem>.zarr/labels/<name>``
    beside an OME-Zarr input). Opened for writing when the folder allows it, so
    label images can be edited in place.

    Raises:
        ImageReadError: not a zarr folder, or a group without an image in it.
    """
    return _contents(Path(path), writable=True)


def _contents(path: Path, writable: bool) -> list[ZarrContent]:
    import zarr

    from .image_data import ImageReadError

    if not path.exists():
        raise ImageReadError(path, "no such folder.", f"Check the path (relative paths start at '{Path.cwd()}').")
    try:
        node = _open(path, writable)
    except Exception as err:
        raise ImageReadError(path, f"is not a zarr folder ({type(err).__name__}: {err}).") from err
    if isinstance(node, zarr.Array):
        declared = node.attrs.get("axes")
        names = declared if isinstance(declared, str) and len(declared) == node.ndim else None
        return [ZarrContent(path.stem, node, resolve_axes(names, node.shape), {}, False)]
    try:
        contents = [_content(node, path.stem, _attr(node, "image-label") is not None)] if ome_multiscale(node) else []
        labels = node.get("labels")
        for name in (_attr(labels, "labels") or []) if isinstance(labels, zarr.Group) else []:
            if isinstance(labels.get(name), zarr.Group) and ome_multiscale(labels[name]) is not None:
                contents.append(_content(labels[name], f"{path.stem} {name}", True))
    except (KeyError, IndexError, TypeError, AttributeError) as err:  # metadata that does not follow NGFF
        raise ImageReadError(path, f"has malformed OME-Zarr metadata ({type(err).__name__}: {err}; e.g. "
                             "'multiscales' without 'datasets', or a dataset path that does not exist).",
                             "Write the image again with an OME-Zarr tool, or give the array inside it "
                             "(e.g. image.zarr/0).") from err
    if not contents:
        raise ImageReadError(path, "is a zarr group without OME-Zarr 'multiscales' metadata or labels.",
                             "Give the path of the array inside it (e.g. image.zarr/0).")
    return contents


def _open(path: Path, writable: bool):
    """The zarr node at ``path``, writable if asked and allowed (read-only otherwise)."""
    import zarr

    if writable:
        try:
            return zarr.open(path, mode="r+")
        except PermissionError:
            pass
    return zarr.open(path, mode="r")


def _content(group, name: str, labels: bool) -> ZarrContent:
    array, names, pixel_size = _highest_resolution(group)
    axes = resolve_axes(names if names and len(names) == array.ndim else None, array.shape)
    return ZarrContent(name, array, axes, {k: v for k, v in pixel_size.items() if k in axes and v > 0}, labels)


def _attr(group, key: str):
    """An OME-Zarr attribute of ``group`` (NGFF 0.4 at the top level, 0.5 under ``ome``), or None."""
    attrs = dict(group.attrs)
    return attrs.get(key, attrs.get("ome", {}).get(key))


@contextmanager
def labels_zarr(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    axes: str,
    *,
    dtype=np.uint32,
    chunks: tuple[int, ...] | None = None,
    pixel_size: dict[str, float] | None = None,
    name: str = "labels",
    beside_image: bool = False,
    overwrite: bool = False,
) -> Iterator:
    """Yield a zarr label array (zeros) to fill; publish it at ``path`` when the block succeeds.

    Args:
        path: the ``.zarr`` folder to create; an existing one is replaced at the end only
            when this project wrote it and ``overwrite`` (:mod:`.output_paths`).
        shape, axes: of the labels, axes in T, Z, Y, X order (NGFF order).
        chunks: chunk shape (default: 1 along T and Z, 1024 x 1024 along Y, X).
        pixel_size: micrometres along "X", "Y", "Z", stored as the NGFF scale.
        name: the label image's name.
        beside_image: write ``labels/<name>/0`` (the input was OME-Zarr) instead of ``0``.
            When ``path`` *is* that OME-Zarr image, only ``path/labels/<name>`` is added
            (in the image's own zarr format) and nothing else of it is touched.
        overwrite: replace an earlier result of this project at the same place.

    The temporary folder is removed if the block raises (including KeyboardInterrupt).

    Raises:
        OutputClash: ``path`` (or ``labels/<name>``) exists and may not be replaced.
    """
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import add_metadata, write_label_metadata, write_multiscales_metadata

    from .output_paths import RESULT_ATTRIBUTE, check_zarr_output, result_marker, zarr_write_target

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write '{path}': the folder '{path.parent}' does not exist.")
    check_zarr_output(path, name=name, beside_image=beside_image, overwrite=overwrite)
    target, inside = zarr_write_target(path, name, beside_image)
    if chunks is None:
        chunks = tuple(min(n, 1024) if a in "YX" else 1 for n, a in zip(shape, axes))
    labels_folder_existed = (path / "labels").exists()
    if inside:  # the image's own format: zarr v2 (NGFF 0.4) or v3 (0.5) may not be mixed in one hierarchy
        fmt = FormatV04() if zarr.open_group(path, mode="r").metadata.zarr_format == 2 else FormatV05()
        tmp = target.with_name(f".{name}.{uuid.uuid4().hex[:12]}.partial")
    else:
        fmt = FormatV05()  # named, not ome-zarr's default: a newer ome-zarr still writes what the reader reads
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.partial.zarr")
    try:
        root = zarr.open_group(tmp, mode="w", zarr_format=fmt.zarr_format)
        group = root.require_group("labels").require_group(name) if beside_image and not inside else root
        array = group.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
        sizes = pixel_size or {}
        scale = [float(sizes.get(a, 1.0)) for a in axes]
        write_multiscales_metadata(
            group,
            [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
            fmt=fmt,
            axes=[_axis(a, a in sizes) for a in axes],
            name=name,
        )
        if beside_image and not inside:
            write_label_metadata(root["labels"], name, fmt=fmt)
        else:
            add_metadata(group, {"image-label": {"version": fmt.version}}, fmt=fmt)
        root.attrs[RESULT_ATTRIBUTE] = result_marker()
        yield array
        check_zarr_output(path, name=name, beside_image=beside_image, overwrite=overwrite)  # still free?
        _replace_folder(tmp, target)
        if inside:
            _list_label(zarr.open_group(path, mode="r+").require_group("labels"), name, fmt)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if inside and not labels_folder_existed and (path / "labels").is_dir() \
                and not any(p for p in (path / "labels").iterdir() if p.is_dir()):
            shutil.rmtree(path / "labels", ignore_errors=True)  # a failed run adds nothing to the image


def _list_label(labels, name: str, fmt) -> None:
    """Add ``name`` to the NGFF ``labels`` list of an image's ``labels`` group (once)."""
    from ome_zarr.writer import add_metadata

    listed = _attr(labels, "labels") or []
    if name not in listed:
        add_metadata(labels, {"labels": [*listed, name]}, fmt=fmt)


def label_array_path(path: str | os.PathLike, beside_image: bool, name: str = "labels") -> str:
    """The array inside a :func:`labels_zarr` folder, as a path (for ``da.from_zarr``)."""
    return str(Path(path) / ("labels/" + name + "/0" if beside_image else "0"))


def _axis(letter: str, calibrated: bool) -> dict:
    axis = {"name": letter.lower(), "type": _AXIS_TYPES[letter]}
    if calibrated and letter in "ZYX":
        axis["unit"] = "micrometer"
    return axis


def _replace_folder(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``; an existing ``path`` is moved aside first, then deleted."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.old{path.suffix}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)

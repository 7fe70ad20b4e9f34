"""Measurements of segmented objects, and of the tissue regions they lie in.

- :func:`measure_instances`: one row per object — size, position, shape and intensity.
- :func:`assign_regions`: the region class (e.g. a U-Net tissue class) of each object.
- :func:`region_summary`: one row per region — cell count, region area, cell density,
  mean cell area and mean intensity.
- :func:`measure_objects`: all three at once, as the API, the CLI and the napari widget run them;
  :func:`iter_measure_objects` is its generator form, time-lapses per time point (``t`` column),
  yielding a :class:`~.progress.ProgressEvent` after each time point (where a caller can stop).

Units: ``spacing`` is the pixel size along each axis of the labels (a napari layer's
scale), taken to be in micrometres. Without it everything is in pixels. Sizes are called
"area" in 2D and 3D alike (in 3D they are volumes: voxel counts, µm³).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .progress import ProgressEvent, ProgressGenerator, drain

AXES = {2: ("y", "x"), 3: ("z", "y", "x")}
COLOUR_NAMES = ("red", "green", "blue", "alpha")
"""Channel names of RGB(A) images in column names."""
MAX_CLASSES = 1024
"""A region map with larger values is taken for instance labels, not classes."""
_INTENSITY_STATS = {
    "mean_intensity": ndimage.mean,
    "min_intensity": ndimage.minimum,
    "max_intensity": ndimage.maximum,
    "std_intensity": ndimage.standard_deviation,
    "integrated_intensity": ndimage.sum_labels,
}
_SHAPE_2D = ("perimeter", "eccentricity", "solidity", "axis_major_length", "axis_minor_length")
_SHAPE_3D = ("axis_major_length", "axis_minor_length", "extent")
_LENGTHS = ("axis_major_length", "axis_minor_length")
_MICRONS_PER_MM = 1e3


def measure_instances(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    spacing: Sequence[float] | None = None,
    channel_axis: int | None = None,
    channel_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """One row per object of ``labels``: size, position, shape and intensity.

    Args:
        labels: non-negative integer (Y, X) or (Z, Y, X), 0 = background.
        image: intensities of the same spatial shape, optionally with a channel axis
            (e.g. RGB (Y, X, 3)); any numeric dtype.
        spacing: pixel size per axis of ``labels`` (µm); adds the ``*_calibrated`` columns.
        channel_axis: the channel axis of ``image`` (None: one channel).
        channel_names: names of the channels in column names (default ``ch0``, ``ch1``...).

    Returns:
        Columns of equal length, rows in increasing label order (none for empty labels):

        - ``label``; ``area`` (pixels, voxels in 3D) and ``area_calibrated`` (µm², µm³);
        - ``centroid_<axis>`` (pixels) and ``bbox_<axis>0`` / ``bbox_<axis>1`` (first
          pixel, one past the last), axes ``z, y, x``;
        - 2D shape: ``perimeter`` (scikit-image's estimate through the boundary pixels'
          centres: 36 for a 10 x 10 square), ``circularity`` = 4π area / perimeter²
          (NaN for objects without a perimeter), ``eccentricity``, ``solidity``;
        - ``axis_major_length``, ``axis_minor_length`` (pixels; of the ellipse, or
          ellipsoid in 3D, with the same second moments); 3D: ``extent`` (volume / bounding box);
        - with ``spacing``: ``axis_major_length_calibrated``, ``axis_minor_length_calibrated``
          (µm, anisotropic spacing included) and, in 2D with square pixels,
          ``perimeter_calibrated``;
        - with ``image``, per channel: ``mean_intensity``, ``min_intensity``,
          ``max_intensity``, ``std_intensity`` (population) and ``integrated_intensity``
          (sum over the object's pixels), suffixed ``_<channel name>`` when the image has
          several channels.

    Raises:
        ValueError: labels not 2D/3D or negative, or ``image`` / ``spacing`` not fitting them.
    """
    from skimage.measure import regionprops_table

    labels = _checked_labels(labels)
    axes = AXES[labels.ndim]
    spacing = _checked_spacing(spacing, labels.ndim)
    shape = _SHAPE_2D if labels.ndim == 2 else _SHAPE_3D
    props = regionprops_table(labels, properties=("label", "area", "centroid", "bbox", *shape))
    table = {"label": props["label"].astype(np.int64), "area": props["area"].astype(np.int64)}
    if spacing is not None:
        table["area_calibrated"] = table["area"] * float(np.prod(spacing))
    table.update({f"centroid_{name}": props[f"centroid-{i}"] for i, name in enumerate(axes)})
    table.update({f"bbox_{name}0": props[f"bbox-{i}"] for i, name in enumerate(axes)})
    table.update({f"bbox_{name}1": props[f"bbox-{i + labels.ndim}"] for i, name in enumerate(axes)})
    if labels.ndim == 2:
        perimeter = props["perimeter"]
        with np.errstate(divide="ignore", invalid="ignore"):
            circularity = np.where(perimeter > 0, 4 * np.pi * table["area"] / perimeter**2, np.nan)
        table.update(perimeter=perimeter, circularity=circularity)
    table.update({name: props[name] for name in shape if name != "perimeter"})
    if spacing is not None:
        table.update(_calibrated_lengths(labels, spacing))
    if image is not None:
        table.update(_intensities(labels, table["label"], image, channel_axis, channel_names))
    return table


def assign_regions(
    labels: np.ndarray, region_classes: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The region class of each object: the class of the majority of its pixels.

    Args:
        labels: non-negative integer objects, 0 = background (any ndim).
        region_classes: class map of the same shape (e.g. U-Net output), values
            0..MAX_CLASSES-1; 0 is the background/outside class.
        class_names: ``class_names[k]`` names class k (default "background" for 0,
            "class k" otherwise).

    Returns:
        Columns ``label`` (increasing, as in :func:`measure_instances`), ``region_id``
        (int64; ties go to the lower class) and ``region`` (name).
    """
    labels = np.asarray(labels)
    region_classes = _checked_classes(region_classes, labels.shape)
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids.size and ids[0] < 0:
        raise ValueError(f"labels must be >= 0; found {int(ids[0])}.")
    n_classes = int(region_classes.max(initial=0)) + 1
    pairs = inverse.ravel().astype(np.int64) * n_classes + region_classes.ravel()
    votes = np.bincount(pairs, minlength=ids.size * n_classes).reshape(ids.size, n_classes)
    objects = ids != 0
    region_id = votes[objects].argmax(axis=1).astype(np.int64)
    return {
        "label": ids[objects].astype(np.int64),
        "region_id": region_id,
        "region": np.asarray([class_name(k, class_names) for k in region_id], dtype=str),
    }


def region_summary(
    table: dict[str, np.ndarray],
    region_classes: np.ndarray,
    spacing: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, list]:
    """One row per region class and, when there are several, a last row "all" for the whole image.

    Args:
        table: per-object columns with at least ``area`` (pixels) and ``region_id`` (from
            :func:`measure_instances` and :func:`assign_regions`); ``mean_intensity*``
            columns are averaged.
        region_classes: the class map the regions were assigned from, (Y, X) or (Z, Y, X).
        spacing: pixel size per axis (µm), or None for pixel units.
        class_names: as in :func:`assign_regions`.

    Returns:
        Columns, named with their units (``u`` = ``um2`` / ``px`` in 2D, ``um3`` / ``voxels`` in 3D):
        ``region_id`` (None in the "all" row), ``region``, ``cells``, ``region_area_<u>``,
        ``density_<d>`` (cells per mm² / mm³ when calibrated, per pixel / voxel otherwise),
        ``mean_cell_area_<u>`` and the cells' average of each ``mean_intensity*`` column
        (NaN for a region without cells). Rows: every class in ``region_classes`` or in
        ``table["region_id"]``, increasing.
    """
    if "region_id" not in table or "area" not in table:
        raise ValueError("the table needs 'area' and 'region_id' columns: "
                         "run measure_instances and assign_regions first.")
    region_classes = _checked_classes(region_classes, None)
    spacing = _checked_spacing(spacing, region_classes.ndim)
    area_unit, density_unit, per_unit = _units(region_classes.ndim, spacing is not None)
    pixel = float(np.prod(spacing)) if spacing is not None else 1.0
    region_ids = np.asarray(table["region_id"], dtype=np.int64)
    pixels = np.bincount(region_classes.ravel(), minlength=int(region_ids.max(initial=0)) + 1)
    intensity_columns = [name for name in table if name.startswith("mean_intensity")]
    present = [k for k in range(pixels.size) if pixels[k] > 0 or np.any(region_ids == k)]
    rows = {k: region_ids == k for k in present}
    areas = {k: pixels[k] * pixel for k in present}
    if len(present) > 1:
        rows[None] = np.ones(region_ids.shape, dtype=bool)
        areas[None] = region_classes.size * pixel
    summary = {
        "region_id": list(rows),
        "region": [class_name(k, class_names) if k is not None else "all" for k in rows],
        "cells": [int(np.count_nonzero(chosen)) for chosen in rows.values()],
        f"region_area_{area_unit}": [float(areas[k]) for k in rows],
    }
    summary[f"density_{density_unit}"] = [
        float(cells / (areas[k] * per_unit)) if areas[k] > 0 else float("nan")
        for k, cells in zip(rows, summary["cells"])
    ]
    summary[f"mean_cell_area_{area_unit}"] = [
        _mean(np.asarray(table["area"])[chosen]) * pixel for chosen in rows.values()
    ]
    for name in intensity_columns:
        summary[name] = [_mean(np.asarray(table[name])[chosen]) for chosen in rows.values()]
    return summary


def measure_objects(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    spacing: Sequence[float] | None = None,
    regions: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    channel_axis: int | None = None,
    channel_names: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Per-object measurements and their summary per region class (e.g. per tissue class).

    Args:
        labels, image, spacing, channel_axis, channel_names: as in :func:`measure_instances`.
        regions: optional class map of the same shape as ``labels`` (e.g. U-Net classes);
            each object gets the class of most of its pixels.
        class_names: names of the region classes (as in :func:`assign_regions`).

    Returns:
        ``(objects, summary)``: ``objects`` are :func:`measure_instances`' columns plus, with
        ``regions``, ``region_id`` and ``region``; ``summary`` is :func:`region_summary` per
        region class and "all", or without ``regions`` one row "all" (no ``region_id`` column).
    """
    options = dict(image=image, spacing=spacing, regions=regions, class_names=class_names,
                   channel_axis=channel_axis, channel_names=channel_names)
    return drain(iter_measure_objects(labels, **options))


def iter_measure_objects(labels: np.ndarray, *, time_lapse: bool = False, **options) -> ProgressGenerator[
        tuple[dict[str, np.ndarray], dict[str, list]]]:
    """:func:`measure_objects` as a progress generator, for single images or time-lapses.

    Args:
        labels: as in :func:`measure_objects`, with a leading time axis when ``time_lapse``.
        time_lapse: the first axis of ``labels``, ``regions`` and ``image`` is time (TYX or
            TZYX labels): each time point is measured on its own (ids are not linked across
            time) and both tables start with a ``t`` column; ``spacing`` and ``channel_axis``
            then leave the time axis out.
        options: :func:`measure_objects`' other arguments, by keyword (``image``,
            ``spacing``, ``regions``, ``class_names``, ``channel_axis``, ``channel_names``).

    Yields ``ProgressEvent(done, time points, "time point")`` after each time point (one
    event for a single image); returns ``(objects, summary)`` as :func:`measure_objects`.
    """
    if not time_lapse:
        result = _measure_one(labels, **options)
        yield ProgressEvent(1, 1, "image")
        return result
    image, regions, channel_axis = (options.pop(key, None) for key in ("image", "regions", "channel_axis"))
    if regions is not None and np.shape(regions) != np.shape(labels):
        _checked_classes(regions, np.shape(labels))  # raises, naming both shapes
    objects, summaries = [], []
    for t in range(labels.shape[0]):
        table, summary = _measure_one(
            labels[t], image=None if image is None else image[t], regions=None if regions is None else regions[t],
            channel_axis=None if channel_axis is None else channel_axis - 1, **options)
        objects.append({"t": np.full(len(table["label"]), t), **table})
        summaries.append({"t": np.full(len(next(iter(summary.values()))), t), **summary})
        yield ProgressEvent(t + 1, labels.shape[0], "time point")
    if not objects:
        raise ValueError(f"the labels have shape {labels.shape}: no time point to measure.")
    return _concatenated(objects), _concatenated(summaries)


def _concatenated(tables: list[dict]) -> dict:
    """The columns of same-keyed tables (one per time point), one table after the other."""
    return {key: np.concatenate([np.asarray(table[key]) for table in tables]) for key in tables[0]}


def _measure_one(labels, image=None, spacing=None, regions=None, class_names=None, channel_axis=None,
                 channel_names=None) -> tuple[dict, dict]:
    """:func:`measure_objects` of one image (no time axis); the arguments as there."""
    table = measure_instances(labels, image, spacing, channel_axis, channel_names)
    if regions is None:
        whole = np.zeros(np.shape(labels), np.uint8)
        region_id = np.zeros(len(table["label"]), np.int64)
        summary = region_summary({**table, "region_id": region_id}, whole, spacing, ["all"])
        summary.pop("region_id")
        return table, summary
    assigned = assign_regions(labels, regions, class_names)
    table.update(region_id=assigned["region_id"], region=assigned["region"])
    return table, region_summary(table, regions, spacing, class_names)


def class_name(value: int, class_names: Sequence[str] | None = None) -> str:
    """Name of class ``value``: ``class_names[value]``, else "background" (0) or "class <value>"."""
    if class_names is not None and 0 <= value < len(class_names):
        return str(class_names[value])
    return "background" if value == 0 else f"class {value}"


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else float("nan")


def _units(ndim: int, calibrated: bool) -> tuple[str, str, float]:
    """(area unit, density unit, mm² or mm³ per area unit) for column names and densities."""
    if not calibrated:
        return ("px", "per_px", 1.0) if ndim == 2 else ("voxels", "per_voxel", 1.0)
    if ndim == 2:
        return "um2", "per_mm2", _MICRONS_PER_MM**-2
    return "um3", "per_mm3", _MICRONS_PER_MM**-3


def _checked_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in AXES:
        raise ValueError(f"labels must be 2D (Y, X) or 3D (Z, Y, X), got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise ValueError(f"labels must be integers, got {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0; found {int(labels.min())}.")
    return labels.astype(np.int64, copy=False)


def _checked_classes(region_classes: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    region_classes = np.asarray(region_classes)
    if shape is not None and region_classes.shape != tuple(shape):
        raise ValueError(f"the region map has shape {region_classes.shape} but the objects "
                         f"{tuple(shape)}: choose layers of the same image.")
    if not np.issubdtype(region_classes.dtype, np.integer):
        raise ValueError(f"the region map must hold integer classes, got {region_classes.dtype}.")
    lowest, highest = int(region_classes.min(initial=0)), int(region_classes.max(initial=0))
    if lowest < 0 or highest >= MAX_CLASSES:
        raise ValueError(f"the region map has values {lowest}..{highest}: expected classes "
                         f"0..{MAX_CLASSES - 1} (e.g. a U-Net output), not instance labels.")
    return region_classes.astype(np.int64, copy=False)


def _checked_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing needs {ndim} positive pixel sizes, got {spacing}.")
    return spacing


def _calibrated_lengths(labels: np.ndarray, spacing: tuple[float, ...]) -> dict[str, np.ndarray]:
    """``*_calibrated`` lengths (µm): axis lengths, and the 2D perimeter when pixels are square."""
    from skimage.measure import regionprops_table

    lengths = list(_LENGTHS)
    if labels.ndim == 2 and spacing[0] == spacing[1]:
        lengths.append("perimeter")
    props = regionprops_table(labels, properties=lengths, spacing=spacing)
    return {f"{name}_calibrated": props[name] for name in lengths}


def _intensities(
    labels: np.ndarray,
    ids: np.ndarray,
    image: np.ndarray,
    channel_axis: int | None,
    channel_names: Sequence[str] | None,
) -> dict[str, np.ndarray]:
    """Intensity statistics of each object (rows ``ids``) in each channel of ``image``."""
    image = np.asarray(image)
    if channel_axis is None:
        image = image[..., np.newaxis]
    else:
        image = np.moveaxis(image, channel_axis, -1)
    if image.shape[:-1] != labels.shape:
        raise ValueError(f"the image's pixels {image.shape[:-1]} do not match the labels' "
                         f"{labels.shape}: choose an image of the same size.")
    count = image.shape[-1]
    names = list(channel_names) if channel_names is not None else [f"ch{c}" for c in range(count)]
    if len(names) != count:
        raise ValueError(f"{len(names)} channel names for {count} channels.")
    columns = {}
    for channel, name in enumerate(names):
        values = image[..., channel].astype(np.float64, copy=False)
        suffix = f"_{name}" if count > 1 else ""
        for stat, function in _INTENSITY_STATS.items():
            with np.errstate(invalid="ignore", divide="ignore"):  # scipy divides by 0 for absent ids
                result = function(values, labels, ids) if ids.size else []
            columns[f"{stat}{suffix}"] = np.asarray(result, dtype=np.float64).reshape(-1)
    return columns

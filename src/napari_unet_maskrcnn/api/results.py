"""Result types of the Python API and the object-size summary they carry."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.object_size import ObjectSize


@dataclass
class SemanticResult:
    """U-Net output.

    Attributes:
        classes: uint8, the input's shape without its channel axis; value k = class_names[k].
        class_names: names of the classes, index 0 first.
        probabilities: float32 (K, *classes.shape) per-class probabilities, or None.
        axes: axes of ``classes`` (the input axes without C).
        instances: uint32 labels split from the object class by seeded watershed (one id per
            object, unique over the stack), when asked for with ``split_instances``.
        diameter, scale, object_size: how the planes were rescaled (see :func:`object_size_report`).
    """

    classes: np.ndarray
    class_names: list[str]
    probabilities: np.ndarray | None
    axes: str
    instances: np.ndarray | None = None
    diameter: float | None = None
    scale: float = 1.0
    object_size: dict = field(default_factory=dict)


@dataclass
class InstanceResult:
    """Mask R-CNN output.

    Attributes:
        labels: uint32, the input's shape without its channel axis; 0 = background, ids
            unique over the whole stack (linked across z).
        table: per-instance columns (label, class_id, class_name, score, area, bbox_*,
            centroid_*; ``t`` for time series), as numpy arrays of equal length.
        class_names: the model's object classes (class_id 1 first).
        axes: axes of ``labels``.
        diameter, scale, object_size: how the planes were rescaled (see :func:`object_size_report`).
    """

    labels: np.ndarray
    table: dict[str, np.ndarray]
    class_names: list[str]
    axes: str
    diameter: float | None = None
    scale: float = 1.0
    object_size: dict = field(default_factory=dict)


@dataclass
class Measurements:
    """Output of :func:`measure_objects`.

    Attributes:
        objects: one row per object (columns of equal length): label, area, centroid_*,
            bbox_*, shape and intensity columns, and ``region_id`` / ``region`` with regions
            (see :func:`napari_unet_maskrcnn.core.measure.measure_instances`).
        summary: one row per region class and "all": region, cells, region_area_<unit>,
            density_<unit>, mean_cell_area_<unit>, mean intensities (lists of equal length).
    """

    objects: dict[str, np.ndarray]
    summary: dict[str, list]


def object_size_report(sizes: list[ObjectSize]) -> tuple[float | None, float, dict]:
    """``(diameter, scale, metadata)`` of a run from its planes' :class:`ObjectSize`.

    ``diameter``: the objects' diameter in the image's pixels (the median of the planes'
    estimates, or the given value; None when not estimated); ``scale``: the planes' resize
    factor (their median when they differ); ``metadata``: mode, diameter, scale, the model's
    diameter, ``note`` (why an automatic estimate was not followed, None when it was) and,
    for stacks, every plane's values.
    """
    diameters = [size.diameter for size in sizes if size.diameter is not None]
    diameter = float(np.median(diameters)) if diameters else None
    scale = float(np.median([size.scale for size in sizes]))
    notes = [size.note for size in sizes if size.note]
    note = None if not notes else notes[0] if len(sizes) == 1 else f"{len(notes)} of {len(sizes)} planes: {notes[0]}"
    metadata = {**sizes[0].as_dict(), "diameter": diameter, "scale": scale, "note": note}
    if len(sizes) > 1:
        metadata["planes"] = [size.as_dict() for size in sizes]
    return diameter, scale, metadata


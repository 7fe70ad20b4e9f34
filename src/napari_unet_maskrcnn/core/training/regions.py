"""Training pairs from annotated images and stacks, and the regions the user annotated.

The GUI trains on what the user painted or corrected, which is rarely the whole image. A
pair's ``region`` (see :mod:`.data`) says where the labels are to be believed; there are
three ways to set it (:func:`plane_pairs`):

- ``"objects"`` (the default for instance labels): the labelled objects grown by
  ``margin`` pixels, i.e. every pixel within ``margin`` of a labelled object. Unlike the
  objects' bounding box, this never takes in the unannotated cells between objects
  corrected far apart; the ring around each object teaches the background next to it.
  Background far from every object is not learned: mark it with ``"polygons"`` or choose
  ``"image"`` when everything is annotated.
- ``"polygons"``: rectangles / polygons the user drew over the annotated areas.
- ``"image"``: the whole plane (fully annotated images; class strokes, whose 0 is
  "unlabelled" anyway).

Stacks (any of T and Z, with optional channels) train slice by slice, one 2D pair per
plane. A plane without any label (and, with polygons, without a polygon) counts as not
annotated and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..axes import output_axes, to_canonical, validate_axes
from ..settings import ANNOTATION_MARGIN  # pixels around each labelled object that count as annotated
from .data import CLASS_MAP_KINDS, LABEL_KINDS, TrainingPair

REGION_KINDS = ("objects", "polygons", "image")
MAX_CLASSES = 32
"""Class strokes with more classes than this are taken for instance labels."""

Plane = tuple[int, int]
"""(t, z) index of a plane of a stack (0, 0 for a 2D image)."""
Polygon = tuple[Plane | None, np.ndarray]
"""A plane (None = every plane) and the (N, 2) row, column vertices of a polygon on it."""


def objects_region(labels: np.ndarray, margin: int = ANNOTATION_MARGIN) -> np.ndarray:
    """Bool (H, W): pixels within ``margin`` pixels (Euclidean) of a labelled pixel."""
    from scipy import ndimage

    labelled = np.asarray(labels) > 0
    if margin <= 0 or not labelled.any():
        return labelled
    return ndimage.distance_transform_edt(~labelled) <= margin


def polygons_region(shape: tuple[int, int], polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Bool ``shape``: the union of polygons given as (N, 2) row, column vertices (pixel units).

    A pixel is inside when its centre is; rectangles are 4-vertex polygons.
    """
    from skimage.draw import polygon2mask

    region = np.zeros(shape, bool)
    for vertices in polygons:
        vertices = np.asarray(vertices, float).reshape(-1, 2)
        if len(vertices) >= 3:
            region |= polygon2mask(shape, vertices)
    return region


def check_label_kind(labels: np.ndarray, label_kind: str, name: str) -> None:
    """Refuse labels that clearly are of the other kind than ``label_kind`` says.

    Class strokes use a few values (1..K); instance labels give each object its own value,
    in one piece.

    Raises:
        ValueError: more than :data:`MAX_CLASSES` classes for class maps; for
            ``"instances"``, a few values each painted as several separate strokes.
    """
    from skimage.measure import label as connected

    if label_kind not in LABEL_KINDS:
        raise ValueError(f"label_kind must be one of {', '.join(LABEL_KINDS)}, got {label_kind!r}.")
    values = np.unique(labels)
    values = values[values > 0]
    if label_kind in CLASS_MAP_KINDS and len(values) and values[-1] > MAX_CLASSES:
        raise ValueError(
            f"'{name}' uses label values up to {values[-1]}: class strokes use one value per class "
            f"(1..{MAX_CLASSES} at most). These look like instance labels (one value per object): "
            "choose 'labels are: instances'."
        )
    if label_kind == "instances" and 0 < len(values) <= MAX_CLASSES:
        pieces = int(connected(np.asarray(labels), background=0, connectivity=1).max())
        if pieces > 2 * len(values):
            raise ValueError(
                f"'{name}' has {len(values)} label value(s) painted as {pieces} separate pieces: "
                "instance labels give every object its own value. These look like class strokes: "
                "choose 'labels are: class strokes' (U-Net)."
            )


def plane_pairs(
    image: np.ndarray,
    labels: np.ndarray,
    axes: str,
    *,
    name: str,
    label_kind: str = "instances",
    planes: Sequence[Plane] | None = None,
    region: str = "objects",
    margin: int = ANNOTATION_MARGIN,
    polygons: Sequence[Polygon] = (),
    pixel_size_um: float | None = None,
) -> list[TrainingPair]:
    """One :class:`~.data.TrainingPair` per annotated plane of an image and its labels.

    Args:
        image: array with ``axes`` (letters of TZCYX, e.g. ``YX``, ``YXC``, ``ZYX``, ``TZCYX``).
        labels: integer array of the image's shape without the ``C`` axis.
        axes: the image's axes.
        name: names the pairs (``"<name>"`` for a 2D image, ``"<name> z3"`` / ``"t1 z3"`` for planes).
        label_kind: ``"instances"``, ``"classes"`` or ``"painted"``; labels of the other kind are refused
            (:func:`check_label_kind`).
        planes: the (t, z) planes to use, None for all.
        region: ``"objects"``, ``"polygons"`` or ``"image"`` (see the module docstring).
        margin: ``"objects"`` regions: pixels around each object.
        polygons: ``"polygons"`` regions: the annotated areas, see :data:`Polygon`.
        pixel_size_um: X pixel size of the image, when known.

    Raises:
        ValueError: a shape mismatch, an unknown region kind, labels of the wrong kind, or
            no annotated plane (each message names the labels and says what to do).
    """
    if region not in REGION_KINDS:
        raise ValueError(f"region must be one of {', '.join(REGION_KINDS)}, got {region!r}.")
    axes = validate_axes(axes, np.shape(image))
    image_view = to_canonical(image, axes)  # (T, Z, Y, X, C), a view: planes are read one by one
    label_axes = output_axes(axes)
    pixels = tuple(size for size, axis in zip(np.shape(image), axes) if axis != "C")
    if np.shape(labels) != pixels:
        raise ValueError(
            f"The labels of '{name}' have shape {np.shape(labels)} but the image's pixels ({label_axes}) "
            f"have shape {pixels}: choose labels drawn on this image."
        )
    label_view = to_canonical(labels, label_axes)[..., 0]  # (T, Z, Y, X)
    chosen = planes if planes is not None else list(np.ndindex(*label_view.shape[:2]))
    stack = label_view.shape[0] * label_view.shape[1] > 1
    pairs = []
    for t, z in chosen:
        plane_labels = np.array(label_view[t, z])  # a copy: later painting does not reach the run
        mask = _plane_region(plane_labels, (t, z), region, margin, polygons)
        if mask is not None and not mask.any():
            continue
        if region != "polygons" and not plane_labels.any():
            continue
        check_label_kind(plane_labels, label_kind, name)
        plane_image = np.asarray(image_view[t, z])
        pairs.append(TrainingPair(
            plane_image[..., 0] if plane_image.shape[-1] == 1 else plane_image,
            plane_labels,
            _plane_name(name, (t, z), label_axes) if stack else name,
            pixel_size_um,
            mask,
        ))
    if not pairs:
        where = "the chosen slice" if planes is not None and stack else "any plane"
        need = "no region drawn on it" if region == "polygons" else "no labelled pixel"
        raise ValueError(
            f"'{name}' has {need} in {where}: paint or correct some labels there first"
            + (", and draw the annotated area in the shapes layer." if region == "polygons" else ".")
        )
    return pairs


def _plane_region(labels: np.ndarray, plane: Plane, region: str, margin: int,
                  polygons: Sequence[Polygon]) -> np.ndarray | None:
    if region == "image":
        return None
    if region == "objects":
        return objects_region(labels, margin)
    return polygons_region(labels.shape, [vertices for where, vertices in polygons if where in (None, plane)])


def _plane_name(name: str, plane: Plane, label_axes: str) -> str:
    parts = [f"{axis.lower()}{index}" for axis, index in zip("TZ", plane) if axis in label_axes]
    return f"{name} {' '.join(parts)}"

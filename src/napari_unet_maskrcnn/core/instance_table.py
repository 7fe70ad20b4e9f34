"""The per-object table of an instance segmentation: class, score, size, bounding box, centroid.

Every Mask R-CNN run (in memory, into zarr, on a cluster) keeps its objects as
:class:`PlaneObject` s, box-sized masks, and :func:`object_table` measures them, so the
table never needs a whole label image. :func:`instance_table` gives the same columns for
any label image (its objects are cut out slice by slice first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AXES = {2: ("y", "x"), 3: ("z", "y", "x")}


@dataclass
class PlaneObject:
    """One object of plane ``(t, z)``: a bool mask (h, w) whose top-left pixel is ``(y0, x0)`` of the plane."""

    t: int
    z: int
    y0: int
    x0: int
    mask: np.ndarray
    score: float
    class_id: int


def objects_from_labels(labels: np.ndarray, scores: Sequence[float], classes: Sequence[int], t: int = 0, z: int = 0,
                        min_size: int = 1) -> list[PlaneObject]:
    """The objects of a label plane (H, W) with ids ``1..n`` (``scores[i - 1]``, ``classes[i - 1]``).

    In id order; ids absent, above ``len(scores)`` or with fewer than ``min_size`` pixels are skipped.
    """
    from scipy import ndimage

    objects = []
    for index, found in enumerate(ndimage.find_objects(np.asarray(labels), max_label=len(scores))):
        if found is None:
            continue
        mask = labels[found] == index + 1
        if mask.sum() >= max(int(min_size), 1):
            objects.append(PlaneObject(t, z, found[0].start, found[1].start, mask, float(scores[index]),
                                       int(classes[index])))
    return objects


def object_table(
    objects: Sequence[PlaneObject],
    ids: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    class_names: Sequence[str],
    n_z: int,
    spacing: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """One row per id ``1..n``, measured from the objects' masks.

    Args:
        objects: the pieces of every object (one per z-slice it spans).
        ids: int (len(objects),) the id ``1..n`` each piece belongs to.
        scores: (n,) ``scores[i]`` is the score of id ``i + 1``.
        classes: (n,) 1-based class of id ``i + 1``.
        class_names: object class names, class 1 first (background excluded).
        n_z: z-slices of the result: with more than one, the table has z columns.
        spacing: pixel size per axis ((z,) y, x, e.g. micrometres): adds ``area_calibrated`` =
            pixel count x product of spacing.

    Returns:
        Columns of equal length n: ``label``, ``class_id``, ``class_name``, ``score``, ``area``
        (pixel/voxel count), [``area_calibrated``], ``bbox_<axis>0`` (first pixel) and
        ``bbox_<axis>1`` (one past the last) for each axis, ``centroid_<axis>`` (pixels).
    """
    count = len(scores)
    dims = AXES[3] if n_z > 1 else AXES[2]
    area = np.zeros(count + 1, np.int64)
    sums = np.zeros((3, count + 1))
    low = np.full((3, count + 1), np.iinfo(np.int64).max)
    high = np.zeros((3, count + 1), np.int64)
    for obj, label in zip(objects, ids):
        ys, xs = np.nonzero(obj.mask)
        if ys.size == 0:
            continue
        area[label] += ys.size
        for axis, (values, offset) in enumerate(((None, obj.z), (ys, obj.y0), (xs, obj.x0))):
            if values is None:
                sums[axis, label] += offset * ys.size
                low[axis, label] = min(low[axis, label], offset)
                high[axis, label] = max(high[axis, label], offset + 1)
            else:
                sums[axis, label] += values.sum() + offset * values.size
                low[axis, label] = min(low[axis, label], values.min() + offset)
                high[axis, label] = max(high[axis, label], values.max() + offset + 1)
    classes = np.asarray(classes).astype(np.int32)
    table = {"label": np.arange(1, count + 1, dtype=np.int32), "class_id": classes,
             "class_name": np.asarray(_class_names(classes, class_names), dtype=str),
             "score": np.asarray(scores).astype(np.float32), "area": area[1:]}
    if spacing is not None:
        table["area_calibrated"] = area[1:] * float(np.prod(spacing))
    offset = 3 - len(dims)
    table.update({f"bbox_{d}0": low[offset + i, 1:] for i, d in enumerate(dims)})
    table.update({f"bbox_{d}1": high[offset + i, 1:] for i, d in enumerate(dims)})
    table.update({f"centroid_{d}": sums[offset + i, 1:] / np.maximum(area[1:], 1) for i, d in enumerate(dims)})
    return table


def instance_table(
    labels: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    class_names: Sequence[str],
    spacing: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`object_table` of a label image: one row per object present in ``labels``.

    Args:
        labels: int (Y, X) or (Z, Y, X), 0 = background, object ids ``1..n``.
        scores, classes, class_names: as in :func:`object_table`.
        spacing: pixel size per axis, in the order of ``labels``' axes.

    Returns:
        :func:`object_table`'s columns, rows of the ids absent from ``labels`` left out.
    """
    labels = np.asarray(labels)
    if labels.ndim not in AXES:
        raise ValueError(f"labels must be 2D (Y, X) or 3D (Z, Y, X), got shape {labels.shape}.")
    count = int(labels.max(initial=0))
    scores, classes = np.asarray(scores), np.asarray(classes)
    if count > min(len(scores), len(classes)):
        raise ValueError(f"labels go up to {count} but only {len(scores)} scores / {len(classes)} classes were given.")
    if spacing is not None and len(spacing) != labels.ndim:
        raise ValueError(f"spacing needs {labels.ndim} values ({', '.join(AXES[labels.ndim])}), got {tuple(spacing)}.")
    stack = labels if labels.ndim == 3 else labels[np.newaxis]
    objects = [piece for z, plane in enumerate(stack)
               for piece in objects_from_labels(plane, scores[:count], classes[:count], z=z)]
    ids = np.asarray([_id_of(piece, stack) for piece in objects], np.int64)
    present = np.zeros(count + 1, bool)
    present[ids] = True
    table = object_table(objects, ids, scores[:count], classes[:count], class_names, len(stack) if labels.ndim == 3
                         else 1, spacing)
    return {key: column[present[1:]] for key, column in table.items()}


def _id_of(piece: PlaneObject, stack: np.ndarray) -> int:
    plane = stack[piece.z, piece.y0 : piece.y0 + piece.mask.shape[0], piece.x0 : piece.x0 + piece.mask.shape[1]]
    return int(plane[piece.mask][0])


def _class_names(class_id: np.ndarray, class_names: Sequence[str]) -> list[str]:
    bad = class_id[(class_id < 1) | (class_id > len(class_names))]
    if bad.size:
        raise ValueError(f"class id {int(bad[0])} has no name: class_names has {len(class_names)} entries.")
    return [class_names[c - 1] for c in class_id]

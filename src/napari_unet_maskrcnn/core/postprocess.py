"""Instances from a U-Net's background / object / boundary classes (seeded watershed), and back.

The object class without its boundary ring separates touching cells; each connected piece of
it seeds a watershed that grows back over the boundary pixels, so every foreground pixel
(object or boundary) ends up in exactly one instance. :func:`instances_to_classes` is the
reverse, the rule that makes the U-Net's training targets from instance labels.
"""

from __future__ import annotations

import numpy as np


def instances_from_classes(
    classes: np.ndarray,
    probabilities: np.ndarray | None = None,
    *,
    object_class: int = 1,
    boundary_class: int = 2,
    min_size: int = 10,
) -> np.ndarray:
    """Label image from a 2D class map of a 3-class U-Net.

    Args:
        classes: integer (H, W) class map (0 background, ``object_class``, ``boundary_class``).
        probabilities: optional float (K, H, W); when given the watershed follows the object
            probability (sharper splits than the flat class map).
        min_size: seeds and final objects smaller than this many pixels are dropped.
    Returns:
        int32 (H, W) instance labels 1..n, 0 = background.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential, watershed

    if classes.ndim != 2:
        raise ValueError(f"instances_from_classes takes one 2D plane, got shape {classes.shape}")
    core = classes == object_class
    foreground = core | (classes == boundary_class)
    seeds, n_seeds = ndi.label(core)
    if n_seeds == 0:
        return np.zeros(classes.shape, np.int32)
    sizes = np.bincount(seeds.ravel())
    small = sizes < max(1, min_size // 4)
    small[0] = False
    seeds[small[seeds]] = 0
    if probabilities is not None:
        elevation = -probabilities[object_class]
    else:
        elevation = -ndi.distance_transform_edt(foreground)
    labels = watershed(elevation, markers=seeds, mask=foreground)
    too_small = np.bincount(labels.ravel()) < min_size
    too_small[0] = False
    labels[too_small[labels]] = 0
    return relabel_sequential(labels)[0].astype(np.int32)


def instances_from_class_stack(
    classes: np.ndarray, probabilities: np.ndarray | None = None, *, z_link_iou: float = 0.0, **kw
) -> np.ndarray:
    """Apply :func:`instances_from_classes` to every 2D plane of (..., H, W); ids unique over the stack.

    ``probabilities`` is (K, ..., H, W) when given. With ``z_link_iou`` in (0, 1], the planes
    along the third-last axis (Z of (T, Z, H, W)) are linked as Mask R-CNN's are
    (:func:`~.linking.link_slices`): an object overlapping one in the previous z-slice with
    at least that IoU keeps its id. Returns uint32 of ``classes.shape``.
    """
    from .instances import PlaneInstances
    from .linking import link_slices

    flat_classes = classes.reshape(-1, *classes.shape[-2:])
    flat_probs = None if probabilities is None else probabilities.reshape(
        probabilities.shape[0], -1, *classes.shape[-2:])
    linking = classes.ndim >= 3 and 0 < z_link_iou <= 1
    depth = classes.shape[-3] if linking else 1
    out = np.zeros(classes.shape, np.uint32)
    flat_out = out.reshape(-1, depth, *classes.shape[-2:])
    next_id = 0
    for group, group_out in enumerate(flat_out):
        pieces = []
        for i in range(group * depth, (group + 1) * depth):
            labels = instances_from_classes(flat_classes[i], None if flat_probs is None else flat_probs[:, i], **kw)
            n = int(labels.max())
            pieces.append(PlaneInstances(labels, np.ones(n, np.float32), np.ones(n, np.int32)))
        linked = link_slices(pieces, z_link_iou if linking else 0.0)[0]
        group_out[...] = np.where(linked > 0, linked + next_id, 0)
        next_id += int(linked.max(initial=0))
    return out


def instances_to_classes(
    instances: np.ndarray, *, object_class: int = 1, boundary_class: int = 2
) -> np.ndarray:
    """Background / object / boundary classes of an instance label image: the training rule.

    U-Net training targets are made with it, and so is the class map of a plane segmented at
    another scale (:func:`~.object_size.boundary_classes_to_grid`), so both have the same
    boundary width.

    Args:
        instances: (H, W) integer ids, 0 = background.
        object_class, boundary_class: the class values written (the model's class indices).

    Returns:
        uint8 (H, W): 0 background, ``object_class`` object interior, ``boundary_class``
        boundary (object pixels with a 4-neighbour of another id or of the background: a
        1-pixel inner rim, 2 pixels between two touching objects).
    """
    from skimage.segmentation import find_boundaries

    inside = instances > 0
    classes = np.where(inside, object_class, 0).astype(np.uint8)
    classes[find_boundaries(instances, connectivity=1, mode="inner") & inside] = boundary_class
    return classes

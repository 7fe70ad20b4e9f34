"""Image groups (imaging modality) and group-balanced sampling of training crops.

DSB2018 mixes ~80 % fluorescence with a few H&E-like stained and brightfield images, so a
plain epoch (:func:`~.data.epoch_order`) shows the network the rare modalities rarely.
:func:`modality` is the stated rule that sorts an image into ``fluorescence``, ``stained``
or ``brightfield`` (``scripts/evaluate_bundled.py`` reports the held-out figures per group
with the same function); :func:`balanced_epoch_order` draws one epoch's crops so that each
group present gets a stated share (equal by default) while the epoch keeps its length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..object_size import median_diameter
from .data import crops_per_image

MODALITIES = ("fluorescence", "stained", "brightfield")
"""The groups of :func:`modality`, in the order ``--balance-groups`` weights are given."""
COLOUR_SPREAD = 12.0
"""Mean |R - G| + |G - B| (8-bit grey levels) above which an image counts as stained (colour)."""
LIGHT_BACKGROUND = 100.0
"""Median grey level (8-bit) above which a grey image counts as brightfield (dark objects on light)."""


def modality(image: np.ndarray) -> str:
    """Imaging modality of an image (H, W) or (H, W, C), by a stated rule.

    ``stained``: colour images whose channels differ (mean |R - G| + |G - B| >
    :data:`COLOUR_SPREAD` grey levels: H&E and other stains); otherwise ``brightfield`` when
    the background is light (median > :data:`LIGHT_BACKGROUND`: dark objects on a bright
    field), else ``fluorescence`` (bright on dark). The levels are 8-bit grey levels: uint8
    images are used as they are (the rule of the DSB2018 figures); other dtypes are first
    mapped linearly from their minimum..maximum to 0..255. Images with 2 channels use the
    first one; a 4th channel (alpha) is ignored.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] < 3:
        image = image[..., 0]
    if image.ndim == 3:
        rgb = image[..., :3].astype(np.float32)
    else:
        rgb = np.repeat(image[..., None], 3, -1).astype(np.float32)
    if image.dtype != np.uint8:
        low, high = float(np.min(rgb)), float(np.max(rgb))
        rgb = (rgb - low) * (255.0 / (high - low)) if high > low else np.zeros_like(rgb)
    spread = np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean()
    if spread > COLOUR_SPREAD:
        return "stained"
    return "brightfield" if np.median(rgb.mean(-1)) > LIGHT_BACKGROUND else "fluorescence"


SMALL_FRAME = 360
"""Pixels: fluorescence images whose longer side is at most this form their own validation group
(:func:`appearance_group`; DSB2018's small-frame sources differ in magnification and crowding)."""
APPEARANCE_GROUPS = ("fluorescence-small", "fluorescence-large", "stained", "brightfield")
"""The groups of :func:`appearance_group`."""


def appearance_group(image: np.ndarray) -> str:
    """Validation group of an image (H, W) or (H, W, C) by appearance: :func:`modality`, with
    fluorescence split by frame size (:data:`SMALL_FRAME`). Whole groups are held out in rotation
    to predict how a model does on a kind of image it never saw (issue 18)."""
    kind = modality(image)
    if kind == "fluorescence":
        return "fluorescence-small" if max(np.shape(image)[:2]) <= SMALL_FRAME else "fluorescence-large"
    return kind


PHASE_GROUPS = ("large-cells", "small-cells-dense", "small-cells-sparse")
"""The groups of :func:`phase_group`."""
LARGE_CELL = 52.0
"""Pixels: median equivalent diameter of the labelled cells above which a phase-contrast image is ``large-cells``
(Usiigaci's 45 images fall in two clusters, 59-74 px and 37-45 px: two kinds of experiment)."""
DENSE_COVER = 0.11
"""Share of the image covered by labelled cells at or above which a small-cell image is ``small-cells-dense``."""


def phase_group(labels: np.ndarray) -> str:
    """Validation group of a labelled phase-contrast image (instance labels (H, W), 0 = background).

    Usiigaci names no experiment, so its images are grouped by what the labels show: cell size
    (:data:`LARGE_CELL`) and, for small cells, crowding (:data:`DENSE_COVER`). The rule needs labels:
    it sorts training data for validation (whole groups held out in rotation), not users' images.
    """
    labels = np.asarray(labels)
    diameter = median_diameter(labels)
    if diameter is None:
        return "small-cells-sparse"
    if diameter > LARGE_CELL:
        return "large-cells"
    return "small-cells-dense" if float((labels > 0).mean()) >= DENSE_COVER else "small-cells-sparse"


def group_weights(weights: Sequence[float] | None) -> dict[str, float]:
    """``{group: weight}`` of :data:`MODALITIES` from ``weights`` in that order (None or empty = equal).

    Raises:
        ValueError: not one weight per group, a negative weight, or all zero.
    """
    if not weights:
        return dict.fromkeys(MODALITIES, 1.0)
    if len(weights) != len(MODALITIES):
        raise ValueError(f"Give one weight per group ({', '.join(MODALITIES)}), got {len(weights)}.")
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"Group weights must be >= 0 and not all 0, got {list(weights)}.")
    return {group: float(weight) for group, weight in zip(MODALITIES, weights)}


def balanced_epoch_order(
    shapes: Sequence[tuple[int, int]],
    groups: Sequence[str],
    crop: int,
    max_crops: int,
    rng: np.random.Generator,
    weights: dict[str, float] | None = None,
) -> np.ndarray:
    """Indices of the images to crop from in one group-balanced epoch (int64, shuffled).

    The epoch has as many crops as a plain one (:func:`~.data.epoch_order`: each image
    :func:`~.data.crops_per_image` times). They are shared out between the groups present in
    proportion to ``weights`` (equal when None; groups without images and groups weighted 0
    get none, their share going to the others). Within a group the crops follow the plain
    rule (larger images a little more often): the group's list of crops is repeated in fresh
    random orders as many times as its share needs, and cut at the share, so every image of
    an over-sampled group appears before any appears again, and an under-sampled group shows
    a random subset.

    Args:
        shapes: (H, W) of each training image.
        groups: the group (e.g. :func:`modality`) of each image.
        crop, max_crops: as for :func:`~.data.crops_per_image`.
        rng: the run's random generator.
        weights: ``{group: share}``, any positive scale.
    """
    if len(shapes) != len(groups):
        raise ValueError(f"{len(shapes)} shapes but {len(groups)} groups.")
    counts = np.array([crops_per_image(shape, crop, max_crops) for shape in shapes], np.int64)
    total = int(counts.sum())
    members: dict[str, np.ndarray] = {}
    for group in dict.fromkeys(groups):
        indices = np.flatnonzero(np.asarray(groups) == group)
        if weights is None or weights.get(group, 0.0) > 0:
            members[group] = np.repeat(indices, counts[indices])
    if not members:
        raise ValueError("No group with a positive weight has training images.")
    names = list(members)
    share = np.array([1.0 if weights is None else weights[name] for name in names])
    quota = _largest_remainder(share / share.sum() * total)
    order = []
    for name, n in zip(names, quota):
        pool = members[name]
        rounds = -(-n // len(pool))
        order.append(np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:n] if n else pool[:0])
    return rng.permutation(np.concatenate(order)).astype(np.int64)


def _largest_remainder(exact: np.ndarray) -> np.ndarray:
    """Whole numbers summing to ``round(exact.sum())``, each the floor or ceiling of its value."""
    floors = np.floor(exact).astype(np.int64)
    missing = int(round(exact.sum())) - int(floors.sum())
    floors[np.argsort(floors - exact)[:missing]] += 1
    return floors

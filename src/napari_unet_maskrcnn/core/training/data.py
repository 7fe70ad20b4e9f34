"""Training data: image/label pairs, the validation split, crop sampling and network targets.

A training pair is one 2D image, (H, W) or (H, W, C) of any real dtype, and its label image
(H, W) of non-negative integers. Labels are either *instances* (0 = background, one id per
object) or *classes* (0 = unlabelled, k = class k; sparse annotations are fine).

Targets:

- U-Net from instances: three classes, 0 background, 1 object, 2 boundary (object pixels
  touching another label or the background: a 1-pixel inner rim, 2 pixels between two
  touching objects), see :func:`~..postprocess.instances_to_classes` (the rule inference
  also applies when it maps a resized plane's classes back).
- U-Net from class maps: class k > 0 becomes network class k - 1; unlabelled pixels (0)
  become :data:`IGNORE_INDEX` and are left out of the loss.
- Mask R-CNN from instances: boxes, classes and masks of the objects in a crop
  (:func:`instance_targets`).

Annotated regions: a pair may carry a ``region`` mask, the part of the image the user has
annotated (e.g. corrected objects in one corner of a large image). Only the region is
learned from: the pair trains and validates as if the image were the region's bounding
box, with the pixels outside the region read exactly like the padding beyond an image's
edge (image 0 after normalisation, labels the task's padding label), see
:func:`restrict_to_region`. Unannotated objects outside the region are thus never shown to
the network as background, which matters for Mask R-CNN, whose losses cannot ignore pixels.
The normalisation statistics still come from the whole image, as at inference.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..postprocess import instances_to_classes

IGNORE_INDEX = -100
"""Target value of pixels left out of the U-Net loss (``torch.nn.CrossEntropyLoss``'s default)."""
PAD_LABEL = -1
"""Label of crop pixels outside the image (images smaller than the crop are padded)."""
MIN_BOX_SIDE = 4
"""Objects whose box in a crop is narrower or lower than this (pixels) are not Mask R-CNN targets."""
LABEL_KINDS = ("instances", "classes", "painted")
"""What U-Net labels are: object ids; class maps 1..K (output classes 0..K-1); or class maps
whose painted values are the output values ("painted": class k -> output k, 0 unlabelled)."""
CLASS_MAP_KINDS = ("classes", "painted")
UNLABELLED = "unlabelled"
"""Name of output class 0 of a U-Net trained on ``"painted"`` labels: never a training target."""
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class TrainingPair:
    """One training image and its labels.

    Attributes:
        image: (H, W) or (H, W, C) array of any real dtype (raw intensities).
        labels: (H, W) non-negative integer labels (instances or classes), any integer dtype.
        name: identifies the pair (the file stem for pairs read from folders).
        pixel_size_um: X pixel size in micrometres, when known.
        region: bool (H, W), the annotated part of the image (see the module docstring),
            or None for the whole image.
    """

    image: np.ndarray
    labels: np.ndarray
    name: str
    pixel_size_um: float | None = None
    region: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.image = np.asarray(self.image)
        self.labels = checked_labels(self.labels, self.name)
        if self.image.ndim not in (2, 3) or self.image.shape[:2] != self.labels.shape:
            raise ValueError(
                f"'{self.name}': the image has shape {self.image.shape} but its labels have shape "
                f"{self.labels.shape}; the image must be (H, W) or (H, W, C) with the labels' (H, W)."
            )
        if self.region is not None:
            self.region = np.asarray(self.region, bool)
            if self.region.shape != self.labels.shape:
                raise ValueError(f"'{self.name}': the region has shape {self.region.shape}, the labels "
                                 f"{self.labels.shape}; give one (H, W) mask of the annotated pixels.")
            if not self.region.any():
                raise ValueError(f"'{self.name}': the annotated region is empty.")


def as_pairs(pairs: Sequence) -> list[TrainingPair]:
    """:class:`TrainingPair` objects from pairs or ``(image, labels)`` tuples (named ``"pair <i>"``)."""
    out = []
    for index, pair in enumerate(pairs):
        if not isinstance(pair, TrainingPair):
            image, labels = pair
            pair = TrainingPair(image, labels, f"pair {index}")
        out.append(pair)
    if not out:
        raise ValueError("No training pairs were given.")
    names = [pair.name for pair in out]
    if len(set(names)) != len(names):
        raise ValueError("Training pairs must have distinct names.")
    return out


def checked_labels(labels, name: str) -> np.ndarray:
    """``labels`` as a 2D integer array (its own integer dtype kept, to save memory).

    Raises:
        ValueError: naming ``name``, for a wrong shape, fractions, or negative values.
    """
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.ndim != 2:
        raise ValueError(f"'{name}': labels must be one 2D (H, W) image, got shape {labels.shape}.")
    if labels.dtype.kind == "b":
        return labels.astype(np.uint8)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(f"'{name}': labels must be whole numbers (ids or classes), got fractions.")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"'{name}': labels must be integers, got dtype {labels.dtype}.")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"'{name}': labels must be >= 0 (0 = background or unlabelled).")
    return labels


def load_pairs(images_dir: str | os.PathLike, labels_dir: str | os.PathLike) -> list[TrainingPair]:
    """Read every image of ``images_dir`` with the label image of the same stem in ``labels_dir``.

    Images: TIFF, PNG, JPEG or BMP, 2D greyscale or colour (YX or YXC; RGBA with an opaque
    alpha is read as RGB by the normalisation). Labels: 2D integer images.

    Raises:
        ValueError: a folder without images, an image without labels (all such stems are
            listed), a stack instead of a 2D image, or labels of another size.
    """
    from ..io import read_image

    images = _images_by_stem(Path(images_dir))
    labels = _images_by_stem(Path(labels_dir))
    if not images:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) found in '{images_dir}'.")
    missing = sorted(set(images) - set(labels))
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(
            f"{len(missing)} image(s) in '{images_dir}' have no label image of the same stem in "
            f"'{labels_dir}': {shown}."
        )
    from ..validation import check_label_values, check_training_size

    pairs = []
    for stem in sorted(images):
        image = read_image(images[stem])
        label_image = read_image(labels[stem])
        check_training_size(image.data.shape[image.axes.index("Y"):][:2], str(images[stem]))
        check_label_values(label_image.data, f"labels '{labels[stem]}'")
        pairs.append(TrainingPair(
            _plane(image.data, image.axes, images[stem]),
            _plane(label_image.data, label_image.axes, labels[stem]),
            stem,
            image.pixel_size.get("X"),
        ))
    return pairs


def _images_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise ValueError(f"'{folder}' is not a folder.")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in found:
                raise ValueError(f"'{found[path.stem]}' and '{path}' have the same stem; keep one.")
            found[path.stem] = path
    return found


def _plane(data: np.ndarray, axes: str, path: Path) -> np.ndarray:
    """(H, W) or (H, W, C) plane of an image with ``axes``; ValueError for stacks and time series."""
    from ..axes import to_canonical

    canonical = to_canonical(data, axes)  # (T, Z, Y, X, C)
    if canonical.shape[0] * canonical.shape[1] != 1:
        raise ValueError(
            f"'{path}' is a stack (axes {axes}, shape {data.shape}); training takes 2D images: "
            "save each plane as its own file."
        )
    plane = canonical[0, 0]
    return plane[..., 0] if plane.shape[-1] == 1 else plane


def read_name_list(path: str | os.PathLike) -> list[str]:
    """File stems listed one per line in a text file (blank lines and ``#`` comments skipped)."""
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(Path(line).stem if Path(line).suffix.lower() in IMAGE_SUFFIXES else line)
    return names


def split_pairs(
    pairs: Sequence[TrainingPair],
    *,
    val_fraction: float = 0.2,
    val_names: Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """Split pairs into (training, validation).

    ``val_names`` (pair names) wins over ``val_fraction``; otherwise ``round(val_fraction * n)``
    pairs, at least one when the fraction is positive and there are two pairs or more, are
    drawn with ``seed``. The training set is never empty.
    """
    by_name = {pair.name: pair for pair in pairs}
    if val_names is not None:
        unknown = sorted(set(val_names) - set(by_name))
        if unknown:
            raise ValueError(f"Validation names not among the training pairs: {', '.join(unknown)}.")
        chosen = set(val_names)
    else:
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
        n_val = round(val_fraction * len(pairs))
        if val_fraction > 0 and len(pairs) >= 2:
            n_val = min(max(n_val, 1), len(pairs) - 1)
        order = np.random.default_rng(seed).permutation(len(pairs))
        chosen = {pairs[i].name for i in order[:n_val]}
    train = [pair for pair in pairs if pair.name not in chosen]
    if not train:
        raise ValueError("Every pair is in the validation set: keep at least one for training.")
    return train, [pair for pair in pairs if pair.name in chosen]


def crops_per_image(shape: tuple[int, int], crop: int, max_crops: int) -> int:
    """Crops taken from an image of ``shape`` (H, W) per epoch: ``sqrt(H W) / crop``, in [1, max_crops]."""
    return int(min(max(round(math.sqrt(shape[0] * shape[1]) / crop), 1), max_crops))


def epoch_order(
    shapes: Sequence[tuple[int, int]], crop: int, max_crops: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of the images to crop from, in one epoch's order (int64, shuffled).

    Every image appears :func:`crops_per_image` times, so each epoch sees every image and
    larger images a little more often.
    """
    counts = [crops_per_image(shape, crop, max_crops) for shape in shapes]
    return rng.permutation(np.repeat(np.arange(len(shapes)), counts))


class RegionSource:
    """The bounding box of a region of a ``PlaneSource``; pixels outside the region read as 0.

    It has the ``PlaneSource`` interface (``shape`` (h, w) of the box, ``channels``,
    ``read``), so crops and tiled validation use it unchanged.
    """

    def __init__(self, source, region: np.ndarray):
        """``source``: the whole plane; ``region``: bool (H, W) of the same plane, not empty."""
        rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        self._source = source
        self._y0, self._x0 = int(rows[0]), int(cols[0])
        self._region = region[self._y0 : rows[-1] + 1, self._x0 : cols[-1] + 1]
        self.shape: tuple[int, int] = self._region.shape
        self.channels = source.channels

    @property
    def box(self) -> tuple[slice, slice]:
        """The region's bounding box in the whole plane (row slice, column slice)."""
        return (slice(self._y0, self._y0 + self.shape[0]), slice(self._x0, self._x0 + self.shape[1]))

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Window ``[y0, y1) x [x0, x1)`` of the box as float32 (channels, h, w), 0 outside the region."""
        window = self._source.read(y0 + self._y0, y1 + self._y0, x0 + self._x0, x1 + self._x0)
        window[:, ~self._region[y0:y1, x0:x1]] = 0.0
        return window


def restrict_to_region(source, labels: np.ndarray, region: np.ndarray | None, outside_label: int):
    """What training sees of a pair with an annotated ``region``.

    Args:
        source: ``PlaneSource`` of the whole image.
        labels: (H, W) labels of the whole image.
        region: bool (H, W), or None for the whole image (``source`` and ``labels`` are returned).
        outside_label: label given to pixels outside the region (:data:`PAD_LABEL` to leave
            them out of a U-Net loss; 0 for Mask R-CNN, whose blank pixels are background).

    Returns:
        ``(RegionSource, int64 labels (h, w) of the bounding box)``.
    """
    if region is None:
        return source, labels
    view = RegionSource(source, region)
    box = view.box
    return view, np.where(region[box], labels[box], outside_label).astype(np.int64)


def semantic_targets(labels: np.ndarray, label_kind: str) -> np.ndarray:
    """U-Net targets of a label crop: int64 (H, W) classes, :data:`IGNORE_INDEX` where unknown.

    Args:
        labels: (H, W) ids or classes; :data:`PAD_LABEL` outside the image.
        label_kind: ``"instances"`` (3 classes, padding ignored), ``"classes"``
            (class k -> k - 1, unlabelled 0 and padding ignored) or ``"painted"`` (class k ->
            k, unlabelled 0 and padding ignored: output class 0 is never a target).
    """
    if label_kind == "instances":
        targets = instances_to_classes(np.maximum(labels, 0)).astype(np.int64)
        targets[labels == PAD_LABEL] = IGNORE_INDEX
        return targets
    if label_kind in CLASS_MAP_KINDS:
        offset = 1 if label_kind == "classes" else 0
        return np.where(labels > 0, labels - offset, IGNORE_INDEX).astype(np.int64)
    raise ValueError(f"label_kind must be one of {', '.join(LABEL_KINDS)}, got {label_kind!r}.")


def instance_targets(instances: np.ndarray, min_box_side: int = MIN_BOX_SIDE) -> dict[str, np.ndarray]:
    """Mask R-CNN targets of the objects of an instance crop (single class).

    Args:
        instances: (H, W) ids, 0 (or :data:`PAD_LABEL`) = background.
        min_box_side: objects whose box is narrower or lower than this (pixels) are dropped,
            e.g. slivers of objects cut by the crop edge.

    Returns:
        ``boxes`` float32 (N, 4) x0, y0, x1, y1 in pixel edges (columns a..b give x0 = a,
        x1 = b + 1), ``labels`` int64 (N,) all 1, ``masks`` uint8 (N, H, W); N may be 0.
    """
    from scipy import ndimage

    ids, compact = np.unique(np.maximum(instances, 0), return_inverse=True)
    compact = compact.reshape(instances.shape) + (0 if ids[0] == 0 else 1)  # objects 1..n
    boxes, values = [], []
    for value, (rows, cols) in enumerate(ndimage.find_objects(compact), start=1):
        if rows.stop - rows.start >= min_box_side and cols.stop - cols.start >= min_box_side:
            boxes.append((cols.start, rows.start, cols.stop, rows.stop))
            values.append(value)
    masks = compact[np.newaxis] == np.asarray(values, np.int64).reshape(-1, 1, 1)
    return {
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "labels": np.ones(len(values), np.int64),
        "masks": masks.astype(np.uint8),
    }

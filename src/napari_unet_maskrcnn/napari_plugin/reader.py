"""napari reader: TIFF, PNG and JPEG images and zarr / OME-Zarr folders with their axes and pixel size.

Files are read by :func:`napari_unet_maskrcnn.core.io.read_image`; zarr folders by
:func:`napari_unet_maskrcnn.core.zarr_io.zarr_contents`, lazily: images as dask arrays,
label images (OME-Zarr labels, the plugin's ``--output-format zarr`` / ``out=`` results)
as Labels layers backed by the zarr array itself, so painting writes into the store. Layers get the pixel
size as ``scale`` (micrometres) and ``metadata["pixel_size_um"]`` (X, when known), the axes
in ``metadata["axes"]`` (the widgets use them), RGB(A) images as ``rgb`` layers and other
channels split into one layer each.
Label images (:func:`looks_like_labels`: an integer image named like ``*labels*`` or
``*mask*``, or with few distinct values) open as Labels layers named after the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")
LABEL_NAME = re.compile(
    r"(^|[^a-z])(labels?|masks?|seg|segmentation|gt|ground_?truth|annotations?|instances|classes)([^a-z]|$)"
)
"""File names (lower case, without suffix) that say the file holds labels."""
MAX_LABEL_VALUES = 16
"""An integer image with at most this many distinct values (0 among them) is taken for labels."""
_SAMPLE_PIXELS = 1_000_000

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | Sequence[str]) -> Callable[[Any], list[LayerData] | None] | None:
    """The reader for ``path`` (one file or a list of files), or None if it is not ours."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_readable_name(p) for p in paths):
        return None
    return read_layers


def read_layers(path: str | Sequence[str]) -> list[LayerData] | None:
    """Layer data for every image in ``path``; None when a file cannot be read.

    The reason is shown as a napari warning; nothing is raised, so napari can offer
    another reader.
    """
    from ..core.io import ImageReadError, read_image

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[LayerData] = []
    for one in paths:
        try:
            if _is_zarr(one):
                layers.extend(zarr_layer_data(one))
                continue
            image = read_image(one)
        except ImageReadError as err:
            from napari.utils.notifications import show_warning

            show_warning(str(err))
            return None
        layers.extend(image_layer_data(image.data, image.axes, image.pixel_size, Path(one).stem))
    return layers


def zarr_layer_data(path: str | os.PathLike) -> list[LayerData]:
    """Layer data of a zarr folder, nothing read whole: label images as Labels layers over the
    (writable) zarr array, other images as dask arrays (:func:`image_layer_data`)."""
    import dask.array as da

    from ..core.zarr_io import zarr_contents

    layers: list[LayerData] = []
    for content in zarr_contents(path):
        if content.labels:
            kwargs = {"name": content.name, "metadata": {"axes": content.axes},
                      "scale": [float(content.pixel_size.get(a) or 1.0) for a in content.axes]}
            layers.append((content.array, kwargs, "labels"))
        else:
            data = da.from_zarr(content.array)
            layers.extend(image_layer_data(data, content.axes, content.pixel_size, content.name, content.array))
    return layers


def image_layer_data(
    data, axes: str, pixel_size: dict[str, float] | None, name: str, editable=None
) -> list[LayerData]:
    """napari layer data for an array with ``axes`` (letters of TZCYX): image, or labels.

    A last ``C`` axis of 3 or 4 uint8/uint16 values becomes one RGB(A) layer with
    ``metadata["axes"] == axes``; any other ``C`` axis is split with ``channel_axis`` into
    one layer per channel (``metadata["axes"]`` without ``C``). An array without ``C`` that
    :func:`looks_like_labels` is a Labels layer (over ``editable``, when given: the array
    that ``data`` reads lazily, so painting writes into it). ``scale`` comes from
    ``pixel_size`` (micrometres per pixel for Z, Y, X; 1 for others and when unknown).
    """
    axes = axes.upper().replace("S", "C")
    if "C" not in axes and looks_like_labels(data, name):
        kind = "labels"
        data = editable if editable is not None and editable.dtype != bool else data
        data = data.astype(np.uint8) if data.dtype == bool else data
    else:
        kind = "image"
    pixel_size = pixel_size or {}
    spatial = axes.replace("C", "")
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": [float(pixel_size.get(axis) or 1.0) for axis in spatial],
    }
    if "C" in axes:
        n_channels = data.shape[axes.index("C")]
        if axes.endswith("C") and n_channels in (3, 4) and data.dtype.kind == "u":
            kwargs["rgb"] = True
            kwargs["metadata"] = {"axes": axes}
        else:
            kwargs["channel_axis"] = axes.index("C")
            kwargs["name"] = [f"{name} ch{i}" for i in range(n_channels)]
            kwargs["metadata"] = {"axes": spatial}
    else:
        kwargs["metadata"] = {"axes": axes}
    if pixel_size.get("X") and kind == "image":
        kwargs["metadata"]["pixel_size_um"] = float(pixel_size["X"])  # the widgets match it to the model's
    return [(data, kwargs, kind)]


def looks_like_labels(data, name: str) -> bool:
    """Whether an image without channels holds labels rather than intensities.

    True for integer (or boolean) data whose file name says labels (:data:`LABEL_NAME`), or
    with at most :data:`MAX_LABEL_VALUES` distinct values including 0 (masks, class maps,
    sparse annotations), counted on a subsample of about a million pixels of big images.
    """
    if data.dtype.kind not in "iub":
        return False
    if LABEL_NAME.search(name.lower()):
        return True
    if isinstance(data, np.ndarray):
        step = max(1, int((data.size / _SAMPLE_PIXELS) ** (1 / data.ndim)))
        sample = np.asarray(data[(slice(None, None, step),) * data.ndim])
    else:  # lazy: a strided sample would read every chunk; the central window of the middle plane
        side = int(_SAMPLE_PIXELS**0.5)
        window = tuple(slice(max(0, (n - side) // 2), (n - side) // 2 + side) if i >= data.ndim - 2
                       else n // 2 for i, n in enumerate(data.shape))
        sample = np.asarray(data[window])
    values = np.unique(sample)
    return len(values) <= MAX_LABEL_VALUES and values.size > 0 and values[0] <= 0 <= values[-1]


def _readable_name(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and str(path).rstrip("/\\").lower().endswith(SUFFIXES)


def _is_zarr(path) -> bool:
    return str(path).rstrip("/\\").lower().endswith(".zarr")

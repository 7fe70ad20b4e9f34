"""napari writer: a Labels layer to a TIFF with its axes and pixel size (written atomically).

It may replace a label image (napari's Save dialog asked first) but never an image that is not
one, a folder, or a path under a file (:func:`..core.output_paths.check_label_file_target`).
"""

from __future__ import annotations

from typing import Any

_DEFAULT_AXES = {2: "YX", 3: "ZYX", 4: "TZYX"}


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Save one Labels layer's ``data`` to ``path`` (.tif/.tiff); returns the paths written.

    Axes come from ``attributes["metadata"]["axes"]`` (set by the reader and the widgets),
    otherwise from the number of dimensions (YX, ZYX, TZYX). The layer's ``scale`` is
    stored as the pixel size in micrometres when it is not napari's default of all ones.
    """
    from ..core.io import write_labels as write_labels_tiff
    from ..core.output_paths import check_label_file_target

    check_label_file_target(path)
    axes = labels_axes(data.ndim, attributes.get("metadata") or {})
    scale = [float(s) for s in attributes.get("scale") or [1.0] * data.ndim]
    pixel_size = None
    if any(s != 1.0 for s in scale):
        pixel_size = {axis: s for axis, s in zip(axes, scale) if axis in "ZYX"}
    write_labels_tiff(path, data, axes=axes, pixel_size=pixel_size)
    return [str(path)]


def labels_axes(ndim: int, metadata: dict[str, Any]) -> str:
    """Axes of a labels array: ``metadata["axes"]`` when it fits ``ndim``, else a default."""
    axes = metadata.get("axes")
    if isinstance(axes, str) and len(axes) == ndim and "C" not in axes.upper():
        return axes.upper()
    if ndim not in _DEFAULT_AXES:
        raise ValueError(
            f"Cannot save labels with {ndim} dimensions: expected 2 (YX), 3 (ZYX) or 4 (TZYX)."
        )
    return _DEFAULT_AXES[ndim]

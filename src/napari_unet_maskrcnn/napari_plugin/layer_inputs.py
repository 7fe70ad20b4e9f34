"""Reading a napari image layer for a run: its axes, channels and a snapshot (:class:`InputImage`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from napari.layers import Image

_AXES_BY_NDIM = {2: "YX", 3: "ZYX", 4: "TZYX"}
_COLOUR_NAMES = ("red", "green", "blue", "alpha")


@dataclass(frozen=True)
class InputImage:
    """What a run needs from the input layer, taken when Run is clicked.

    Attributes:
        name: the layer's name (output layers are named after it).
        data: the image array (highest resolution of a multiscale layer).
        axes: letters of TZCYX for ``data``, e.g. ``"ZYX"`` or ``"YXC"``.
        scale, translate: of the output layers (the input's, without a channel axis).
        pixel_size_um: X pixel size in micrometres when known (``metadata["pixel_size_um"]``,
            set by the plugin's reader), else None.
    """

    name: str
    data: Any
    axes: str
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    pixel_size_um: float | None = None

    @property
    def output_axes(self) -> str:
        """Axes of per-pixel results: ``axes`` without ``C``."""
        return self.axes.replace("C", "")

    @property
    def spacing(self) -> tuple[float, ...]:
        """Pixel size along the output's Z, Y, X axes (the layer's scale)."""
        return tuple(s for s, a in zip(self.scale, self.output_axes) if a in "ZYX")


def layer_axes(layer: Image, viewer=None) -> str:
    """Axes (letters of TZCYX) of an image layer's data.

    ``metadata["axes"]`` wins when it has one letter per dimension (the plugin's reader
    sets it). Otherwise: RGB layers end with ``C``; 2D is YX, 4D is TZYX, and 3D is ZYX,
    or TYX when the layer's or the viewer's label for the first axis says time.

    Raises:
        ValueError: for layers with more than 4 dimensions and no ``metadata["axes"]``.
    """
    data = layer.data[0] if layer.multiscale else layer.data
    declared = layer.metadata.get("axes")
    if isinstance(declared, str) and len(declared) == data.ndim:
        return declared.upper()
    if layer.ndim not in _AXES_BY_NDIM:
        raise ValueError(
            f"Layer '{layer.name}' has {layer.ndim} dimensions; say which are which with "
            f"layer.metadata['axes'] = 'TZCYX' (one letter per dimension)."
        )
    axes = _AXES_BY_NDIM[layer.ndim]
    if layer.ndim == 3 and _first_axis_is_time(layer, viewer):
        axes = "TYX"
    return axes + ("C" if getattr(layer, "rgb", False) else "")  # Labels layers have no rgb


def _first_axis_is_time(layer: Image, viewer) -> bool:
    labels = list(getattr(layer, "axis_labels", ()))[:1]  # Layer.axis_labels: napari >= 0.6
    if viewer is not None and viewer.dims.ndim >= layer.ndim:
        labels.append(viewer.dims.axis_labels[viewer.dims.ndim - layer.ndim])
    return any(str(label).strip().lower() in ("t", "time") for label in labels)


def input_image(layer: Image, viewer=None) -> InputImage:
    """Snapshot of ``layer`` for a run (see :class:`InputImage`)."""
    axes = layer_axes(layer, viewer)
    keep = range(layer.ndim) if getattr(layer, "rgb", False) else [i for i, a in enumerate(axes) if a != "C"]
    return InputImage(
        name=layer.name,
        data=layer.data[0] if layer.multiscale else layer.data,
        axes=axes,
        scale=tuple(float(layer.scale[i]) for i in keep),
        translate=tuple(float(layer.translate[i]) for i in keep),
        pixel_size_um=layer.metadata.get("pixel_size_um"),
    )


def channel_choices(layer: Image, axes: str) -> list[tuple[str, int | None]]:
    """(label, channel index) pairs for a multichannel layer; empty when it has one channel."""
    if "C" not in axes:
        return []
    count = layer.data.shape[axes.index("C")]
    names = _COLOUR_NAMES[:count] if layer.rgb else [f"channel {i}" for i in range(count)]
    return [("all (as the model needs)", None), *zip(names, range(count))]

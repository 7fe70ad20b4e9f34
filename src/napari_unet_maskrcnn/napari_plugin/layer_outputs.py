"""Results as napari layers that never overwrite a user's corrections.

Each output layer carries a marker in its ``metadata`` with a checksum of its data taken when
the plugin wrote it, and painting sets an ``edited`` flag. A re-run replaces the plugin's own
output only while both say it is untouched; otherwise the new result becomes a new layer.
"""

from __future__ import annotations

import zlib

import numpy as np
from napari.layers import Image, Labels, Layer

from .layer_inputs import InputImage

MARKER = "napari_unet_maskrcnn"
"""Key of the plugin's entry in an output layer's ``metadata``."""


def checksum(data) -> str:
    """Cheap fingerprint of an array's content (dtype, shape and CRC-32 of its bytes)."""
    array = np.ascontiguousarray(data)
    return f"{array.dtype.str}{array.shape}:{zlib.crc32(array.reshape(-1).view(np.uint8)):08x}"


def is_untouched(layer: Layer) -> bool:
    """True when ``layer`` is a plugin output that nobody changed since the plugin wrote it."""
    mark = layer.metadata.get(MARKER)
    return (
        isinstance(mark, dict)
        and not mark.get("edited", True)
        and mark.get("checksum") == checksum(layer.data)
    )


def _mark_edited(event) -> None:
    """Paint/fill callback of the plugin's Labels layers: remember the manual edit."""
    mark = event.source.metadata.get(MARKER)
    if isinstance(mark, dict):
        mark["edited"] = True


def show_output(
    viewer, layer_type: str, data: np.ndarray, source: InputImage, kind: str, *,
    name: str | None = None, model: str | None = None, **properties
) -> Layer:
    """Add the result ``data`` as a layer, or put it into an untouched old one of the same run kind.

    The most recent plugin output of the same ``kind`` for the same input *and the same
    model*, of the same type and dimensionality, is reused when :func:`is_untouched`;
    otherwise a new layer is added (napari names it "... [1]"). So manual corrections are
    never overwritten, and another model's result is never replaced.

    Args:
        layer_type: ``"labels"`` or ``"image"``.
        data: the layer data; a leading non-spatial axis gets scale 1.
        kind: what the layer is, e.g. ``"classes"``, ``"instances"``, ``"matched"``.
        name: the new layer's name; default "<input> <kind>".
        model: the model that made ``data`` (None for results of no model).
        properties: further layer properties (``features``, ``colormap``...); entries of
            ``metadata`` are added to the layer's metadata (e.g. ``object_size``).
    """
    extra = data.ndim - len(source.scale)
    metadata = {
        **properties.pop("metadata", {}),
        "axes": "C" * extra + source.output_axes,
        MARKER: {"source": source.name, "output": kind, "model": model, "checksum": checksum(data),
                 "edited": False},
    }
    properties.update(
        scale=(1.0,) * extra + source.scale,
        translate=(0.0,) * extra + source.translate,
        metadata=metadata,
    )
    layer_class = Labels if layer_type == "labels" else Image
    for layer in reversed(viewer.layers):
        mark = layer.metadata.get(MARKER)
        if (
            isinstance(layer, layer_class)
            and isinstance(mark, dict)
            and (mark.get("source"), mark.get("output"), mark.get("model")) == (source.name, kind, model)
            and layer.ndim == data.ndim
            and is_untouched(layer)
        ):
            layer.data = data
            for key, value in properties.items():
                setattr(layer, key, value)
            return layer
    name = name or f"{source.name} {kind}"
    layer = viewer.add_layer(Layer.create(data, {"name": name, **properties}, layer_type))
    if isinstance(layer, Labels):
        layer.events.paint.connect(_mark_edited)
    return layer


def output_name(source: InputImage, model: str, what: str = "") -> str:
    """Name of a model's output layer: ``"nuclei 2D · maskrcnn-nuclei"`` (+ ``" instances"``...)."""
    return f"{source.name} · {model}" + (f" {what}" if what else "")

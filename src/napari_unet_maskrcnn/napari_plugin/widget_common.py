"""What both dock widgets share: input and model choosers, Run/Cancel in a worker, output layers.

The widgets compute nothing themselves. A run takes a snapshot of the input layer
(:class:`InputImage`), starts the core's progress generator in a napari ``thread_worker``
(re-yielding its :class:`~napari_unet_maskrcnn.core.progress.ProgressEvent`), and turns the
result into layers in the main thread. ``worker.quit()`` stops the generator at its next
tile; a cancelled run adds nothing.

Output layers are never edited behind the user's back: each carries a marker in its
``metadata`` with a checksum of its data taken when the plugin wrote it, and painting sets
an ``edited`` flag. A re-run replaces the plugin's own output only while both say it is
untouched; otherwise the new result becomes a new layer.
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from dataclasses import dataclass
from functools import partial
from importlib.util import find_spec
from typing import Any

import numpy as np
from magicgui.application import use_app
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox, Widget
from napari.layers import Image, Labels, Layer
from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import notification_manager, show_error, show_info
from psygnal import Signal

from .. import api
from ..core.device import available_devices
from ..core.object_size import TRAINED_RANGE, describe_object_size
from ..core.progress import progress_text
from .dock import DockContainer

MARKER = "napari_unet_maskrcnn"
"""Key of the plugin's entry in an output layer's ``metadata``."""

WIDGET_NAMES = {"semantic": "U-Net segmentation", "instances": "Mask R-CNN instances"}
_AXES_BY_NDIM = {2: "YX", 3: "ZYX", 4: "TZYX"}
_COLOUR_NAMES = ("red", "green", "blue", "alpha")


class SegmentationError(Exception):
    """A run failed; the message is meant for the user.

    (Not a RuntimeError: napari's workers take a RuntimeError for a deleted worker and
    swallow it, which would leave the Run button disabled.)
    """


class _ModelEvents:
    """Tells every open widget that the list of models changed."""

    changed = Signal()


model_events = _ModelEvents()


def load_torch_beside_opengl() -> None:
    """Import torch (and triton, when installed) so that they cannot crash napari.

    Mesa's OpenGL drivers, which napari's canvas loads, put their LLVM into the process's
    global symbols. triton (installed with torch from PyPI on Linux, imported by
    torchvision) carries its own LLVM and, loaded afterwards, binds to Mesa's copy and
    crashes the process. Loaded with ``RTLD_DEEPBIND`` it uses its own copy.
    """
    import torch  # noqa: F401  (loaded normally, before the flags change)

    if not hasattr(os, "RTLD_DEEPBIND") or "triton" in sys.modules or find_spec("triton") is None:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import triton  # noqa: F401
    except ImportError:  # a broken triton: torch works without it
        pass
    finally:
        sys.setdlopenflags(flags)


def ask_and_register_model_file(parent, ask=None):
    """Ask for a model file and add it to every widget's model list; its ``ModelInfo``, or None.

    ``ask(parent)`` returns the chosen path (default :func:`ask_model_file`). None when the
    dialog is cancelled or the file is not a model (the error is shown).
    """
    path = (ask or ask_model_file)(parent)
    if not path:
        return None
    try:
        info = api.register_model_file(path)
    except ValueError as err:  # ModelFileError: missing, truncated or foreign file
        show_error(str(err))
        return None
    model_events.changed.emit()
    return info


def ask_model_file(parent=None) -> str | None:
    """Ask the user for a model file; returns its path, or None when cancelled."""
    show_file_dialog = use_app().get_obj("show_file_dialog")
    return show_file_dialog(
        mode="r",
        caption="Load model file",
        filter="napari-unet-maskrcnn models (*.safetensors);;All files (*)",
        parent=parent,
    )


class ModelChooser(Container):
    """The models available for one task, and a button to add a model file.

    ``value`` is the chosen model's name (None when there is none). Models whose weights
    are not installed are not offered; the tooltip names them.
    """

    def __init__(self, task: str):
        self._task = task
        self.combo = ComboBox(choices=self._choices)
        self.load_button = PushButton(text="Load model file…")
        super().__init__(labels=False, label="model")
        self.margins = (0, 0, 0, 0)
        self.extend([self.combo, self.load_button])
        self.load_button.changed.connect(self.load_model_file)
        refresh = self.reset_choices
        model_events.changed.connect(refresh)
        self.native.destroyed.connect(lambda *_: model_events.changed.disconnect(refresh))

    @property
    def value(self) -> str | None:
        return self.combo.value

    @value.setter
    def value(self, name: str) -> None:
        self.combo.value = name

    def _choices(self, combo: ComboBox) -> list[str]:
        models = [info for info in api.list_models() if info.task == self._task]
        missing = [info.name for info in models if not info.available]
        tooltip = f"Models for {WIDGET_NAMES[self._task]}."
        if missing:
            tooltip += f" Not installed in this copy: {', '.join(missing)}."
        combo.tooltip = tooltip
        return [info.name for info in models if info.available]

    def load_model_file(self) -> None:
        """Ask for a model file, add it to every widget's list and choose it here."""
        info = ask_and_register_model_file(self.native)
        if info is None:
            return
        if info.task == self._task:
            self.combo.value = info.name
        else:
            show_info(
                f"'{info.name}' is a {info.task} model; it is now listed in the "
                f"'{WIDGET_NAMES[info.task]}' widget."
            )


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


def _relay(job):
    """Worker body: re-yield the core's progress events; give failures a user message."""
    try:
        return (yield from job)
    except ValueError as err:  # bad input, ModelFileError: the core's message says the fix
        raise SegmentationError(str(err)) from err
    except Exception as err:
        raise SegmentationError(f"Segmentation failed ({type(err).__name__}: {err}).") from err


class SegmentationWidget(DockContainer):
    """Base of the dock widgets: image, model, channel, options, device, Run and Cancel.

    Subclasses set :attr:`task`, pass their option widgets keyed by the API's keyword
    names (a model's ``defaults`` fill them in), and implement :meth:`_job` and :meth:`_show`.
    """

    task: str  # "semantic" or "instances"

    def __init__(self, viewer, options: dict[str, Widget]):
        super().__init__()
        load_torch_beside_opengl()
        self._viewer = viewer
        self._worker = None
        self._progress = None
        self._started = 0.0
        self.run_model: str | None = None
        tile = SpinBox(label="tile size", min=api.MIN_TILE, max=4096, step=64, value=api.DEFAULT_TILE,
                       tooltip="Tile edge in pixels; smaller tiles use less memory.")
        self.diameter = FloatSpinBox(
            label="object diameter (px)", value=0.0, min=0.0, max=10_000.0, step=1.0,
            tooltip="Typical object diameter in the image's pixels; each plane is resized so its "
                    "objects match the model's training size. 0 = automatic: estimated by a first "
                    "pass, resized only when it is outside "
                    f"{TRAINED_RANGE[0]:g}-{TRAINED_RANGE[1]:g}x the model's diameter.",
        )
        self._options = {"tile": tile, "diameter": self.diameter, **options}
        self.image = ComboBox(label="image", choices=self._image_layers)
        self.model = ModelChooser(self.task)
        self.channel = ComboBox(label="channel", choices=self._channels, visible=False,
                                tooltip="Which channel the model sees.")
        self.device = ComboBox(label="device", choices=["auto", *available_devices()])
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        buttons = Container(layout="horizontal", labels=False, widgets=[self.run_button, self.cancel_button])
        buttons.margins = (0, 0, 0, 0)
        self.status = Label(value="")
        self.extend([self.image, self.model, self.channel, *self._options.values(), self.device,
                     buttons, self.status])
        self.image.changed.connect(self._on_image_changed)
        self.model.combo.changed.connect(self._apply_model_defaults)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.native.destroyed.connect(lambda *_: self._abandon_run())
        self._on_image_changed()
        self._apply_model_defaults()

    @property
    def running(self) -> bool:
        return self._worker is not None

    def run(self) -> None:
        """Start segmenting the chosen image in a worker thread (Run button)."""
        if self.running:
            return
        try:
            if self.image.value is None:
                raise ValueError("Open an image first: there is no image layer to segment.")
            if self.model.value is None:
                raise ValueError("Choose a model first, or add one with 'Load model file…'.")
            source = input_image(self.image.value, self._viewer)
            job = self._job(source)
            self.run_model = self.model.value  # names the output, even if the choice changes meanwhile
        except ValueError as err:
            show_error(str(err))
            return
        self._progress = cancelable_progress(
            total=0, desc=f"{WIDGET_NAMES[self.task]}: {source.name}", cancel_callback=self.cancel
        )
        worker = create_worker(_relay, job, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(partial(self._on_result, source))
        worker.errored.connect(self._on_error)
        worker.aborted.connect(self._on_cancelled)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = "Starting…"
        self._started = time.monotonic()
        worker.start()

    def cancel(self) -> None:
        """Stop the run at its next tile (Cancel button); nothing is added."""
        if self._worker is not None:
            self._worker.quit()
            self.cancel_button.enabled = False
            self.status.value = "Cancelling…"

    def _arguments(self, source: InputImage) -> dict[str, Any]:
        """Keyword arguments of the API's ``iter_segment_*`` call for ``source``."""
        arguments = {
            "model": self.model.value,
            "axes": source.axes,
            "channel": self.channel.value,
            "device": self.device.value,
            "pixel_size_um": source.pixel_size_um,
            **{key: widget.value for key, widget in self._options.items()},
        }
        arguments["diameter"] = arguments["diameter"] or None  # 0 in the field = automatic
        return arguments

    def _job(self, source: InputImage):
        """The core's progress generator for one run on ``source``."""
        raise NotImplementedError

    def _show(self, source: InputImage, result) -> str:
        """Turn the API's result into layers (main thread); returns a one-line summary."""
        raise NotImplementedError

    def _image_axes(self) -> str:
        """Axes of the chosen image layer ("" when there is none or they are unknown)."""
        if self.image.value is None:
            return ""
        try:
            return layer_axes(self.image.value, self._viewer)
        except ValueError:
            return ""

    def _image_layers(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _channels(self, _widget=None) -> list[tuple[str, int | None]]:
        return channel_choices(self.image.value, self._image_axes())

    def _on_image_changed(self, _value=None) -> None:
        """Offer the channels of the new image (hidden for single-channel images)."""
        self.channel.reset_choices()
        self.channel.visible = bool(self.channel.choices)

    def _apply_model_defaults(self, _value=None) -> None:
        """Fill the options with the chosen model's suggested settings."""
        if self.model.value is None:
            return
        try:
            defaults = api.get_model_spec(self.model.value).defaults
            for key, value in defaults.items():
                if key in self._options:
                    self._options[key].value = value
        except ValueError:  # an unreadable model file, or a default outside a widget's range
            return

    def _on_progress(self, event) -> None:
        bar = self._progress
        if bar is None:  # napari's progress bar may process events: the run can end in here
            return
        self.status.value = progress_text(event, time.monotonic() - self._started)
        if bar.total != event.total:
            bar.total = event.total
        bar.update(event.done - bar.n)

    def _on_result(self, source: InputImage, result) -> None:
        self.status.value = f"{self._show(source, result)}\n{describe_object_size(result.object_size)}."

    def _on_error(self, error: Exception) -> None:
        """Notify the failure (its message says what to change; the traceback is attached)."""
        self.status.value = "Failed; see the notification."
        notification_manager.receive_error(type(error), error, error.__traceback__)

    def _on_cancelled(self) -> None:
        self.status.value = "Cancelled; nothing was added."

    def _abandon_run(self) -> None:
        """The widget is being destroyed (napari closes): stop the run, touch no widget."""
        worker = self._worker
        if worker is None:
            return
        for signal in (worker.yielded, worker.returned, worker.errored, worker.aborted, worker.finished):
            signal.disconnect()
        worker.quit()
        self._progress.close()

    def _on_finished(self) -> None:
        self._progress.close()
        self._progress = None
        self._worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False

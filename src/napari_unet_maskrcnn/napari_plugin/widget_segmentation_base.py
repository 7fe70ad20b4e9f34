"""The segmentation widgets' base: input and model choosers, options, Run/Cancel in a worker.

The widgets compute nothing themselves. A run takes a snapshot of the input layer
(:class:`~.layer_inputs.InputImage`), starts the core's progress generator in a napari
``thread_worker`` (re-yielding its :class:`~napari_unet_maskrcnn.core.progress.ProgressEvent`),
and turns the result into layers in the main thread (:mod:`.layer_outputs`). ``worker.quit()``
stops the generator at its next tile; a cancelled run adds nothing.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox, Widget
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import notification_manager, show_error

from .. import api
from ..core.device import available_devices
from ..core.object_size import TRAINED_RANGE, describe_object_size
from ..core.progress import progress_text
from .dock import DockContainer
from .layer_inputs import InputImage, channel_choices, input_image, layer_axes
from .model_chooser import WIDGET_NAMES, ModelChooser
from ..core.torch_loading import load_torch_beside_opengl


class SegmentationError(Exception):
    """A run failed; the message is meant for the user.

    (Not a RuntimeError: napari's workers take a RuntimeError for a deleted worker and
    swallow it, which would leave the Run button disabled.)
    """


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

"""The segmentation widgets' base: input and model choosers, options, Run/Cancel in a worker.

The widgets compute nothing themselves. A run takes a snapshot of the input layer
(:class:`~.layer_inputs.InputImage`), runs the API's progress generator in a worker
(:mod:`.background_run`: progress, Cancel within one tile, a cancelled run adds nothing),
and turns the result into layers in the main thread (:mod:`.layer_outputs`).
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import ComboBox, Widget
from napari.layers import Image

from .. import api
from ..core.device import available_devices
from ..core.object_size import describe_object_size
from ..core.settings import SEGMENT_SETTINGS
from .background_run import BackgroundRun, Job
from .dock import DockContainer
from .layer_inputs import InputImage, channel_choices, input_image, layer_axes
from .model_chooser import WIDGET_NAMES, ModelChooser
from .settings_widgets import OptionalNumber, tooltip
from ..core.torch_loading import load_torch_beside_opengl


class SegmentationWidget(DockContainer):
    """Base of the dock widgets: image, model, channel, options, device, Run and Cancel.

    Subclasses set :attr:`task`, pass their option widgets keyed by the API's keyword
    names (made from :mod:`..core.settings` by :func:`.settings_widgets.setting_field`; a model's
    ``defaults`` fill them in), and implement :meth:`_job` and :meth:`_show`.
    """

    task: str  # "semantic" or "instances"

    def __init__(self, viewer, options: dict[str, Widget]):
        super().__init__()
        load_torch_beside_opengl()
        self._viewer = viewer
        self.run_model: str | None = None
        self._model_channel: int | None = None  # the chosen model's training channel
        # fields made from the settings' declarations (core/settings.py): the API's names, defaults and ranges;
        # "automatic" ticked = None, as in the API (tile: sized to memory; diameter: estimated, 0 = off)
        tile = OptionalNumber(SEGMENT_SETTINGS["tile"], number=api.DEFAULT_TILE)
        self.diameter = OptionalNumber(SEGMENT_SETTINGS["diameter"], number=0.0)
        self._options = {"tile": tile, "diameter": self.diameter, **options}
        self.image = ComboBox(label="image", choices=self._image_layers)
        self.model = ModelChooser(self.task)
        self.channel = ComboBox(label="channel", choices=self._channels, visible=False,
                                tooltip="Which channel the model sees.")
        device = SEGMENT_SETTINGS["device"]
        self.device = ComboBox(label=device.widget_label, choices=[device.default, *available_devices()],
                               tooltip=tooltip(device))
        self.runner = BackgroundRun(self._prepare, on_failure=self._clear_results)
        self.run_button, self.cancel_button, self.status = (
            self.runner.run_button, self.runner.cancel_button, self.runner.status)
        self.extend([self.image, self.model, self.channel, *self._options.values(), self.device, self.runner])
        self.image.changed.connect(self._on_image_changed)
        self.model.combo.changed.connect(self._apply_model_defaults)
        self._on_image_changed()
        self._apply_model_defaults()

    @property
    def running(self) -> bool:
        return self.runner.running

    def run(self) -> None:
        """Start segmenting the chosen image in a worker thread (Run button)."""
        self.runner.run()

    def cancel(self) -> None:
        """Stop the run at its next tile (Cancel button); nothing is added."""
        self.runner.cancel()

    def _prepare(self) -> Job:
        if self.image.value is None:
            raise ValueError("Open an image first: there is no image layer to segment.")
        if self.model.value is None:
            raise ValueError("Choose a model first, or add one with 'Load model file…'.")
        source = input_image(self.image.value, self._viewer)
        _warn_about_content(source)
        work = self._job(source)
        self.run_model = self.model.value  # names the output, even if the choice changes meanwhile
        return Job(work, lambda result: self._finish(source, result),
                   title=f"{WIDGET_NAMES[self.task]}: {source.name}", what="Segmentation")

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
        return arguments

    def _clear_results(self) -> None:
        """A failed run: clear what the dock shows of the previous run (its layers stay)."""

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
        self._preselect_channel()

    def _apply_model_defaults(self, _value=None) -> None:
        """Fill the options with the chosen model's suggested settings; choose its training channel."""
        self._model_channel = None
        if self.model.value is None:
            return
        try:
            spec = api.get_model_spec(self.model.value)
            self._model_channel = spec.provenance.get("data", {}).get("channel")
            self._preselect_channel()
            for key, value in spec.defaults.items():
                if key in self._options:
                    self._options[key].value = value
        except ValueError:  # an unreadable model file, or a default outside a widget's range
            return

    def _preselect_channel(self) -> None:
        """The channel the model was trained on (``provenance["data"]["channel"]``), when the image has it."""
        if self._model_channel is not None and self._model_channel in self.channel.choices:
            self.channel.value = self._model_channel

    def _finish(self, source: InputImage, result) -> str:
        return f"{self._show(source, result)}\n{describe_object_size(result.object_size)}."


def _warn_about_content(source: InputImage) -> None:
    """A napari warning for inputs that cannot give objects (tiny, all NaN, one value), as the CLI prints."""
    from napari.utils.notifications import show_warning

    from ..core.validation import content_warnings

    for warning in content_warnings(source.data, source.axes):
        show_warning(f"'{source.name}': {warning}")

"""Dock widget "Train model": teach a U-Net or a Mask R-CNN the user's own annotated images.

The user adds pairs of an image layer and a labels layer (2D images; stacks slice by slice:
the slice shown when the pair was added, or every annotated slice), chooses the task, what
the labels are (instances, or U-Net class strokes whose painted value is the value the model
outputs, with a name per value), where they annotated (labelled objects
plus a margin, the whole image, or the shapes of a Shapes layer), the starting model, a
time budget, the validation fraction and a name.

The widget reads the layers when Train is clicked (:mod:`.train_inputs`) and computes
nothing itself: the core builds the pairs and regions (:mod:`.core.training.regions`) and
trains in a worker thread (:mod:`.background_run`, as in the other docks). The dock shows a
live plot of the loss and validation score (:class:`.widget_plot.TrainingPlot`), a status
line and a progress bar over the time budget. Cancel stops at the next step and keeps the
best weights so far; a run cancelled before its first step writes nothing. The new model
file is listed at once in both segmentation widgets.
"""

from __future__ import annotations

from functools import partial

from magicgui.widgets import (
    ComboBox,
    FileEdit,
    Label,
    LineEdit,
    PushButton,
    Select,
)
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_error, show_info, show_warning

from .. import api
from .background_run import BackgroundRun, EventView, Job
from .class_names_table import ClassNamesTable
from .dock import DockContainer
from .train_inputs import (
    PairChoice,
    TrainRequest,
    feature_class_names,
    free_model_name,
    model_output_path,
    run_training,
    score_name,
    snapshot,
)
from .layer_inputs import channel_choices, layer_axes
from .layer_outputs import MARKER
from .model_chooser import ask_and_register_model_file, ask_model_file, model_events
from ..core.torch_loading import load_torch_beside_opengl
from .widget_plot import TrainingPlot
from ..core.device import available_devices
from ..core.progress import format_duration
from ..core.registry import user_model_dir
from ..core.settings import TRAIN_SETTINGS
from .settings_widgets import setting_field, tooltip

SCRATCH = "from scratch"
MAX_NAMED_CLASSES = 255
"""Painted values beyond this get no row in the class names table (they are instance ids)."""


class TrainWidget(DockContainer):
    """Train a model on image + labels layer pairs; the model file joins the model lists."""

    def __init__(self, napari_viewer):
        super().__init__()
        load_torch_beside_opengl()
        self._viewer = napari_viewer
        self._pairs: list[PairChoice] = []

        self.image = ComboBox(label="image", choices=lambda _: self._layers(Image))
        self.labels_layer = ComboBox(label="labels", choices=lambda _: self._layers(Labels))
        self.slices = ComboBox(label="slices", choices=[("current slice", "current"), ("all annotated", "all")],
                               tooltip="Stacks train slice by slice: the slice shown now, or every slice "
                                       "with labels.")
        self.add_button = PushButton(text="Add pair")
        self.pair_list = Select(label="pairs", choices=self._pair_choices,
                                tooltip="The image + labels pairs to train on.")
        self.remove_button = PushButton(text="Remove selected pairs")
        self.task = ComboBox(label="task", choices=[("U-Net classes", "semantic"),
                                                    ("Mask R-CNN instances", "instances")])
        self.label_kind = ComboBox(
            label="labels are",
            choices=[("instances (one id per object)", "instances"), ("class strokes (0 = unlabelled)", "painted")],
            tooltip="Class strokes: paint a few strokes of every class, background too, with values "
                    "1..K; unpainted pixels are ignored. The model outputs the value you painted.",
        )
        self.class_names = ClassNamesTable(
            label="class names", tooltip="Name of each painted value (the model's class names); edit to rename.")
        self.region = ComboBox(
            label="annotated region", choices=self._region_choices,
            tooltip="Where the labels are complete; elsewhere nothing is learned (unlabelled cells are "
                    "not taught as background). Shapes: rectangles, polygons and ellipses; shapes of "
                    "a 2D Shapes layer apply to every slice.",
        )
        settings = TRAIN_SETTINGS  # labels, defaults, ranges and tooltips declared once (core/settings.py)
        self.margin = setting_field(settings["annotation_margin"])
        self.start = ComboBox(label="start from", choices=self._start_choices,
                              tooltip="Fine-tune a model of this task, or train a new one from scratch.")
        self.load_button = PushButton(text="Load model file…")
        self.channel = ComboBox(  # after self.start: its choices depend on the start model
            label="channel", choices=self._channel_choices, visible=False,
            tooltip="Which channel of a multichannel image the model learns from; "
                    "the segmentation widgets choose it again for this model.")
        self.minutes = setting_field(settings["minutes"])
        self.epochs = setting_field(settings["epochs"], min=0,
                                    tooltip="0 = train until the time budget is spent.")
        self.val_fraction = setting_field(settings["val_fraction"])
        self.crop = setting_field(settings["crop"])
        self.device = ComboBox(label="device", choices=[settings["device"].default, *available_devices()],
                               tooltip=tooltip(settings["device"]))
        self.model_name = LineEdit(label="model name", value=free_model_name("my-model"),
                                   tooltip="Saved in your model folder as <name>.safetensors.")
        self.save_to = FileEdit(label="or save to", mode="w", filter="*.safetensors",
                                tooltip="Optional: write the model file here instead of the model folder.")
        self.runner = BackgroundRun(self._prepare, run_text="Train")
        self.train_button, self.cancel_button, self.status = (
            self.runner.run_button, self.runner.cancel_button, self.runner.status)
        self.warning = Label(value="", visible=False)
        self.warning.native.setWordWrap(True)
        self.warning.native.setStyleSheet("color: orange")
        self.plot = TrainingPlot()
        self.extend([
            self.image, self.labels_layer, self.slices, self.channel, self.add_button, self.pair_list,
            self.remove_button,
            self.task, self.label_kind, self.class_names, self.region, self.margin, self.start, self.load_button,
            self.minutes, self.epochs, self.val_fraction, self.crop, self.device, self.model_name,
            self.save_to, self.runner, self.warning,
        ])
        self.body.layout().addWidget(self.plot)

        self.image.changed.connect(self._update_visibility)
        self.image.changed.connect(self._update_channels)
        self.start.changed.connect(self._update_channels)
        self.labels_layer.changed.connect(self._infer_task)
        self.labels_layer.changed.connect(self._update_class_names)
        self.task.changed.connect(self._on_task_changed)
        self.label_kind.changed.connect(self._update_visibility)
        self.region.changed.connect(self._update_visibility)
        self.add_button.changed.connect(self.add_pair)
        self.remove_button.changed.connect(self.remove_selected_pairs)
        self.load_button.changed.connect(self.load_model_file)
        refresh = self.start.reset_choices
        model_events.changed.connect(refresh)
        self.native.destroyed.connect(lambda *_: model_events.changed.disconnect(refresh))
        self._update_visibility()
        self._update_channels()

    @property
    def running(self) -> bool:
        return self.runner.running

    # -- pairs ----------------------------------------------------------------------------------

    def add_pair(self) -> None:
        """Add the chosen image and labels (and slice choice) to the list of pairs."""
        if self.image.value is None or self.labels_layer.value is None:
            show_error("Choose an image layer and a labels layer to add as a pair.")
            return
        try:
            choice = PairChoice.of(self.image.value, self.labels_layer.value, self.slices.value, self._viewer)
        except ValueError as err:
            show_error(str(err))
            return
        if choice not in self._pairs:
            self._pairs.append(choice)
        self.pair_list.reset_choices()
        self._update_class_names()

    def remove_selected_pairs(self) -> None:
        """Remove the pairs selected in the list."""
        selected = self.pair_list.value
        self._pairs = [pair for pair in self._pairs if pair not in selected]
        self.pair_list.reset_choices()
        self._update_class_names()

    def _pair_choices(self, _widget=None) -> list[tuple[str, PairChoice]]:
        layers = list(self._viewer.layers)
        self._pairs = [pair for pair in self._pairs if pair.image in layers and pair.labels in layers]
        return [(pair.description, pair) for pair in self._pairs]

    # -- choices --------------------------------------------------------------------------------

    def _layers(self, kind) -> list[tuple[str, object]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, kind)]

    def _region_choices(self, _widget=None) -> list[tuple[str, object]]:
        shapes = [(f"shapes: {name}", layer) for name, layer in self._layers(Shapes)]
        return [("labelled objects + margin", "objects"), ("whole image (all annotated)", "image"), *shapes]

    def _start_choices(self, _widget=None) -> list[tuple[str, str | None]]:
        names = [info.name for info in api.list_models() if info.task == self.task.value and info.available]
        return [(SCRATCH, None), *[(name, name) for name in names]]

    def _infer_task(self, _value=None) -> None:
        """Set task and label kind from the chosen labels layer (they stay changeable by hand).

        The plugin's own outputs say what they are; other layers are judged by their content
        (:func:`~..api.guess_kind`): instance labels train a Mask R-CNN,
        class maps or strokes a U-Net on classes. Undecidable layers change nothing.
        """
        layer = self.labels_layer.value
        if layer is None:
            return
        mark = layer.metadata.get(MARKER)
        output = mark.get("output") if isinstance(mark, dict) else None
        if output in ("classes", "instances", "U-Net instances"):
            kind = "classes" if output == "classes" else "instances"
        else:
            kind = api.guess_kind(layer.data[0] if layer.multiscale else layer.data)
        if kind == "instances":
            self.task.value, self.label_kind.value = "instances", "instances"
        elif kind == "classes":
            self.task.value, self.label_kind.value = "semantic", "painted"

    def _on_task_changed(self, _value=None) -> None:
        self.start.reset_choices()
        self._update_visibility()

    def _update_visibility(self, _value=None) -> None:
        """Show only the settings that apply to the chosen image, task and labels."""
        image = self.image.value
        self.slices.visible = image is not None and PairChoice.is_stack(image, self._viewer)
        self.label_kind.visible = self.task.value == "semantic"
        self.class_names.visible = self._label_kind() == "painted"
        instances = self._label_kind() == "instances"  # class strokes: unpainted pixels are ignored anyway
        self.region.visible = instances
        self.margin.visible = instances and self.region.value == "objects"

    def _update_class_names(self, _value=None) -> None:
        """One row per painted value of the pairs' labels (or of the chosen labels layer)."""
        layers = [pair.labels for pair in self._pairs] or [self.labels_layer.value]
        layers = [layer for layer in layers if layer is not None]
        suggested = {}
        for layer in reversed(layers):
            suggested.update(feature_class_names(layer))
        count = max((int(layer.data.max()) for layer in layers if layer.data.size), default=0)
        self.class_names.show_values(min(max(count, 0), MAX_NAMED_CLASSES), suggested)

    def _channel_choices(self, _widget=None) -> list[tuple[str, int | None]]:
        """Channels of a multichannel (not RGB) image; "all" only when the start model takes that many."""
        layer = self.image.value
        axes = _axes_or_empty(layer, self._viewer)
        if layer is None or getattr(layer, "rgb", False) or "C" not in axes:
            return []
        count = layer.data.shape[axes.index("C")]
        choices = [(name, index) for name, index in channel_choices(layer, axes) if index is not None]
        try:
            base_channels = api.get_model_spec(self.start.value).in_channels if self.start.value else count
        except ValueError:  # an unreadable start model: reported when training starts
            base_channels = None
        if base_channels == count:
            choices.insert(0, (f"all {count} channels", None))
        return choices

    def _update_channels(self, _value=None) -> None:
        self.channel.reset_choices()
        self.channel.visible = bool(self.channel.choices)

    def _channel(self) -> tuple[int | None, int | None]:
        """(channel, input channels) for the core: one chosen channel, or all of a multichannel image."""
        if not self.channel.choices:  # grey or RGB
            return None, None
        if self.channel.value is not None:
            return self.channel.value, None
        return None, len(self.channel.choices) - 1

    def _label_kind(self) -> str:
        return self.label_kind.value if self.task.value == "semantic" else "instances"

    def load_model_file(self) -> None:
        """Ask for a model file to start from; it joins every widget's model list."""
        info = ask_and_register_model_file(self.native, ask_model_file)
        if info is None:
            return
        if info.task != self.task.value:
            self.task.value = info.task
        self.start.value = info.name

    # -- the run --------------------------------------------------------------------------------

    def train(self) -> None:
        """Start training in a worker thread (Train button); problems become notifications."""
        self.runner.run()

    def cancel(self) -> None:
        """Stop at the next step (Cancel button); the best weights so far are written."""
        self.runner.cancel()

    def _prepare(self) -> Job:
        """The training job, its request read from the widgets and the layers now (ValueError: say why)."""
        request = self._make_request()
        self.warning.value, self.warning.visible = "", False
        self.plot.clear()
        return Job(partial(run_training, request), lambda result: self._finish(request, result),
                   title=f"Training '{request.output.stem}'", what="Training",
                   on_event=lambda event, _elapsed: self._on_event(request, event))

    def _make_request(self) -> TrainRequest:
        """What the worker needs, read from the widgets and the layers now (ValueError: say why)."""
        if not self._pairs:
            raise ValueError("Add at least one image + labels pair first: choose them and click 'Add pair'.")
        region = self.region.value if self._label_kind() == "instances" else "image"
        shapes = region if isinstance(region, Shapes) else None
        return TrainRequest.build(
            arch="unet" if self.task.value == "semantic" else "maskrcnn",
            label_kind=self._label_kind(),
            channel=self._channel(),
            class_names=self.class_names.names() if self._label_kind() == "painted" else {},
            region="polygons" if shapes is not None else region,
            margin=self.margin.value,
            snapshots=[snapshot(pair, shapes, self._viewer) for pair in self._pairs],
            base=self.start.value,
            minutes=self.minutes.value,
            epochs=self.epochs.value or None,
            val_fraction=self.val_fraction.value,
            crop=self.crop.value,
            device=self.device.value,
            output=model_output_path(self.model_name.value, self.save_to.value),
        )

    def _on_event(self, request: TrainRequest, event) -> EventView | None:
        """A training event (main thread): notes and warnings, the plot; the status line and the
        progress bar over the time budget (seconds)."""
        if event.stage == "note":
            show_info(event.message)
            return None
        if event.stage == "warning":  # e.g. no validation possible: keep it in sight, in the widget too
            show_warning(event.message)
            self.warning.value = event.message
            self.warning.visible = True
            return None
        if event.stage == "step" and event.loss is not None:
            self.plot.add_loss(event.step, event.loss)
        if event.stage == "epoch" and event.report.score is not None:
            self.plot.add_score(event.step, event.report.score, score_name(request))
        budget = round(request.settings["minutes"] * 60)
        return self._status_line(event, budget), min(int(event.elapsed_s), budget), budget

    def _status_line(self, event, budget_s: float) -> str:
        epochs = f"/{event.epochs}" if event.epochs else ""
        parts = [f"epoch {event.epoch}{epochs}", f"step {event.step}"]
        if self.plot.losses:
            parts.append(f"loss {self.plot.losses[-1][1]:.4f}")
        if self.plot.scores:
            parts.append(f"{self.plot.metric} {self.plot.scores[-1][1]:.3f}")
        if event.stage == "validate":
            parts.append("validating")
        left = max(budget_s - event.elapsed_s, 0)
        parts.append(f"{format_duration(event.elapsed_s)} elapsed, {format_duration(left)} left")
        return " · ".join(parts)

    def _finish(self, request: TrainRequest, result) -> str:
        """The model file joins the model lists (main thread); returns the status line."""
        if result.path is None:
            return "Cancelled before the first step: no model was written."
        if result.path.parent.resolve() != user_model_dir().resolve():
            api.register_model_file(result.path)
        model_events.changed.emit()
        best = result.best_metrics.get(score_name(request))
        quality = f", {score_name(request)} {best:.3f}" if best is not None else ""
        show_info(f"Model written to '{result.path}'.")
        self.model_name.value = free_model_name(self.model_name.value)
        return (f"Wrote '{result.path.stem}' ({result.stop_reason}, {len(result.history)} "
                f"epochs{quality}): now in the segmentation widgets' model lists.")


def _axes_or_empty(layer, viewer) -> str:
    """The layer's axes, "" for none or unknown ones."""
    if layer is None:
        return ""
    try:
        return layer_axes(layer, viewer)
    except ValueError:
        return ""

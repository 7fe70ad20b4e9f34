"""Choosing a model in the widgets: the per-task model list, 'Load model file…', and the
signal that tells every open widget when the list of models changed."""

from __future__ import annotations

from magicgui.application import use_app
from magicgui.widgets import ComboBox, Container, PushButton
from napari.utils.notifications import show_error, show_info
from psygnal import Signal

from .. import api

WIDGET_NAMES = {"semantic": "U-Net segmentation", "instances": "Mask R-CNN instances"}


class _ModelEvents:
    """Tells every open widget that the list of models changed."""

    changed = Signal()


model_events = _ModelEvents()


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

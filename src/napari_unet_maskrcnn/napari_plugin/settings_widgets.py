"""Widget fields made from the settings' declarations (:mod:`..core.settings`): label, default, range, tooltip.

:func:`setting_field` makes a spin box, check box or drop-down list for a
:class:`~..core.settings.Setting`; :class:`OptionalNumber` is a number with an "automatic" box, for
settings whose None means automatic (``diameter``): ticked = None (automatic), else the number,
where 0 means what it means in the API and on the command line (``diameter`` 0 = off, native scale).
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, LineEdit, SpinBox
from magicgui.widgets.bases import ValuedContainerWidget

from ..core.settings import Setting

SPIN_LIMIT = 1_000_000
"""Largest value a spin box offers for a setting without an upper bound."""


def tooltip(setting: Setting) -> str:
    text = setting.help
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def setting_field(setting: Setting, **overrides: Any):
    """The widget of ``setting``: its label, starting value (``Setting.shown_default``), range and tooltip."""
    options: dict[str, Any] = dict(tooltip=tooltip(setting), value=setting.shown_default)
    if setting.kind is bool:
        options["text"] = setting.widget_label
    else:
        options["label"] = setting.widget_label
    if setting.kind in (int, float):
        low = setting.low if setting.low is not None else 0
        high = setting.high if setting.high is not None else SPIN_LIMIT
        options.update(min=low, max=high)
        if setting.step is not None:
            options["step"] = setting.step
    if setting.choices is not None:
        options["choices"] = list(setting.choices)
    options.update(overrides)
    if options.get("value") is None:
        options.pop("value")
    if setting.kind is bool:
        return CheckBox(**options)
    if setting.choices is not None:
        return ComboBox(**options)
    if setting.kind is int:
        return SpinBox(**options)
    if setting.kind is float:
        return FloatSpinBox(**options)
    return LineEdit(**options)


class OptionalNumber(ValuedContainerWidget):
    """A number with an "automatic" box: ``value`` is None while it is ticked, else the number.

    Setting ``value`` to None ticks the box; a number unticks it and shows the number.
    """

    def __init__(self, setting: Setting, *, auto_text: str = "automatic", number: float = 0.0, **overrides: Any):
        super().__init__(label=setting.widget_label, tooltip=tooltip(setting), layout="horizontal", labels=False)
        self.margins = (0, 0, 0, 0)
        self.setting = setting
        self.auto = CheckBox(text=auto_text, value=True, tooltip=tooltip(setting))
        spin = dict(min=setting.low if setting.low is not None else 0.0,
                    max=min(setting.high if setting.high is not None else SPIN_LIMIT, SPIN_LIMIT),
                    step=setting.step or 1.0, value=number, tooltip=tooltip(setting), **overrides)
        self.number = FloatSpinBox(**spin) if setting.kind is float else SpinBox(**spin)
        self._insert_widget(0, self.auto)
        self._insert_widget(1, self.number)
        self.auto.changed.connect(self._on_auto_changed)
        self.number.changed.connect(lambda _value: self.changed.emit(self.value))
        self.value = setting.default
        self._on_auto_changed()

    def _on_auto_changed(self, _value=None) -> None:
        self.number.enabled = not self.auto.value
        self.changed.emit(self.value)

    def get_value(self):
        return None if self.auto.value else self.number.value

    def set_value(self, value) -> None:
        if value is None:
            self.auto.value = True
            return
        self.number.value = value
        self.auto.value = False

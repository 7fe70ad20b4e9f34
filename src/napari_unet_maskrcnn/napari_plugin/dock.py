"""The base of the plugin's dock widgets: a magicgui Container that napari docks in a scroll area.

napari docks a magicgui widget's ``native``; magicgui's ``scrollable=True`` puts its layout in
a widget *inside* a ``QScrollArea`` and returns that inner widget as ``native``, so napari
would dock it without the scroll area (pyapp-kit/magicgui#431). Here ``native`` is the scroll
area itself: a dock is never taller than its contents need, and five docks fit a 768-pixel
screen (each scrolls instead of growing the window).

Width: a dock is as narrow as napari makes it (about 330 px at 1366 x 768), so nothing in it
may ask for more. Every widget put into a dock is fitted (:func:`fit_width`): drop-down lists
shrink to a few characters and elide their current text (the open list shows it whole), text
labels wrap instead of widening the dock (and stay as tall as their wrapped text), and a widget
without a name (Run / Cancel and the status line, a legend, a table) takes the whole width
instead of sitting after an empty name column; so the dock never scrolls sideways and no button
or line of text is clipped.
"""

from __future__ import annotations

from magicgui.widgets import Container
from magicgui.widgets.bases import Widget
from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QComboBox, QFrame, QLabel, QScrollArea, QSizePolicy, QWidget

COMBO_MIN_CHARACTERS = 8
"""Characters a drop-down list shows at its narrowest (its text elides beyond the dock's width)."""


class WrappedLabelHeights(QObject):
    """Keeps every wrapped label as tall as its text needs at its width.

    magicgui's labels have a fixed vertical size policy, so a layout gives a wrapped label the
    height of its size hint (two lines at some width), not what its text needs at the dock's
    width: a three-line status line was cut. The label's minimum height follows its
    ``heightForWidth`` when its width changes (Resize) or its text does (the parent's
    LayoutRequest after ``setText``); a dock short of room then scrolls instead.
    """

    def watch(self, label: QLabel) -> None:
        label.installEventFilter(self)
        if label.parentWidget() is not None:
            label.parentWidget().installEventFilter(self)
        fit_height(label)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Resize and isinstance(watched, QLabel):
            fit_height(watched)
        elif event.type() == QEvent.Type.LayoutRequest and isinstance(watched, QWidget):
            for label in watched.findChildren(QLabel, options=Qt.FindChildOption.FindDirectChildrenOnly):
                if label.wordWrap():
                    fit_height(label)
        return False


def fit_height(label: QLabel) -> None:
    """The wrapped ``label``'s minimum height: what its text needs at its width (0 without text)."""
    key = f"{label.width()}:{hash(label.text())}"
    if label.property(_FITTED) == key:  # our own change of the minimum asks for a new layout too
        return
    label.setProperty(_FITTED, key)
    label.setMinimumHeight(0)  # QLabel's heightForWidth is never below its minimum height
    label.setMinimumHeight(max(label.heightForWidth(label.width()), 0) if label.text() else 0)


_FITTED = "napari_unet_maskrcnn_fitted"
"""Label property: the width and text its minimum height was last fitted to."""


def fit_width(widget: QWidget, heights: WrappedLabelHeights | None = None) -> None:
    """Let ``widget`` and its children shrink to a dock's width: short combos, wrapping labels
    (kept as tall as their text by ``heights``)."""
    for combo in [widget, *widget.findChildren(QComboBox)]:
        if isinstance(combo, QComboBox):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(COMBO_MIN_CHARACTERS)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, combo.sizePolicy().verticalPolicy())
    for label in [widget, *widget.findChildren(QLabel)]:
        if isinstance(label, QLabel) and not _is_field_name(label):
            label.setWordWrap(True)
            if heights is not None:
                heights.watch(label)


def _is_field_name(label: QLabel) -> bool:
    """A field's name in magicgui's label column: short, and kept on one line."""
    return label.property("magicgui_field_name") is True


class DockContainer(Container):
    """A vertical magicgui Container whose ``native`` is a frameless ``QScrollArea``."""

    def __init__(self, **kwargs):
        super().__init__(scrollable=True, **kwargs)
        self.native.setFrameShape(QFrame.Shape.NoFrame)
        self._label_heights = WrappedLabelHeights(self.native)

    @property
    def native(self) -> QScrollArea:  # what napari docks
        return self.root_native_widget

    @property
    def body(self) -> QWidget:
        """The widget inside the scroll area that holds the layout."""
        return self.root_native_widget.widget()

    def _insert_widget(self, key: int, widget: Widget) -> None:
        super()._insert_widget(key, widget)
        labeled = getattr(widget, "_labeled_widget", lambda: None)()
        if labeled is not None:
            if widget.label:  # the field's name stays on one line beside it
                labeled._label_widget.native.setProperty("magicgui_field_name", True)
            else:  # no name (Run / Cancel, a status line, a legend): the whole width, not indented
                labeled._label_widget.native.hide()
        fit_width((labeled or widget).native, getattr(self, "_label_heights", None))

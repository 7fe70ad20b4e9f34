"""The base of the plugin's dock widgets: a magicgui Container that napari docks in a scroll area.

napari docks a magicgui widget's ``native``; magicgui's ``scrollable=True`` puts its layout in
a widget *inside* a ``QScrollArea`` and returns that inner widget as ``native``, so napari
would dock it without the scroll area (pyapp-kit/magicgui#431). Here ``native`` is the scroll
area itself: a dock is never taller than its contents need, and five docks fit a 768-pixel
screen (each scrolls instead of growing the window).
"""

from __future__ import annotations

from magicgui.widgets import Container
from qtpy.QtWidgets import QFrame, QScrollArea, QWidget


class DockContainer(Container):
    """A vertical magicgui Container whose ``native`` is a frameless ``QScrollArea``."""

    def __init__(self, **kwargs):
        super().__init__(scrollable=True, **kwargs)
        self.native.setFrameShape(QFrame.Shape.NoFrame)

    @property
    def native(self) -> QScrollArea:  # what napari docks
        return self.root_native_widget

    @property
    def body(self) -> QWidget:
        """The widget inside the scroll area that holds the layout."""
        return self.root_native_widget.widget()

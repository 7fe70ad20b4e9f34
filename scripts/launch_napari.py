"""Open napari with all five napari-unet-maskrcnn widgets docked (tabbed) and an image loaded.

    python scripts/launch_napari.py [IMAGE_FILE ...]

The files are opened with the plugin's reader (pixel size and axes kept); without files,
the 2D fluorescence nuclei sample is loaded. The widgets share one tabbed dock, so the
window fits a laptop screen (1366 x 768); the tabs carry short titles (U-Net, Mask R-CNN,
Evaluate, Measure, Train) so that all five are readable, and the first (U-Net segmentation)
is in front.
"""

from __future__ import annotations

import sys

import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QTabBar

PLUGIN = "napari-unet-maskrcnn"
WIDGETS = ("U-Net segmentation", "Mask R-CNN instances", "Evaluate segmentation", "Measure objects",
           "Train model")
TAB_TITLES = {"U-Net segmentation": "U-Net", "Mask R-CNN instances": "Mask R-CNN",
              "Evaluate segmentation": "Evaluate", "Measure objects": "Measure", "Train model": "Train"}


def dock_all(viewer) -> list:
    """Dock the five widgets as tabs of one dock area; return the dock widgets, first one in front."""
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)[0] for name in WIDGETS]
    for dock, name in zip(docks, WIDGETS):
        dock.setWindowTitle(TAB_TITLES[name])  # the tab's text; napari's title names the plugin too
    window = viewer.window._qt_window
    for bar in window.findChildren(QTabBar):  # a tab never shows as "Me…": the bar scrolls instead
        bar.setElideMode(bar.elideMode().ElideNone)
    docks[0].raise_()
    # Qt builds the dock area's tab bar when it next lays the window out, and the last tab added
    # is then current: raise the first one again once that is done.
    QTimer.singleShot(0, docks[0].raise_)
    return docks


def main(paths: list[str]) -> None:
    viewer = napari.Viewer()
    if paths:
        viewer.open(paths, plugin=PLUGIN)
    else:
        viewer.open_sample(PLUGIN, "nuclei-2d")
    dock_all(viewer)
    napari.run()


if __name__ == "__main__":
    main(sys.argv[1:])

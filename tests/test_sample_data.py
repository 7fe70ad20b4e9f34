"""Sample data: valid layer data, small files, reproducible from scripts/make_sample_data.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unet_maskrcnn.napari_plugin import samples as _sample_data

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = {
    # loader: (shape, dtype, scale, axes, rgb)
    "nuclei_2d": ((256, 256), np.uint16, (0.325, 0.325), "YX", False),
    "nuclei_3d": ((16, 128, 128), np.uint16, (1.0, 0.5, 0.5), "ZYX", False),
    "tissue_rgb": ((256, 256, 3), np.uint8, (0.5, 0.5), "YXC", True),
    "cell": ((660, 550), np.uint8, (1.0, 1.0), "YX", False),
}


@pytest.mark.parametrize("loader", sorted(SAMPLES))
def test_samples_are_valid_layer_data(loader):
    shape, dtype, scale, axes, rgb = SAMPLES[loader]

    ((data, kwargs, layer_type),) = getattr(_sample_data, loader)()

    assert layer_type == "image"
    assert data.shape == shape and data.dtype == dtype
    np.testing.assert_allclose(kwargs["scale"], scale)
    assert kwargs["metadata"]["axes"] == axes
    assert kwargs.get("rgb", False) == rgb
    assert data.min() < data.max()


def test_fluorescence_samples_use_a_16_bit_range():
    ((data, _, _),) = _sample_data.nuclei_2d()
    assert 100 <= data.min() < 400 and 4000 < data.max() < 65535


def test_sample_files_are_small_and_reproducible(tmp_path):
    shipped = sorted((ROOT / "src" / "napari_unet_maskrcnn" / "napari_plugin" / "sample_data").glob("*.tif"))
    assert [p.name for p in shipped] == ["nuclei_2d.tif", "nuclei_3d.tif", "tissue_rgb.tif"]
    assert sum(p.stat().st_size for p in shipped) < 1_000_000

    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_data.py"), str(tmp_path)],
                   check=True)

    for path in shipped:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name

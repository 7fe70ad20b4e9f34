"""Sample data: valid layer data with origin and licence, small files, reproducible by scripts/make_sample_data.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unet_maskrcnn.napari_plugin import samples as _sample_data

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_data"
DATA = ROOT.parent / "shared" / "data"
SAMPLES = {
    # loader: (shape, dtype, scale, axes, rgb, words in the source)
    "nuclei_2d": ((256, 320), np.uint8, (1.0, 1.0), "YX", False, "DSB2018"),
    "nuclei_he": ((256, 320, 3), np.uint8, (1.0, 1.0), "YXC", True, "DSB2018"),
    "phase_cells": ((512, 512), np.uint16, (1.0, 1.0), "YX", False, "Usiigaci"),
    "tissue_he": ((448, 448, 3), np.uint8, (1.0, 1.0), "YXC", True, "EBHI-Seg"),
    "nuclei_3d": ((16, 128, 128), np.uint16, (1.0, 0.5, 0.5), "ZYX", False, "SYNTHETIC"),
}


@pytest.mark.parametrize("loader", sorted(SAMPLES))
def test_samples_are_valid_layer_data_with_their_origin(loader):
    shape, dtype, scale, axes, rgb, origin = SAMPLES[loader]

    ((data, kwargs, layer_type),) = getattr(_sample_data, loader)()

    assert layer_type == "image"
    assert data.shape == shape and data.dtype == dtype
    np.testing.assert_allclose(kwargs["scale"], scale)
    metadata = kwargs["metadata"]
    assert metadata["axes"] == axes
    assert kwargs.get("rgb", False) == rgb
    assert data.min() < data.max()
    assert origin in metadata["source"] and metadata["license"] and metadata["model"]
    assert ("synthetic" in kwargs["name"]) == (origin == "SYNTHETIC")


def test_every_sample_file_is_listed_with_its_licence():
    sources = (SAMPLE_DIR / "SOURCES.md").read_text()
    shipped = sorted(p.name for p in SAMPLE_DIR.glob("*.tif"))
    assert shipped == sorted(_sample_data.SOURCES)
    for name, source in _sample_data.SOURCES.items():
        assert name in sources and source["license"].split(",")[0] in sources


def test_sample_files_are_small():
    for path in SAMPLE_DIR.glob("*.tif"):
        assert path.stat().st_size <= 2_000_000, path.name


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data (DSB2018, Usiigaci, EBHI-Seg) is absent")
def test_sample_files_are_reproducible(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_data.py"), str(tmp_path),
                    "--data", str(DATA)], check=True)

    for path in SAMPLE_DIR.glob("*.tif"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_validation_lists_hold_the_real_samples():
    """The real samples come from images held out of every bundled model's training."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_sample_data as made

    held_out = {name: set((ROOT / "recipes" / f"{name}_val.txt").read_text().split())
                for name in ("dsb2018", "usiigaci", "ebhi")}
    assert {made.DSB_FLUORESCENCE, made.DSB_HE} <= held_out["dsb2018"]
    assert made.USIIGACI_SET in held_out["usiigaci"]
    assert set(made.EBHI_TILES) <= held_out["ebhi"]

"""The npe2 manifest: valid, the one napari finds when installed, and shipped in the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from npe2 import PluginManifest

ROOT = Path(__file__).resolve().parent.parent
DIST = "napari-unet-maskrcnn"


def test_npe2_validate_with_imports():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", DIST, "--imports"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_installed_manifest_is_the_root_napari_yaml():
    installed = PluginManifest.from_distribution(DIST)
    root = PluginManifest.from_file(ROOT / "napari.yaml")
    assert installed.model_dump(exclude={"package_metadata"}) == root.model_dump(
        exclude={"package_metadata"}
    )
    widgets = [w.display_name for w in installed.contributions.widgets]
    assert widgets == [
        "U-Net segmentation", "Mask R-CNN instances", "Evaluate segmentation", "Measure objects",
        "Train model",
    ]
    assert [s.key for s in installed.contributions.sample_data] == [
        "nuclei-2d", "nuclei-he", "phase-cells", "tissue-he", "nuclei-3d"
    ]


def test_package_manifest_is_a_link_to_the_root_file():
    package_manifest = ROOT / "src" / "napari_unet_maskrcnn" / "napari.yaml"
    assert package_manifest.resolve() == (ROOT / "napari.yaml").resolve()
    assert yaml.safe_load(package_manifest.read_text())["name"] == DIST


def test_importing_the_package_loads_neither_torch_nor_napari():
    code = (
        "import sys, napari_unet_maskrcnn as p; "
        "assert p.__version__ and callable(p.list_models); "
        "print(sorted(m for m in ('torch', 'napari', 'qtpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a clean copy of the checkout (so the build leaves the checkout untouched)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source, symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                      ".pytest_cache", "tests", "benchmarks"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", ".",
         "-w", str(tmp_path / "wheel"), "--quiet"],
        cwd=source, check=True,
    )
    (built,) = (tmp_path / "wheel").glob("napari_unet_maskrcnn-*.whl")
    return built


def test_wheel_ships_the_manifest_and_sample_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("napari_unet_maskrcnn/napari.yaml") == (ROOT / "napari.yaml").read_bytes()
        samples = sorted((ROOT / "sample_data").iterdir())  # the top-level folder, copied in by setup.py
        assert len(samples) == 6  # five images and SOURCES.md
        for sample in samples:
            shipped = archive.read(f"napari_unet_maskrcnn/sample_data/{sample.name}")
            assert shipped == sample.read_bytes()
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "napari-unet-maskrcnn = napari_unet_maskrcnn:napari.yaml" in archive.read(
            entry_points
        ).decode()


def test_sample_loaders_find_the_files_in_an_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
         "--target", str(target), str(wheel)],
        check=True,
    )
    code = (
        "import napari_unet_maskrcnn as p; from napari_unet_maskrcnn.napari_plugin import samples; "
        "print(p.__file__); print(samples.sample_data_dir()); "
        "print(*(getattr(samples, f)()[0][0].shape for f in "
        "('nuclei_2d', 'nuclei_he', 'phase_cells', 'tissue_he', 'nuclei_3d')), sep=';')"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}  # ahead of the editable install's src/
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=tmp_path, check=True)
    package, folder, shapes = result.stdout.strip().splitlines()
    assert Path(package).is_relative_to(target)
    assert Path(folder) == target / "napari_unet_maskrcnn" / "sample_data"
    assert shapes == "(256, 320);(256, 320, 3);(512, 512);(448, 448, 3);(16, 128, 128)"


def test_sample_loaders_find_the_top_level_folder_in_the_checkout():
    """The editable install (the test environment) has no copy: the loaders read ROOT/sample_data."""
    import napari_unet_maskrcnn
    from napari_unet_maskrcnn.napari_plugin import samples

    if not Path(napari_unet_maskrcnn.__file__).is_relative_to(ROOT / "src"):
        pytest.skip("the package is not imported from this checkout (not an editable install)")

    assert Path(str(samples.sample_data_dir())) == ROOT / "sample_data"
    assert not (ROOT / "src" / "napari_unet_maskrcnn" / "sample_data").exists()
    ((data, kwargs, _),) = samples.nuclei_2d()
    assert data.shape == (256, 320) and "DSB2018" in kwargs["metadata"]["source"]

"""The npe2 manifest: valid, the one napari finds when installed, and shipped in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

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


def test_wheel_ships_the_manifest_and_sample_data(tmp_path):
    source = tmp_path / "source"  # a clean copy, so the build leaves the checkout untouched
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
    (wheel,) = (tmp_path / "wheel").glob("napari_unet_maskrcnn-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("napari_unet_maskrcnn/napari.yaml") == (ROOT / "napari.yaml").read_bytes()
        samples = sorted((ROOT / "src" / "napari_unet_maskrcnn" / "napari_plugin" / "sample_data").iterdir())
        assert len(samples) == 6  # five images and SOURCES.md
        for sample in samples:
            shipped = archive.read(f"napari_unet_maskrcnn/napari_plugin/sample_data/{sample.name}")
            assert shipped == sample.read_bytes()
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "napari-unet-maskrcnn = napari_unet_maskrcnn:napari.yaml" in archive.read(
            entry_points
        ).decode()

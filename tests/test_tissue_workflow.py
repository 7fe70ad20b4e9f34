"""Cells per tissue region: measure_objects in the API and ``unet-maskrcnn measure``, and the whole
path (unet-tissue classes + maskrcnn-nuclei instances + Measure) on the H&E tissue sample through
the API, the CLI and the Measure objects widget."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_unet_maskrcnn import api, cli
from napari_unet_maskrcnn.napari_plugin import samples


def cells_in_two_regions():
    """Objects 1 (10 x 10) and 2 (4 x 4) in class 1 (left half), 3 (2 x 5) in class 2 (right half)."""
    labels = np.zeros((20, 40), np.uint16)
    labels[2:12, 2:12] = 1
    labels[14:18, 4:8] = 2
    labels[14:16, 30:35] = 3
    classes = np.ones((20, 40), np.uint8)
    classes[:, 20:] = 2
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[..., 0] = 10
    rgb[labels == 3] = (200, 100, 50)
    return labels, classes, rgb


def test_api_counts_cells_per_region_with_rgb_intensities():
    labels, classes, rgb = cells_in_two_regions()

    measured = api.measure_objects(labels, rgb, regions=classes,
                                   class_names=["background", "stroma", "gland"], spacing=(0.5, 0.5))

    assert list(measured.objects["region"]) == ["stroma", "stroma", "gland"]
    assert list(measured.objects["mean_intensity_red"]) == pytest.approx([10, 10, 200])
    summary = measured.summary
    assert summary["region"] == ["stroma", "gland", "all"]
    assert summary["cells"] == [2, 1, 3]
    assert summary["region_area_um2"] == pytest.approx([100, 100, 200])  # 400 px of 0.25 µm²
    assert summary["density_per_mm2"] == pytest.approx([2 / 100e-6, 1 / 100e-6, 3 / 200e-6])  # per mm²
    assert summary["mean_cell_area_um2"] == pytest.approx([(100 + 16) / 2 * 0.25, 2.5, 126 / 3 * 0.25])


def test_api_without_regions_gives_one_summary_row():
    labels, _, _ = cells_in_two_regions()

    measured = api.measure_objects(labels)

    assert measured.summary["region"] == ["all"] and measured.summary["cells"] == [3]
    assert "region_id" not in measured.summary and "region" not in measured.objects
    assert "density_per_px" in measured.summary


def test_cli_measure_writes_both_tables(tmp_path, capsys):
    labels, classes, rgb = cells_in_two_regions()
    tifffile.imwrite(tmp_path / "nuclei.tif", labels, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "YX", "unit": "um"})
    tifffile.imwrite(tmp_path / "classes.tif", classes)
    tifffile.imwrite(tmp_path / "image.tif", rgb, photometric="rgb")

    status = cli.main(["measure", "--instances", str(tmp_path / "nuclei.tif"), "--image",
                       str(tmp_path / "image.tif"), "--regions", str(tmp_path / "classes.tif"),
                       "--class-names", "background,stroma,gland", "--output", str(tmp_path / "cells.csv")])

    assert status == 0
    objects = pd.read_csv(tmp_path / "cells.csv")
    assert list(objects["region"]) == ["stroma", "stroma", "gland"]
    assert list(objects["area_calibrated"]) == pytest.approx([25, 4, 2.5])
    summary = pd.read_csv(tmp_path / "cells_regions.csv")
    assert list(summary["region"]) == ["stroma", "gland", "all"] and list(summary["cells"]) == [2, 1, 3]
    assert list(summary["density_per_mm2"]) == pytest.approx([20_000, 10_000, 15_000])
    assert "stroma" in capsys.readouterr().out


def test_cli_measure_refuses_a_colour_image_as_labels(tmp_path, capsys):
    _, _, rgb = cells_in_two_regions()
    tifffile.imwrite(tmp_path / "image.tif", rgb, photometric="rgb")

    status = cli.main(["measure", "--instances", str(tmp_path / "image.tif"),
                       "--output", str(tmp_path / "cells.csv")])

    assert status == 2 and not (tmp_path / "cells.csv").exists()
    assert "--instances" in capsys.readouterr().err


# The whole path on the real tissue sample (needs the bundled unet-tissue weights).

def _tissue_model_installed() -> bool:
    return any(m.name == "unet-tissue" and m.available for m in api.list_models())


needs_tissue_model = pytest.mark.skipif(
    not _tissue_model_installed(), reason="the bundled unet-tissue weights are not installed yet")


@pytest.fixture(scope="module")
def tissue_run():
    """(image, tissue SemanticResult, nuclei InstanceResult, Measurements) on the H&E tissue sample."""
    ((image, _, _),) = samples.tissue_he()
    tissue = api.segment_semantic(image, "unet-tissue", device="cpu")
    nuclei = api.segment_instances(image, "maskrcnn-nuclei", device="cpu", **samples.tissue_nuclei_options())
    measured = api.measure_objects(nuclei.labels, image, regions=tissue.classes,
                                   class_names=tissue.class_names)
    return image, tissue, nuclei, measured


@pytest.mark.slow
@needs_tissue_model
def test_nuclei_per_tissue_class_on_the_sample(tissue_run):
    image, tissue, nuclei, measured = tissue_run
    summary = measured.summary

    assert tissue.class_names == ["background", "gland"]
    gland_fraction = float(np.mean(tissue.classes == 1))
    assert 0.35 < gland_fraction < 0.6  # the EBHI-Seg masks: 0.48 of the pixels
    assert summary["region"] == ["background", "gland", "all"]
    assert summary["cells"][2] == len(np.unique(nuclei.labels)) - 1
    assert summary["cells"][0] + summary["cells"][1] == summary["cells"][2]
    assert summary["region_area_px"][0] + summary["region_area_px"][1] == image.shape[0] * image.shape[1]
    assert all(np.isfinite(summary["density_per_px"]))
    assert all(0 < size < 500 for size in summary["mean_cell_area_px"] if np.isfinite(size))


@pytest.mark.slow
@needs_tissue_model
def test_cli_measure_on_the_sample_matches_the_api(tissue_run, tmp_path, capsys):
    image, tissue, nuclei, measured = tissue_run
    tifffile.imwrite(tmp_path / "nuclei.tif", nuclei.labels.astype(np.uint16))
    tifffile.imwrite(tmp_path / "classes.tif", tissue.classes)
    tifffile.imwrite(tmp_path / "tissue.tif", image, photometric="rgb")

    status = cli.main(["measure", "--instances", str(tmp_path / "nuclei.tif"), "--regions",
                       str(tmp_path / "classes.tif"), "--image", str(tmp_path / "tissue.tif"),
                       "--class-names", ",".join(tissue.class_names),
                       "--output", str(tmp_path / "nuclei.csv"), "--summary", str(tmp_path / "tissue.csv")])

    assert status == 0
    with open(tmp_path / "tissue.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["region"] for row in rows] == measured.summary["region"]
    assert [int(row["cells"]) for row in rows] == measured.summary["cells"]
    assert [float(row["density_per_px"]) for row in rows] == pytest.approx(measured.summary["density_per_px"])


@pytest.mark.slow
@needs_tissue_model
def test_measure_widget_on_the_sample_matches_the_api(tissue_run, viewer, dock, run_widget):
    _, tissue, nuclei, measured = tissue_run
    (image_layer,) = viewer.open_sample("napari-unet-maskrcnn", "tissue-he")
    classes = viewer.add_labels(tissue.classes, name="H&E tissue classes", features=pd.DataFrame(
        {"index": range(len(tissue.class_names)), "class_name": tissue.class_names}))
    viewer.add_labels(nuclei.labels, name="H&E tissue instances")
    widget = dock("Measure objects")
    widget.objects.value = viewer.layers["H&E tissue instances"]
    widget.intensities.value = image_layer
    widget.regions.value = classes

    run_widget(widget)  # Measure runs in a worker: wait for it

    summary = widget.summary.frame
    assert list(summary["region"]) == measured.summary["region"]
    assert list(summary["cells"]) == measured.summary["cells"]
    assert list(summary["mean_cell_area_px"]) == pytest.approx(measured.summary["mean_cell_area_px"], nan_ok=True)


@pytest.mark.slow
@needs_tissue_model
def test_nuclei_are_counted_in_both_tissue_classes(tissue_run):
    if not samples.tissue_nuclei_options():
        pytest.skip("maskrcnn-nuclei does not record its training diameter, so the sample's small "
                    "nuclei (about 5 px) cannot be enlarged to match it")
    _, _, _, measured = tissue_run

    background, gland, _ = measured.summary["cells"]
    assert background >= 30 and gland >= 10

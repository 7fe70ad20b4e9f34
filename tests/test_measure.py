"""Object measurements and region summaries, on shapes whose values are known by hand."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_unet_maskrcnn.core.measure import assign_regions, measure_instances, region_summary


def square_and_disc():
    """10 x 10 square (label 1, rows/columns 2..11) and a disc of radius 8 (label 4, centre (30, 30))."""
    labels = np.zeros((40, 45), np.uint16)
    labels[2:12, 2:12] = 1
    labels[disk((30, 30), 8)] = 4
    return labels


def test_size_position_and_shape_with_a_pixel_size():
    labels = square_and_disc()
    table = measure_instances(labels, spacing=(0.5, 0.5))
    assert table["label"].tolist() == [1, 4]
    disc_area = np.count_nonzero(labels == 4)
    assert table["area"].tolist() == [100, disc_area]
    np.testing.assert_allclose(table["area_calibrated"], [25.0, disc_area * 0.25])
    np.testing.assert_allclose([table["centroid_y"][0], table["centroid_x"][0]], [6.5, 6.5])
    np.testing.assert_allclose([table["centroid_y"][1], table["centroid_x"][1]], [30, 30])
    assert [table[f"bbox_{c}"][0] for c in ("y0", "x0", "y1", "x1")] == [2, 2, 12, 12]
    # perimeter through the boundary pixels' centres: 4 sides of 9 pixels
    assert table["perimeter"][0] == pytest.approx(36)
    assert table["perimeter_calibrated"][0] == pytest.approx(18)
    assert table["circularity"][0] == pytest.approx(4 * np.pi * 100 / 36**2)
    assert table["perimeter"][1] == pytest.approx(2 * np.pi * 8, rel=0.1)
    assert table["circularity"][1] == pytest.approx(1, abs=0.1)
    # a square's second moments: variance (10² - 1) / 12 along each axis, axis length 4 sqrt(var)
    np.testing.assert_allclose(table["axis_major_length"][0], 4 * np.sqrt(99 / 12))
    np.testing.assert_allclose(table["axis_minor_length_calibrated"][0], 2 * np.sqrt(99 / 12))
    np.testing.assert_allclose(table["eccentricity"], 0, atol=0.05)
    np.testing.assert_allclose(table["solidity"][0], 1)


def test_without_spacing_there_are_no_calibrated_columns():
    table = measure_instances(square_and_disc())
    assert not [name for name in table if name.endswith("_calibrated")]


def test_perimeter_needs_square_pixels():
    table = measure_instances(square_and_disc(), spacing=(1.0, 0.5))
    assert "perimeter_calibrated" not in table
    # along y the square is 10 x 1 µm, along x 10 x 0.5 µm
    np.testing.assert_allclose(table["axis_major_length_calibrated"][0], 4 * np.sqrt(99 / 12))
    np.testing.assert_allclose(table["axis_minor_length_calibrated"][0], 2 * np.sqrt(99 / 12))


def test_intensity_statistics():
    labels = square_and_disc()
    image = np.zeros(labels.shape, np.uint16)
    image[2:7, 2:12] = 10  # top half of the square
    image[7:12, 2:12] = 20
    image[labels == 4] = 7
    table = measure_instances(labels, image)
    np.testing.assert_allclose(table["mean_intensity"], [15, 7])
    np.testing.assert_allclose(table["min_intensity"], [10, 7])
    np.testing.assert_allclose(table["max_intensity"], [20, 7])
    np.testing.assert_allclose(table["std_intensity"], [5, 0])
    np.testing.assert_allclose(table["integrated_intensity"], [1500, 7 * np.count_nonzero(labels == 4)])


def test_channels_get_their_names():
    labels = square_and_disc()
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    rgb[..., 1] = 100
    table = measure_instances(labels, rgb, channel_axis=-1, channel_names=["red", "green", "blue"])
    np.testing.assert_allclose(table["mean_intensity_green"], [100, 100])
    np.testing.assert_allclose(table["mean_intensity_red"], [0, 0])
    channels_first = np.moveaxis(rgb, -1, 0)
    table = measure_instances(labels, channels_first, channel_axis=0)
    np.testing.assert_allclose(table["integrated_intensity_ch1"], [10000, 100 * np.count_nonzero(labels == 4)])


def test_image_of_another_size_is_refused():
    with pytest.raises(ValueError, match="same size"):
        measure_instances(square_and_disc(), np.zeros((10, 10)))


def test_3d_volume_with_anisotropic_voxels():
    labels = np.zeros((8, 20, 20), np.int32)
    labels[2:6, 5:15, 5:15] = 3  # 4 x 10 x 10 voxels of 2 x 0.5 x 0.5 µm
    table = measure_instances(labels, spacing=(2.0, 0.5, 0.5))
    assert table["area"].tolist() == [400]
    np.testing.assert_allclose(table["area_calibrated"], [400 * 2 * 0.5 * 0.5])  # 200 µm³
    np.testing.assert_allclose([table[f"centroid_{a}"][0] for a in "zyx"], [3.5, 9.5, 9.5])
    np.testing.assert_allclose(table["extent"], [1])
    # the ellipsoid with the same second moments has axes sqrt(20 var): variances along z
    # (4² - 1) / 12 voxels² = 5 µm², along y and x 99 / 12 voxels² = 2.0625 µm²
    np.testing.assert_allclose(table["axis_major_length"], [np.sqrt(20 * 99 / 12)])
    np.testing.assert_allclose(table["axis_major_length_calibrated"], [np.sqrt(20 * 5)])
    np.testing.assert_allclose(table["axis_minor_length_calibrated"], [np.sqrt(20 * 99 / 48)])
    assert "perimeter" not in table and "solidity" not in table


def test_empty_labels_give_an_empty_table():
    table = measure_instances(np.zeros((8, 8), np.int32), np.ones((8, 8)), spacing=(1, 1))
    assert {"label", "area", "area_calibrated", "mean_intensity"} <= set(table)
    assert all(len(column) == 0 for column in table.values())


def regions_and_cells():
    """Region 1 = left 20 columns, region 2 = right 20 columns of a 10 x 40 image.

    Cell 1: 6 pixels in region 1, 4 in region 2 -> region 1. Cells 2 and 3: in region 2.
    """
    regions = np.ones((10, 40), np.uint8)
    regions[:, 20:] = 2
    labels = np.zeros((10, 40), np.int32)
    labels[0, 14:24] = 1
    labels[5:7, 30:32] = 2
    labels[8, 35:38] = 3
    return labels, regions


def test_each_cell_gets_the_region_of_most_of_its_pixels():
    labels, regions = regions_and_cells()
    regions[0:2, 0:4] = 0  # outside the tissue
    labels[0:2, 0:3] = 5
    assigned = assign_regions(labels, regions, class_names=["outside", "stroma", "tumour"])
    assert assigned["label"].tolist() == [1, 2, 3, 5]
    assert assigned["region_id"].tolist() == [1, 2, 2, 0]
    assert assigned["region"].tolist() == ["stroma", "tumour", "tumour", "outside"]
    unnamed = assign_regions(labels, regions)
    assert unnamed["region"].tolist() == ["class 1", "class 2", "class 2", "background"]


def test_region_summary_by_hand():
    labels, regions = regions_and_cells()
    image = np.full(labels.shape, 4.0)
    image[labels == 2] = 10
    table = measure_instances(labels, image, spacing=(0.5, 0.5))
    table.update(assign_regions(labels, regions, ["background", "stroma", "tumour"]))
    summary = region_summary(table, regions, spacing=(0.5, 0.5), class_names=["background", "stroma", "tumour"])
    assert summary["region"] == ["stroma", "tumour", "all"]
    assert summary["region_id"] == [1, 2, None]
    assert summary["cells"] == [1, 2, 3]
    # each region: 10 x 20 pixels of 0.25 µm² = 50 µm²; the image 100 µm²
    assert summary["region_area_um2"] == pytest.approx([50, 50, 100])
    # 1 cell per 50 µm² = 20 000 per mm²
    assert summary["density_per_mm2"] == pytest.approx([20_000, 40_000, 30_000])
    # cell areas: 10, 4, 3 pixels = 2.5, 1, 0.75 µm²
    assert summary["mean_cell_area_um2"] == pytest.approx([2.5, 0.875, 4.25 / 3])
    assert summary["mean_intensity"] == pytest.approx([4, 7, 6])


def test_region_summary_in_pixels_and_in_3d():
    labels, regions = regions_and_cells()
    table = {**measure_instances(labels), **assign_regions(labels, regions)}
    summary = region_summary(table, regions)
    assert summary["region_area_px"] == [200, 200, 400]
    assert summary["density_per_px"] == pytest.approx([1 / 200, 2 / 200, 3 / 400])
    assert summary["region"] == ["class 1", "class 2", "all"]

    volume_labels, volume_regions = np.stack([labels] * 2), np.stack([regions] * 2)
    table = {**measure_instances(volume_labels), **assign_regions(volume_labels, volume_regions)}
    summary = region_summary(table, volume_regions, spacing=(1.0, 10.0, 10.0))
    # each region: 400 voxels of 100 µm³ = 0.04 mm³... per mm³: 1 cell / 4e-5 mm³
    assert summary["region_area_um3"] == pytest.approx([40_000, 40_000, 80_000])
    assert summary["density_per_mm3"] == pytest.approx([1 / 4e-5, 2 / 4e-5, 3 / 8e-5])
    assert summary["mean_cell_area_um3"][0] == pytest.approx(20 * 100)


def test_region_summary_of_no_cells():
    labels, regions = np.zeros((6, 6), np.int32), np.ones((6, 6), np.uint8)
    table = {**measure_instances(labels), **assign_regions(labels, regions)}
    summary = region_summary(table, regions)
    # one region: no "all" row repeating it
    assert summary["region"] == ["class 1"]
    assert summary["cells"] == [0] and summary["density_per_px"] == [0.0]
    assert np.isnan(summary["mean_cell_area_px"][0])


def test_instance_labels_are_not_a_region_map():
    labels, _ = regions_and_cells()
    with pytest.raises(ValueError, match="not instance labels"):
        assign_regions(labels, np.arange(400).reshape(10, 40) * 10)
    with pytest.raises(ValueError, match="same image"):
        assign_regions(labels, np.zeros((5, 5), np.uint8))


def test_time_lapses_are_measured_per_time_point_by_the_generator():
    from napari_unet_maskrcnn.core.measure import iter_measure_objects, measure_objects
    from napari_unet_maskrcnn.core.progress import drain

    labels = square_and_disc()
    movie = np.stack([labels, np.where(labels == 1, 1, 0)])
    image = np.ones((2, *labels.shape, 3), np.uint8)
    events = []
    objects, summary = drain(iter_measure_objects(movie, image=image, channel_axis=3, time_lapse=True),
                             on_progress=events.append)
    assert [(e.done, e.total, e.stage) for e in events] == [(1, 2, "time point"), (2, 2, "time point")]
    assert objects["t"].tolist() == [0, 0, 1] and objects["label"].tolist() == [1, 4, 1]
    assert summary["t"].tolist() == [0, 1] and summary["cells"].tolist() == [2, 1]
    single = measure_objects(labels, image[0], channel_axis=2)
    np.testing.assert_array_equal(objects["area"][:2], single[0]["area"])
    assert "mean_intensity_ch2" in objects

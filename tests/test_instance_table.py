"""Per-instance table: hand-checked values in 2D and 3D, calibration, empty images."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_maskrcnn.core.instance_table import instance_table

NAMES = ["cell", "nucleus"]
COLUMNS_2D = {
    "label", "class_id", "class_name", "score", "area",
    "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1", "centroid_y", "centroid_x",
}  # fmt: skip


def labels_2d():
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[2:5, 3:7] = 1  # 3 x 4 rectangle
    labels[8, 10] = 3  # a single pixel; label 2 is absent
    return labels


def test_2d_values_by_hand():
    table = instance_table(labels_2d(), [0.9, 0.5, 0.7], [1, 2, 2], NAMES)
    assert set(table) == COLUMNS_2D
    assert table["label"].tolist() == [1, 3]
    assert table["class_id"].tolist() == [1, 2]
    assert table["class_name"].tolist() == ["cell", "nucleus"]
    np.testing.assert_allclose(table["score"], [0.9, 0.7])
    assert table["area"].tolist() == [12, 1]
    np.testing.assert_allclose(table["centroid_y"], [3.0, 8.0])
    np.testing.assert_allclose(table["centroid_x"], [4.5, 10.0])
    assert (table["bbox_y0"].tolist(), table["bbox_x0"].tolist()) == ([2, 8], [3, 10])
    assert (table["bbox_y1"].tolist(), table["bbox_x1"].tolist()) == ([5, 9], [7, 11])
    assert "area_calibrated" not in table


def test_calibrated_area():
    table = instance_table(labels_2d(), [0.9, 0.5, 0.7], [1, 2, 2], NAMES, spacing=(0.5, 0.25))
    np.testing.assert_allclose(table["area_calibrated"], [12 * 0.125, 0.125])
    with pytest.raises(ValueError, match="spacing"):
        instance_table(labels_2d(), [0.9, 0.5, 0.7], [1, 2, 2], NAMES, spacing=(1.0,))


def test_3d_values_by_hand():
    labels = np.zeros((4, 6, 6), dtype=np.uint16)
    labels[1:3, 0:2, 4:6] = 1  # 2 x 2 x 2 cube
    labels[3, 5, 0] = 2
    table = instance_table(labels, np.array([0.8, 0.6]), np.array([2, 1]), NAMES, spacing=(2.0, 0.5, 0.5))
    assert table["area"].tolist() == [8, 1]
    np.testing.assert_allclose(table["area_calibrated"], [4.0, 0.5])
    np.testing.assert_allclose(table["centroid_z"], [1.5, 3.0])
    np.testing.assert_allclose(table["centroid_y"], [0.5, 5.0])
    np.testing.assert_allclose(table["centroid_x"], [4.5, 0.0])
    assert [table[f"bbox_{a}0"][0] for a in "zyx"] == [1, 0, 4]
    assert [table[f"bbox_{a}1"][0] for a in "zyx"] == [3, 2, 6]
    assert table["class_name"].tolist() == ["nucleus", "cell"]


def test_random_3d_labels_match_numpy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, size=(3, 17, 13)).astype(np.int32)
    labels[labels == 7] = 0  # one id absent
    table = instance_table(labels, rng.random(19), rng.integers(1, 3, 19), NAMES)
    ids = [i for i in range(1, 20) if (labels == i).any()]
    assert table["label"].tolist() == ids
    for row, label in enumerate(ids):
        z, y, x = np.nonzero(labels == label)
        assert table["area"][row] == z.size
        np.testing.assert_allclose([table["centroid_z"][row], table["centroid_y"][row], table["centroid_x"][row]],
                                   [z.mean(), y.mean(), x.mean()])
        assert [table[f"bbox_{a}0"][row] for a in "zyx"] == [z.min(), y.min(), x.min()]
        assert [table[f"bbox_{a}1"][row] for a in "zyx"] == [z.max() + 1, y.max() + 1, x.max() + 1]


@pytest.mark.parametrize("shape", [(8, 9), (2, 8, 9)])
def test_empty_image_gives_empty_columns(shape):
    table = instance_table(np.zeros(shape, np.int32), [], [], NAMES, spacing=(1.0,) * len(shape))
    assert "area_calibrated" in table and f"centroid_{'z' if len(shape) == 3 else 'y'}" in table
    assert all(len(column) == 0 for column in table.values())


def test_inconsistent_inputs_are_explained():
    with pytest.raises(ValueError, match="up to 3"):
        instance_table(labels_2d(), [0.9], [1], NAMES)
    with pytest.raises(ValueError, match="class id 5"):
        instance_table(labels_2d(), [0.9, 0.5, 0.7], [5, 1, 1], NAMES)
    with pytest.raises(ValueError, match="2D"):
        instance_table(np.zeros(5, np.int32), [], [], NAMES)

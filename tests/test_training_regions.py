"""Training only where the user annotated: regions, their crops and targets, pairs from stacks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_maskrcnn.core.inputs import prepare_plane
from napari_unet_maskrcnn.core.model_file import read_spec
from napari_unet_maskrcnn.core.testing import TINY_CONFIGS
from napari_unet_maskrcnn.core.training import TrainConfig, TrainingPair, loop, train_maskrcnn, train_unet
from napari_unet_maskrcnn.core.training.augment import NO_AUGMENTATION
from napari_unet_maskrcnn.core.training.data import PAD_LABEL, RegionSource, restrict_to_region
from napari_unet_maskrcnn.core.training.regions import (
    check_label_kind,
    objects_region,
    plane_pairs,
    polygons_region,
)

FAST = dict(crop=32, batch_size=4, amp=False, augment=NO_AUGMENTATION, val_fraction=0)
TRIANGLE = np.array([[2, 2], [2, 60], [60, 2]])  # rows, columns: the upper-left half of a 64 px square


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def half_annotated(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Bright discs on a dark background; only those in :data:`TRIANGLE` are labelled."""
    image = np.full((size, size), 10.0, np.float32)
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    centres = [(15, 15), (15, 40), (40, 15), (75, 75), (80, 30), (30, 80)]
    for label, (cy, cx) in enumerate(centres, start=1):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 36
        image[disc] = 200.0
        if label <= 3:  # the first three lie inside the triangle; the others are not annotated
            labels[disc] = label
    return image, labels


def recorded_crops(monkeypatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (image, labels) crop the training loop samples from now on."""
    crops = []
    original = loop.random_sample

    def record(*args, **kwargs):
        crops.append(original(*args, **kwargs))
        return crops[-1]

    monkeypatch.setattr(loop, "random_sample", record)
    return crops


def test_objects_region_is_the_objects_grown_by_the_margin():
    labels = np.zeros((40, 40), np.uint16)
    labels[10, 10] = 3
    region = objects_region(labels, margin=5)
    assert region[10, 15] and region[14, 13] and not region[10, 16] and not region[15, 15]
    np.testing.assert_array_equal(objects_region(labels, margin=0), labels > 0)


def test_polygons_region_is_the_union_of_the_shapes():
    rectangle = np.array([[0, 0], [0, 4], [4, 4], [4, 0]])
    triangle = np.array([[10, 10], [10, 19], [19, 10]])
    region = polygons_region((20, 20), [rectangle, triangle, np.zeros((2, 2))])  # a line: no area
    assert region[:4, :4].all() and not region[5:9].any()
    assert region[11, 11] and region[11, 17] and not region[18, 18]


def test_a_region_reads_as_its_bounding_box_blank_outside():
    image, labels = half_annotated()
    region = polygons_region(image.shape, [TRIANGLE])
    source = prepare_plane(image, 1)
    view, box_labels = restrict_to_region(source, labels, region, PAD_LABEL)
    assert isinstance(view, RegionSource) and view.shape == box_labels.shape == (59, 59)
    window = view.read(0, 59, 0, 59)[0]
    inside = region[view.box]
    np.testing.assert_array_equal(window[inside], source.read(2, 61, 2, 61)[0][inside])
    assert np.all(window[~inside] == 0) and np.all(box_labels[~inside] == PAD_LABEL)
    assert restrict_to_region(source, labels, None, 0) == (source, labels)


@pytest.mark.parametrize("arch", ["maskrcnn", "unet"])
def test_crops_never_show_unannotated_objects(arch, monkeypatch):
    """Bright pixels in a crop always carry an object label: nothing unannotated becomes background."""
    image, labels = half_annotated()
    region = polygons_region(image.shape, [TRIANGLE])
    crops = recorded_crops(monkeypatch)
    config = TrainConfig(epochs=3, **FAST)
    if arch == "maskrcnn":
        tiny = dict(TINY_CONFIGS["maskrcnn"])
        train_maskrcnn([TrainingPair(image, labels, "a", region=region)], config=config,
                       backbone=tiny.pop("backbone"), fpn_channels=tiny.pop("fpn_channels"), builder_options=tiny)
        outside_label = 0
    else:
        train_unet([TrainingPair(image, labels, "a", region=region)], config=config, depth=2, base_width=8)
        outside_label = PAD_LABEL
    assert crops
    for crop_image, crop_labels in crops:
        assert np.all(crop_labels[crop_image[0] > 0.5] > 0)
        assert set(np.unique(crop_labels)) <= {outside_label, 0, 1, 2, 3}
    assert any(np.any(crop_labels == outside_label) for _, crop_labels in crops)

    crops.clear()  # the same image without a region: the unannotated discs are taught as background
    train_unet([TrainingPair(image, labels, "a")], config=TrainConfig(epochs=6, **FAST), depth=2, base_width=8)
    assert any(np.any(crop_labels[crop_image[0] > 0.5] == 0) for crop_image, crop_labels in crops)


def test_regions_train_and_validate_a_mask_rcnn(tmp_path):
    image, labels = half_annotated()
    region = polygons_region(image.shape, [TRIANGLE])
    pairs = [TrainingPair(image, labels, name, region=region) for name in ("train", "val")]
    tiny = dict(TINY_CONFIGS["maskrcnn"])
    result = train_maskrcnn(pairs, output=tmp_path / "m.safetensors", backbone=tiny.pop("backbone"),
                            fpn_channels=tiny.pop("fpn_channels"), builder_options=tiny,
                            config=TrainConfig(epochs=1, **{**FAST, "val_fraction": 0.5}))
    assert result.path.is_file() and "ap50" in result.best_metrics
    assert read_spec(result.path).provenance["data"]["n_with_region"] == 2


def test_an_empty_or_misshapen_region_is_refused():
    image, labels = half_annotated()
    with pytest.raises(ValueError, match="region is empty"):
        TrainingPair(image, labels, "a", region=np.zeros_like(labels, bool))
    with pytest.raises(ValueError, match="region has shape"):
        TrainingPair(image, labels, "a", region=np.ones((3, 3), bool))


def test_stacks_give_one_pair_per_annotated_slice():
    image = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)
    labels = np.zeros((4, 32, 32), np.uint8)
    labels[1, 5:9, 5:9] = 1
    labels[3, 20:25, 20:25] = 2
    pairs = plane_pairs(image, labels, "ZYX", name="cells", margin=2)
    assert [pair.name for pair in pairs] == ["cells z1", "cells z3"]
    np.testing.assert_array_equal(pairs[1].image, image[3])
    assert pairs[0].region[3:11, 5:9].all() and pairs[0].region[5:9, 3:11].all() and not pairs[0].region[12:].any()

    (current,) = plane_pairs(image, labels, "ZYX", name="cells", planes=[(0, 3)], region="image")
    assert current.name == "cells z3" and current.region is None
    with pytest.raises(ValueError, match="no labelled pixel in the chosen slice"):
        plane_pairs(image, labels, "ZYX", name="cells", planes=[(0, 2)])

    square = np.array([[0, 0], [0, 10], [10, 10], [10, 0]])  # an empty annotated area still counts
    drawn = plane_pairs(image, labels, "ZYX", name="cells", region="polygons", polygons=[((0, 2), square)])
    assert [pair.name for pair in drawn] == ["cells z2"] and drawn[0].labels.max() == 0


def test_colour_images_and_shape_mismatches():
    rgb = np.zeros((16, 16, 3), np.uint8)
    labels = np.zeros((16, 16), np.uint8)
    labels[4:8, 4:8] = 1
    (pair,) = plane_pairs(rgb, labels, "YXC", name="rgb")
    assert pair.image.shape == (16, 16, 3) and pair.name == "rgb"
    with pytest.raises(ValueError, match="choose labels drawn on this image"):
        plane_pairs(rgb, labels[:8], "YXC", name="rgb")


def test_labels_of_the_wrong_kind_are_refused():
    instances = np.arange(64 * 64).reshape(64, 64) % 50
    with pytest.raises(ValueError, match="look like instance labels"):
        check_label_kind(instances, "classes", "cells")
    strokes = np.zeros((40, 40), np.uint8)
    strokes[::4] = 1  # ten separate strokes of class 1, ten of class 2
    strokes[2::4] = 2
    with pytest.raises(ValueError, match="look like class strokes"):
        check_label_kind(strokes, "instances", "strokes")
    check_label_kind(strokes, "classes", "strokes")
    check_label_kind(instances, "instances", "cells")

"""Group-balanced sampling (core/training/groups.py) and the 'robust' augmentation preset."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from napari_unet_maskrcnn.core.inputs import prepare_plane
from napari_unet_maskrcnn.core.settings import AUGMENT_RECIPES
from napari_unet_maskrcnn.core.training import TrainConfig
from napari_unet_maskrcnn.core.training.augment import (
    AUGMENT_PRESETS,
    NO_AUGMENTATION,
    _HED_FROM_RGB,
    _RGB_FROM_HED,
    degrade,
    is_grey,
    random_sample,
    read_scaled_crop,
)
from napari_unet_maskrcnn.core.training.data import crops_per_image, epoch_order
from napari_unet_maskrcnn.core.training.groups import (
    APPEARANCE_GROUPS,
    PHASE_GROUPS,
    MODALITIES,
    SMALL_FRAME,
    appearance_group,
    phase_group,
    balanced_epoch_order,
    group_weights,
    modality,
)


# -- the modality rule ---------------------------------------------------------------------------

def test_modality_rule_on_tiny_images():
    dark = np.full((8, 8), 10, np.uint8)
    dark[2:4, 2:4] = 200
    assert modality(dark) == "fluorescence"
    assert modality(255 - dark) == "brightfield"
    rgba = np.dstack([dark, dark, dark, np.full_like(dark, 255)])
    assert modality(rgba) == "fluorescence"  # grey stored as RGBA
    pink = np.dstack([np.full((8, 8), 230), np.full((8, 8), 150), np.full((8, 8), 200)]).astype(np.uint8)
    assert modality(pink) == "stained"
    # 16-bit images are mapped to 0..255 first: a dim 16-bit fluorescence image stays fluorescence
    assert modality(dark.astype(np.uint16) * 20) == "fluorescence"
    assert modality((255 - dark).astype(np.uint16) * 20) == "brightfield"
    assert modality(np.zeros((4, 4), np.float32)) == "fluorescence"


def test_appearance_groups_split_fluorescence_by_frame_size():
    small = np.full((SMALL_FRAME, 200), 10, np.uint8)
    large = np.full((SMALL_FRAME + 1, 200), 10, np.uint8)
    pink = np.dstack([np.full((400, 400), 230), np.full((400, 400), 150), np.full((400, 400), 200)]).astype(np.uint8)
    found = [appearance_group(small), appearance_group(large), appearance_group(pink), appearance_group(255 - large)]
    assert found == ["fluorescence-small", "fluorescence-large", "stained", "brightfield"]
    assert set(found) == set(APPEARANCE_GROUPS)


def test_evaluate_bundled_uses_the_same_rule():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "evaluate_bundled.py"
    spec = importlib.util.spec_from_file_location("evaluate_bundled_for_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.modality is modality and module.MODALITIES == MODALITIES


# -- group-balanced epochs -----------------------------------------------------------------------

SHAPES = [(64, 64)] * 8 + [(128, 128)] * 2 + [(64, 64)]
GROUPS = ["fluorescence"] * 8 + ["stained"] * 2 + ["brightfield"]


def _plain_length(shapes, crop=64, max_crops=4):
    return sum(crops_per_image(shape, crop, max_crops) for shape in shapes)


def test_balanced_epoch_keeps_the_length_and_shares_equally():
    rng = np.random.default_rng(0)
    order = balanced_epoch_order(SHAPES, GROUPS, 64, 4, rng)
    assert order.dtype == np.int64 and len(order) == _plain_length(SHAPES) == 13
    counts = Counter(GROUPS[i] for i in order)
    assert sorted(counts.values()) == [4, 4, 5]  # 13 crops (the 128 px images give 2 each) over 3 groups
    assert len(order) == len(epoch_order(SHAPES, 64, 4, np.random.default_rng(0)))


def test_balanced_epoch_over_samples_a_rare_group_evenly():
    rng = np.random.default_rng(1)
    order = balanced_epoch_order(SHAPES, GROUPS, 64, 4, rng, group_weights([0.0, 0.0, 1.0]))
    assert set(order.tolist()) == {10} and len(order) == 13
    # stained only: two 128 px images (2 crops each) fill 13 crops: 6 and 7
    order = balanced_epoch_order(SHAPES, GROUPS, 64, 4, rng, group_weights([0.0, 1.0, 0.0]))
    assert sorted(Counter(order.tolist()).values()) == [6, 7]


def test_balanced_epoch_under_samples_without_repeats():
    rng = np.random.default_rng(2)
    order = balanced_epoch_order(SHAPES, GROUPS, 64, 4, rng, group_weights([1.0, 1.0, 1.0]))
    fluorescence = [i for i in order if GROUPS[i] == "fluorescence"]
    assert len(fluorescence) == len(set(fluorescence)) >= 4  # 4-5 of the 8 images, none twice


def test_balanced_epoch_stated_weights_and_missing_groups():
    shapes, groups = [(64, 64)] * 10, ["fluorescence"] * 6 + ["stained"] * 4
    order = balanced_epoch_order(shapes, groups, 64, 4, np.random.default_rng(3), group_weights([3, 1, 1]))
    counts = Counter(groups[i] for i in order)
    assert counts == {"fluorescence": 8, "stained": 2}  # brightfield absent: its share goes to the others
    with pytest.raises(ValueError, match="one weight per group"):
        group_weights([1.0, 2.0])
    with pytest.raises(ValueError, match=">= 0"):
        group_weights([0, 0, 0])
    with pytest.raises(ValueError, match="positive weight"):
        balanced_epoch_order(shapes, groups, 64, 4, np.random.default_rng(0), group_weights([0, 0, 1]))


def test_config_checks_group_weights():
    assert TrainConfig(balance_groups=[]).resolved("maskrcnn").balance_groups == []
    with pytest.raises(ValueError):
        TrainConfig(balance_groups=[1.0]).resolved("maskrcnn")


# -- augmentations -------------------------------------------------------------------------------

def _disc_image(size=48, channels=1):
    yy, xx = np.mgrid[:size, :size]
    labels = ((yy - size // 2) ** 2 + (xx - size // 2) ** 2 < (size // 5) ** 2).astype(np.int64)
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    if channels == 3:
        image = np.repeat(image[..., None], 3, -1)
    return image, labels


def _he_image(size=32):
    """Three colours (white background, pink stroma, purple nuclei): colour after per-channel normalisation."""
    _, labels = _disc_image(size)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = (245, 240, 245)
    image[:, : size // 3] = (230, 150, 200)
    image[labels == 1] = (90, 60, 150)
    return image, labels


def test_anisotropic_crop_stretches_one_axis():
    image, labels = _disc_image(48)
    source = prepare_plane(image, 1)
    crop, crop_labels = read_scaled_crop(source, labels, 48, (1.0, 0.5), np.random.default_rng(0))
    assert crop.shape == (1, 48, 48) and crop_labels.shape == (48, 48)
    rows, cols = np.nonzero(crop_labels == 1)
    assert np.ptp(rows) > 1.6 * np.ptp(cols)  # squeezed across: twice as tall as wide
    # the labels stay on the bright pixels
    assert crop[0][crop_labels == 1].mean() > crop[0][crop_labels == 0].mean() + 0.5


def test_is_grey():
    grey = np.repeat(np.random.default_rng(0).random((1, 8, 8), dtype=np.float32), 3, 0)
    assert is_grey(grey) and is_grey(grey[:1])
    colour = grey.copy()
    colour[0] += 0.3
    assert not is_grey(colour)


def test_degrade_blurs_and_dims_towards_the_background():
    image, _ = _disc_image(32)
    crop = (image[np.newaxis] / 200.0).astype(np.float32)
    blur = replace(NO_AUGMENTATION, blur_probability=1.0, blur_sigma=(2.0, 2.0))
    blurred = degrade(crop, np.random.default_rng(0), blur)
    assert blurred.shape == crop.shape and blurred.dtype == np.float32
    assert np.abs(np.diff(blurred[0], axis=1)).max() < np.abs(np.diff(crop[0], axis=1)).max()
    assert abs(blurred.mean() - crop.mean()) < 0.01
    dim = replace(NO_AUGMENTATION, dim_probability=1.0, dim_range=(0.5, 0.5))
    dimmed = degrade(crop, np.random.default_rng(0), dim)
    background = np.median(crop)
    np.testing.assert_allclose(dimmed, background + 0.5 * (crop - background), atol=1e-5)
    assert degrade(crop, np.random.default_rng(0), NO_AUGMENTATION) is crop


def test_stain_jitter_uses_skimage_hed_and_spares_grey_crops():
    from skimage.color import hed_from_rgb, rgb_from_hed

    np.testing.assert_allclose(_RGB_FROM_HED, rgb_from_hed, atol=1e-6)
    np.testing.assert_allclose(_HED_FROM_RGB, hed_from_rgb, atol=1e-6)
    stain_only = replace(NO_AUGMENTATION, stain_jitter=0.3, colour_only_stain=True)
    image, labels = _disc_image(32, channels=3)
    grey_crop, _ = random_sample(prepare_plane(image, 3), labels, 32, np.random.default_rng(0), stain_only)
    assert is_grey(grey_crop)  # a grey image stays grey
    colour, labels = _he_image(32)
    colour_crop, _ = random_sample(prepare_plane(colour, 3), labels, 32, np.random.default_rng(0), stain_only)
    plain, _ = random_sample(prepare_plane(colour, 3), labels, 32, np.random.default_rng(0), NO_AUGMENTATION)
    assert not is_grey(plain)
    assert np.abs(colour_crop - plain).mean() > 1e-3  # jittered


def test_inversion_only_for_grey_crops():
    invert = replace(NO_AUGMENTATION, invert_probability=1.0, invert_grey_only=True)
    image, labels = _disc_image(32)
    crop, crop_labels = random_sample(prepare_plane(image, 1), labels, 32, np.random.default_rng(0), invert)
    assert crop[0][crop_labels == 1].mean() < crop[0][crop_labels == 0].mean()  # dark objects, light field
    colour, labels = _he_image(32)
    plain, _ = random_sample(prepare_plane(colour, 3), labels, 32, np.random.default_rng(0), NO_AUGMENTATION)
    kept, _ = random_sample(prepare_plane(colour, 3), labels, 32, np.random.default_rng(0), invert)
    np.testing.assert_allclose(kept, plain)


@pytest.mark.parametrize("preset", ["robust", "robust-lowres"])
def test_robust_presets_give_finite_aligned_crops(preset):
    robust = AUGMENT_PRESETS[preset]
    assert robust.anisotropic and robust.colour_only_stain
    rng = np.random.default_rng(5)
    for channels in (1, 3):
        image, labels = _disc_image(40, channels)
        source = prepare_plane(image, channels)
        for _ in range(10):
            crop, crop_labels = random_sample(source, labels, 32, rng, robust)
            assert crop.shape == (channels, 32, 32) and crop.dtype == np.float32
            assert np.isfinite(crop).all() and crop_labels.shape == (32, 32)
            assert set(np.unique(crop_labels)) <= {-1, 0, 1}


def test_robust_lowres_never_inverts_and_keeps_the_recipes_declared():
    assert AUGMENT_PRESETS["robust-lowres"].invert_probability == 0.0
    assert set(AUGMENT_RECIPES) == set(AUGMENT_PRESETS)


def test_lowres_crop_loses_fine_detail_but_keeps_labels_and_mean():
    """Shrunk x2-x2 and enlarged back: the same labels, the same mean, a blurred checkerboard."""
    lowres = replace(NO_AUGMENTATION, lowres_probability=1.0, lowres_range=(2.0, 2.0))
    checker = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32) * 200 + 20
    labels = np.zeros((64, 64), np.int64)
    labels[16:48, 16:48] = 1
    source = prepare_plane(checker, 1)
    plain, plain_labels = random_sample(source, labels, 64, np.random.default_rng(0), NO_AUGMENTATION)
    blurred, blurred_labels = random_sample(source, labels, 64, np.random.default_rng(0), lowres)
    np.testing.assert_array_equal(blurred_labels, plain_labels)
    assert abs(float(blurred.mean()) - float(plain.mean())) < 0.02 * float(np.ptp(plain))
    assert float(np.abs(np.diff(blurred, axis=2)).mean()) < 0.1 * float(np.abs(np.diff(plain, axis=2)).mean())


def test_phase_groups_by_cell_size_and_crowding():
    large = np.zeros((400, 400), np.int32)
    large[50:120, 50:120] = 1  # ~79 px equivalent diameter
    small_dense = np.zeros((100, 100), np.int32)
    small_sparse = np.zeros((400, 400), np.int32)
    for k, (y, x) in enumerate([(0, 0), (0, 50), (50, 0)], start=1):
        small_dense[y:y + 40, x:x + 40] = k  # 45 px cells covering 48 % of the frame
        small_sparse[y:y + 40, x:x + 40] = k  # the same cells covering 3 %
    found = [phase_group(large), phase_group(small_dense), phase_group(small_sparse)]
    assert found == ["large-cells", "small-cells-dense", "small-cells-sparse"]
    assert set(found) == set(PHASE_GROUPS)
    assert phase_group(np.zeros((10, 10), np.int32)) == "small-cells-sparse"

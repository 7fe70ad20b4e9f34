"""The object-size estimator: scale-space descriptor, shift-equivariant regressor, bundled weights."""

import numpy as np
import pytest
from skimage.draw import disk
from skimage.transform import rescale

from napari_unet_maskrcnn.core import size_estimator
from napari_unet_maskrcnn.core.inputs import prepare_plane
from napari_unet_maskrcnn.core.size_estimator import (
    BINS_PER_OCTAVE,
    FEATURES,
    N_SCALES,
    SizeEstimate,
    SizeRegressor,
    bundled_regressor,
    estimate_diameter,
    scale_space_descriptor,
)


def soft_discs(shape, diameter, spacing_factor=3.0, seed=0):
    """Blurred bright discs of ``diameter`` px at jittered grid positions with noise: float32 (H, W)."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    step = int(diameter * spacing_factor)
    for cy in range(step // 2, shape[0] - step // 2, step):
        for cx in range(step // 2, shape[1] - step // 2, step):
            jitter = rng.integers(-step // 6, step // 6 + 1, 2)
            rr, cc = disk((cy + jitter[0], cx + jitter[1]), diameter / 2, shape=shape)
            image[rr, cc] = 0.6 + 0.4 * rng.random()
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image, max(diameter / 12, 0.7)) + rng.normal(0, 0.03, shape).astype(np.float32)


def test_descriptor_shape_and_contrast_invariance():
    image = soft_discs((256, 256), 16)
    descriptor = scale_space_descriptor(image)
    assert descriptor.shape == (len(FEATURES), N_SCALES)
    assert np.allclose(descriptor.max(axis=1), 0.0)  # each curve's shape only
    assert np.allclose(scale_space_descriptor(5 * image + 3), descriptor, atol=1e-3)


def test_an_enlarged_image_moves_the_descriptor_along_the_scale_axis():
    small = soft_discs((256, 256), 12)
    large = rescale(small, 2.0, order=1)  # one octave: BINS_PER_OCTAVE bins
    a, b = scale_space_descriptor(small), scale_space_descriptor(large)
    shift = BINS_PER_OCTAVE
    inner = slice(6, N_SCALES - shift - 6)  # away from both ends and the finest, pixel-bound scales
    core = [FEATURES.index(name) for name in ("bright_mean", "gradient_mean", "bright_peaks")]
    assert np.abs(a[core, inner] - b[core, inner.start + shift:inner.stop + shift]).mean() < 0.15


def test_the_regressor_is_shift_equivariant_and_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    tensors = {"conv0.weight": rng.normal(0, 0.3, (4, len(FEATURES), 5)), "conv0.bias": rng.normal(0, 0.1, 4),
               "conv1.weight": rng.normal(0, 0.3, (4, 4, 5)), "conv1.bias": rng.normal(0, 0.1, 4),
               "conv2.weight": rng.normal(0, 0.3, (1, 4, 5)), "conv2.bias": rng.normal(0, 0.1, 1),
               "offset": np.array([1.5])}
    regressor = SizeRegressor(tensors)
    x = np.zeros((len(FEATURES), N_SCALES))
    x[:, 10:14] = rng.normal(0, 1, (len(FEATURES), 4))
    shifted = np.roll(x, BINS_PER_OCTAVE, axis=1)  # the descriptor of the image enlarged x2
    # away from the padded ends, the bin probabilities move with the descriptor (up to normalisation)
    ratio = np.log(regressor.distribution(shifted)[8:24]) - np.log(regressor.distribution(x)[4:20])
    assert np.allclose(ratio, ratio[0], atol=1e-9)
    h = torch.tensor(x[None])
    for i in range(3):
        h = torch.nn.functional.conv1d(h, torch.tensor(tensors[f"conv{i}.weight"]),
                                       torch.tensor(tensors[f"conv{i}.bias"]), padding=2)
        h = torch.relu(h) if i < 2 else h
    expected = torch.softmax(h[0, 0], 0).numpy()
    assert np.allclose(regressor.distribution(x), expected, atol=1e-9)


@pytest.mark.parametrize("diameter", [8, 20, 50])
def test_the_bundled_estimator_finds_soft_discs_within_a_third(diameter):
    image = soft_discs((512, 512), diameter, seed=diameter)
    found = estimate_diameter(prepare_plane(image, 1))
    assert found is not None and abs(np.log2(found.diameter / diameter)) < np.log2(4 / 3), found


def test_the_estimate_follows_an_enlarged_image():
    image = soft_discs((384, 384), 14, seed=3)
    native = estimate_diameter(prepare_plane(image, 1)).diameter
    enlarged = estimate_diameter(prepare_plane(rescale(image, 2.0, order=1), 1)).diameter
    assert enlarged / native == pytest.approx(2.0, rel=0.2)


def test_tiny_and_constant_planes_give_no_estimate():
    assert estimate_diameter(prepare_plane(np.ones((64, 64), np.float32), 1)) is None
    assert estimate_diameter(prepare_plane(np.random.default_rng(0).random((8, 8)), 1)) is None


def test_bundled_weights_record_their_provenance():
    record = size_estimator.provenance(bundled_regressor())
    assert record["trained_by"] == "scripts/train_size_estimator.py"
    assert set(record["group_held_out_validation"]) >= {"stained", "phase"}
    assert 0.0 < record["mean_over_groups"]["median_abs_log2_error"] < 1.0


def test_large_objects_in_a_large_plane_are_found_through_the_wide_look():
    image = soft_discs((2048, 2048), 160, spacing_factor=2.5, seed=5)  # ~12 x 12 discs, 2 across one window
    found = estimate_diameter(prepare_plane(image, 1))
    assert found is not None and abs(np.log2(found.diameter / 160)) < np.log2(4 / 3), found
    assert found.confident  # the central window alone holds few discs and is unsure (spread 0.9)


class _ScriptedRegressor:
    """Answers the central window's look, then the wide look's (in the wide look's shrunk pixels)."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def estimate(self, descriptor):
        return self.answers.pop(0)


@pytest.mark.parametrize(("wide", "confident"), [(20.0, True), (40.0, False)])
def test_window_and_wide_look_more_than_an_octave_apart_make_the_estimate_unsure(wide, confident):
    plane = prepare_plane(soft_discs((2048, 2048), 20, seed=1), 1)  # wide look: 2 windows across, shrunk x2
    found = estimate_diameter(plane, _ScriptedRegressor(SizeEstimate(30.0, 0.5), SizeEstimate(wide, 0.6)))
    assert found.diameter == 30.0 and found.spread == 0.5  # the sharper look's answer
    assert found.disagreement == pytest.approx(abs(np.log2(2 * wide / 30.0)))
    assert found.confident is confident
    assert ("apart" in found.doubt()) is not confident


def test_training_script_balances_groups_in_the_loss():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "train_size_estimator.py"
    spec = importlib.util.spec_from_file_location("train_size_estimator_for_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    groups = np.array(["fluorescence"] * 90 + ["phase"] * 10)
    assert np.allclose(module.group_weights(groups, 0.0), 1.0)  # the default: every sample alike
    balanced = module.group_weights(groups, 1.0)
    assert balanced.mean() == pytest.approx(1.0)
    assert balanced[groups == "phase"].sum() == pytest.approx(balanced[groups == "fluorescence"].sum())
    half = module.group_weights(groups, 0.5)  # shares as sqrt(size): 3 to 1
    assert half[groups == "fluorescence"].sum() / half[groups == "phase"].sum() == pytest.approx(3.0)

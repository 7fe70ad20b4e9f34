"""prepare_plane / PlaneSource: dtypes, NaN and inf, normalisation, channels, bounded statistics."""

import warnings

import numpy as np
import pytest

from napari_unet_maskrcnn.core import inputs
from napari_unet_maskrcnn.core.inputs import OUTPUT_RANGE, SAMPLE_PIXELS, channel_mixes, prepare_plane

DTYPES = [bool, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
          np.float16, np.float32, np.float64]


def ramp(shape=(40, 50), dtype=np.uint16, top=1000):
    """A (H, W) plane rising from 0 to ``top`` (bool: alternating rows)."""
    if dtype is bool:
        return np.indices(shape)[0] % 2 == 1
    return np.linspace(0, top, shape[0] * shape[1]).reshape(shape).astype(dtype)


def reference(plane, low=1.0, high=99.8):
    values = np.asarray(plane, np.float64)
    p_low, p_high = np.percentile(values, [low, high])
    return np.clip((values - p_low) / (p_high - p_low), *OUTPUT_RANGE)


def read_all(source):
    return source.read(0, source.shape[0], 0, source.shape[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_reads_finite_normalised_float32(dtype):
    plane = ramp(dtype=dtype, top=100)
    source = prepare_plane(plane, 1)
    out = source.read(3, 20, 5, 45)
    assert source.shape == (40, 50) and source.channels == 1
    assert out.dtype == np.float32 and out.shape == (1, 17, 40)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], reference(plane)[3:20, 5:45], atol=2e-3)


def test_large_integers_keep_their_precision():
    plane = (np.uint32(4_000_000_000) + np.arange(64 * 64, dtype=np.uint32)).reshape(64, 64)
    out = read_all(prepare_plane(plane, 1, normalization={"kind": "minmax"}))[0]
    np.testing.assert_allclose(out, (plane - plane.min()) / np.ptp(plane), atol=1e-6)


def test_nan_reads_as_zero_and_inf_as_the_finite_extremes():
    plane = ramp(dtype=np.float32)
    plane[0, 0], plane[5, 5], plane[6, 6] = np.nan, np.inf, -np.inf
    source = prepare_plane(plane, 1, normalization={"kind": "minmax"})
    out = read_all(source)[0]
    assert np.isfinite(out).all()
    assert out[0, 0] == 0.0
    assert out[5, 5] == pytest.approx(out.max()) and out[6, 6] == pytest.approx(out.min())
    assert np.isnan(plane[0, 0]), "the caller's array is never modified"


@pytest.mark.parametrize("value", [0.0, 7.0, np.nan])
def test_constant_and_all_nan_planes_read_as_zeros_without_warnings(value):
    plane = np.full((30, 30), value, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_all(prepare_plane(plane, 3))
    assert out.shape == (3, 30, 30) and not out.any()


def test_sparse_spots_fall_back_to_min_max():
    plane = np.zeros((100, 100), np.uint16)
    plane[50, 50] = 500  # 0.01% of the pixels: p1 == p99.8 == 0
    out = read_all(prepare_plane(plane, 1))[0]
    assert out[50, 50] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)


def test_output_is_clipped_to_the_documented_range_unless_disabled():
    plane = ramp(dtype=np.float32)
    plane[0, 0] = 1e6  # a hot pixel
    assert read_all(prepare_plane(plane, 1))[0, 0, 0] == OUTPUT_RANGE[1]
    unclipped = read_all(prepare_plane(plane, 1, normalization={"kind": "percentile", "clip": None}))
    assert unclipped[0, 0, 0] > 100


def test_none_casts_only_and_stays_finite_for_huge_float64():
    plane = ramp(dtype=np.uint8, top=200)
    np.testing.assert_array_equal(read_all(prepare_plane(plane, 1, normalization={"kind": "none"}))[0], plane)
    huge = np.full((8, 8), 1e300)
    huge[0, 0] = -1e300
    for kind in ("none", "minmax", "percentile"):
        assert np.isfinite(read_all(prepare_plane(huge, 1, normalization={"kind": kind}))).all()


@pytest.mark.parametrize(
    "normalization, match",
    [({"kind": "zscore"}, "percentile, minmax, none"), ({"kind": "percentile", "low": 99, "high": 1}, "low < high"),
     ({"kind": "minmax", "clip": [1, 0]}, "clip")],
)
def test_bad_normalization_is_rejected(normalization, match):
    with pytest.raises(ValueError, match=match):
        prepare_plane(ramp(), 1, normalization=normalization)


def test_big_plane_uses_a_bounded_subsample_and_reads_correct_windows(monkeypatch):
    plane = np.random.default_rng(0).integers(0, 60000, (4000, 4000), dtype=np.uint16)
    sizes = []
    real = inputs._scaling
    monkeypatch.setattr(inputs, "_scaling", lambda values, *a: sizes.append(values.size) or real(values, *a))
    source = prepare_plane(plane, 1)
    assert sizes == [1000 * 1000] and sizes[0] <= SAMPLE_PIXELS
    p_low, p_high = np.percentile(plane[::4, ::4], [1.0, 99.8])
    window = source.read(1000, 1016, 2000, 2024)
    expected = np.clip((plane[1000:1016, 2000:2024] - p_low) / (p_high - p_low), *OUTPUT_RANGE)
    np.testing.assert_allclose(window[0], expected, atol=1e-5)


def test_greyscale_is_replicated_for_rgb_models():
    out = read_all(prepare_plane(ramp(), 3))
    assert out.shape == (3, 40, 50)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])


def test_rgb_becomes_mean_or_chosen_channel_for_grey_models():
    rgb = np.stack([ramp(top=100), ramp(top=200), ramp(top=300)], axis=-1).astype(np.uint16)
    mean = read_all(prepare_plane(rgb, 1))[0]
    np.testing.assert_allclose(mean, reference(rgb.mean(axis=-1)), atol=1e-5)
    rgb[..., 1] = rgb[..., 1][::-1]
    green = read_all(prepare_plane(rgb, 1, channel=1))[0]
    np.testing.assert_allclose(green, reference(rgb[..., 1]), atol=1e-5)
    assert read_all(prepare_plane(rgb, 3, channel=1)).shape == (3, 40, 50)


def test_rgb_keeps_its_channels_for_rgb_models():
    rgb = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = read_all(prepare_plane(rgb, 3))
    for c in range(3):
        np.testing.assert_allclose(out[c], reference(rgb[..., c]), atol=1e-5)


def test_rgba_drops_alpha_and_warns_once_only_when_translucent():
    rgba = np.random.default_rng(2).integers(0, 255, (32, 32, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opaque = read_all(prepare_plane(rgba, 3))
    np.testing.assert_allclose(opaque, read_all(prepare_plane(rgba[..., :3], 3)))
    rgba[0, 0, 3] = 10
    with pytest.warns(UserWarning, match="alpha") as record:
        translucent = read_all(prepare_plane(rgba, 1))
    assert len(record) == 1 and translucent.shape == (1, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_plane(rgba, 1, channel=3)


def test_multichannel_needs_a_channel_with_an_actionable_message():
    plane = np.random.default_rng(3).random((20, 20, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=r"image has 5 channels; choose which one to segment with channel=0\.\.4"):
        prepare_plane(plane, 1)
    out = read_all(prepare_plane(plane, 3, channel=4))
    np.testing.assert_allclose(out[2], reference(plane[..., 4]), atol=1e-5)


@pytest.mark.parametrize("channel", [5, -1])
def test_channel_out_of_range_names_the_valid_range(channel):
    with pytest.raises(ValueError, match=r"channel=0\.\.4"):
        prepare_plane(np.zeros((8, 8, 5), np.uint8), 1, channel=channel)


def test_two_channels_fill_an_rgb_model_with_a_zero_third_channel():
    plane = np.random.default_rng(4).random((16, 16, 2))
    out = read_all(prepare_plane(plane, 3))
    np.testing.assert_allclose(out[1], reference(plane[..., 1]), atol=1e-5)
    assert not out[2].any()
    assert channel_mixes(2, 2) == ([(0,), (1,)], False)


@pytest.mark.parametrize("plane", [np.zeros(10), np.zeros((2, 3, 4, 5)), np.zeros((0, 5)),
                                   np.zeros((4, 4), np.complex64)])
def test_bad_planes_are_rejected(plane):
    with pytest.raises(ValueError):
        prepare_plane(plane, 1)


def test_windows_outside_the_plane_are_rejected():
    source = prepare_plane(ramp(), 1)
    with pytest.raises(ValueError, match="outside"):
        source.read(0, 41, 0, 10)

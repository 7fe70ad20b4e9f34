"""Tiled semantic prediction: exact blending, no seams, progress, cancellation, bounded memory."""

import tracemalloc

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_unet_maskrcnn.core.models.unet import UNet
from napari_unet_maskrcnn.core.progress import ProgressEvent, drain
from napari_unet_maskrcnn.core.semantic import blend_ramp, predict_semantic_plane
from napari_unet_maskrcnn.core.tiling import tile_starts


class ArraySource:
    """Stand-in for ``inputs.PlaneSource`` over a float32 (C, H, W) array."""

    def __init__(self, image: np.ndarray):
        self.image = image.astype(np.float32)
        self.channels = image.shape[0]
        self.shape = image.shape[1:]

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return self.image[:, y0:y1, x0:x1].copy()


def _smooth_image(channels: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Blobby float32 (C, H, W) test image with unit standard deviation."""
    noise = np.random.default_rng(seed).normal(size=(channels, height, width))
    image = ndimage.gaussian_filter(noise, (0, 4, 4))
    return (image / image.std()).astype(np.float32)


def _pointwise_network(in_channels: int, num_classes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Conv2d(in_channels, num_classes, 1)


def _run(source, network, **settings):
    return drain(predict_semantic_plane(source, network, **settings))


@pytest.mark.parametrize("height, width", [(70, 101), (1, 90)])
def test_tiled_blending_is_exact_for_a_pointwise_network(height, width):
    source = ArraySource(_smooth_image(2, height, width))
    network = _pointwise_network(2, 3)
    tiled, tiled_probabilities = _run(
        source, network, tile=32, overlap=12, return_probabilities=True
    )
    whole, whole_probabilities = _run(
        source, network, tile=128, overlap=0, return_probabilities=True
    )
    assert tiled.dtype == np.uint8 and tiled.shape == (height, width)
    assert tiled_probabilities.dtype == np.float32
    assert tiled_probabilities.shape == (3, height, width)
    np.testing.assert_allclose(tiled_probabilities, whole_probabilities, atol=1e-5)
    np.testing.assert_array_equal(tiled, whole)
    np.testing.assert_allclose(tiled_probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert len(np.unique(whole)) > 1


def test_tiled_unet_has_no_seams():
    image = _smooth_image(1, 90, 130, seed=1)
    torch.manual_seed(1)
    network = UNet(1, 2, depth=2, base_width=8).eval()
    with torch.no_grad():  # balance the two classes so agreement is not trivially 100%
        logits = network(torch.from_numpy(image)[None])[0]
        network.head.bias -= logits.flatten(1).median(dim=1).values
    tiled, _ = _run(ArraySource(image), network, tile=48, overlap=24, batch_size=2)
    whole, _ = _run(ArraySource(image), network, tile=256, overlap=0)
    assert 0.2 < whole.mean() < 0.8
    assert (tiled == whole).mean() > 0.95


def test_plane_smaller_than_a_tile_is_one_tile():
    network = UNet(3, 2, depth=2, base_width=4)
    source = ArraySource(_smooth_image(3, 13, 29))
    gen = predict_semantic_plane(source, network, tile=64, overlap=16)
    events = []
    with pytest.raises(StopIteration) as stop:
        while True:
            events.append(next(gen))
    classes, probabilities = stop.value.value
    assert events == [ProgressEvent(1, 1, "tile")]
    assert classes.shape == (13, 29) and probabilities is None


def test_progress_counts_every_tile_and_batching_does_not_change_the_result():
    source = ArraySource(_smooth_image(1, 50, 75))
    network = _pointwise_network(1, 4)
    expected_tiles = len(tile_starts(50, 20, 15)) * len(tile_starts(75, 20, 15))
    results = {}
    for batch_size in (1, 3):
        events = []
        results[batch_size] = drain(
            predict_semantic_plane(source, network, tile=20, overlap=5, batch_size=batch_size),
            on_progress=events.append,
        )
        assert [event.done for event in events] == list(range(1, expected_tiles + 1))
        assert {(event.total, event.stage) for event in events} == {(expected_tiles, "tile")}
    np.testing.assert_array_equal(results[1][0], results[3][0])


def test_closing_midway_is_safe_and_leaves_autograd_alone():
    gen = predict_semantic_plane(
        ArraySource(_smooth_image(1, 40, 40)), _pointwise_network(1, 2), tile=16, overlap=4
    )
    assert next(gen) == ProgressEvent(1, 9, "tile")
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def test_memory_is_bounded_by_the_tile_not_the_image():
    """Without probabilities, peak numpy memory stays far below one (K, H, W) float array."""
    height = width = 2048
    num_classes = 8
    full_probabilities = num_classes * height * width * 4
    source = ArraySource(np.random.default_rng(0).normal(size=(1, height, width)))
    network = _pointwise_network(1, num_classes)
    peaks = {}
    for return_probabilities in (False, True):
        tracemalloc.start()
        try:
            _run(source, network, tile=128, overlap=16, return_probabilities=return_probabilities)
            peaks[return_probabilities] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks[False] < full_probabilities / 3
    assert peaks[True] >= full_probabilities  # the measurement does see a full-plane array


def test_blend_ramp_is_positive_and_partitions_unity_over_the_overlap():
    ramp = blend_ramp(40, 10)
    assert ramp.dtype == np.float32 and ramp.min() > 0 and ramp.max() == 1
    np.testing.assert_allclose(ramp[:10] + ramp[-10:], 1.0, atol=1e-6)
    np.testing.assert_array_equal(blend_ramp(5, 0), np.ones(5))


@pytest.mark.parametrize(
    "settings", [{"tile": 0}, {"tile": 16, "overlap": 16}, {"overlap": -1}, {"batch_size": 0}]
)
def test_invalid_settings_are_rejected(settings):
    source = ArraySource(np.zeros((1, 8, 8)))
    gen = predict_semantic_plane(source, _pointwise_network(1, 2), **settings)
    with pytest.raises(ValueError):
        next(gen)

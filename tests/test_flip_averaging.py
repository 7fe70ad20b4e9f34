"""Test-time flips: U-Net tiles averaged (exact on symmetric networks), Mask R-CNN detections fused;
same tiling and blocks either way."""

import numpy as np
import pytest
import torch

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core.flip_averaging import FlipAveraged


class _Columns(torch.nn.Module):
    """Class 1 logit = x position, so mirroring left-right changes the answer."""

    def forward(self, tiles):
        x = torch.linspace(-1, 1, tiles.shape[-1]).expand(tiles.shape[0], 1, *tiles.shape[-2:])
        return torch.cat([torch.zeros_like(x), 4 * x], dim=1)


def test_probabilities_are_the_mean_over_the_four_flips():
    tiles = torch.zeros(2, 1, 8, 10)
    log_mean = FlipAveraged(_Columns())(tiles)
    probabilities = torch.softmax(log_mean, dim=1)
    # The x ramp and its mirror average to p = (sigmoid(4x) + sigmoid(-4x)) / 2 = 0.5 everywhere.
    np.testing.assert_allclose(probabilities.numpy(), 0.5, atol=1e-6)
    assert probabilities.shape == (2, 2, 8, 10)


def test_a_flip_invariant_network_is_unchanged():
    network = torch.nn.Conv2d(1, 3, 3, padding=1, bias=True)
    with torch.no_grad():
        network.weight.copy_(torch.ones_like(network.weight))  # symmetric kernel
    tiles = torch.rand(1, 1, 12, 12)
    expected = torch.softmax(network(tiles), dim=1)
    got = torch.softmax(FlipAveraged(network)(tiles), dim=1)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), atol=1e-5)


def test_one_tile_equals_the_mean_of_the_flipped_images_probabilities(tiny_models):
    image = np.random.default_rng(1).random((40, 56)).astype(np.float32)
    flips = [(), (1,), (0,), (0, 1)]
    mean = np.mean([
        np.flip(api.segment_semantic(np.flip(image, dims), tiny_models["unet"], return_probabilities=True)
                .probabilities, [d + 1 for d in dims])
        for dims in flips
    ], axis=0)
    got = api.segment_semantic(image, tiny_models["unet"], return_probabilities=True, tta=True)
    np.testing.assert_allclose(got.probabilities, mean, atol=1e-5)


def test_in_memory_and_block_runs_agree(tiny_models, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((96, 80)).astype(np.float32)
    plain = api.segment_semantic(image, tiny_models["unet"], tile=64, overlap=16)
    flipped = api.segment_semantic(image, tiny_models["unet"], tile=64, overlap=16, tta=True)
    assert flipped.classes.shape == plain.classes.shape and flipped.classes.dtype == np.uint8
    blocks = api.segment_semantic(image, tiny_models["unet"], tile=64, overlap=16, tta=True,
                                  out=str(tmp_path / "classes.zarr"), block=48)
    np.testing.assert_array_equal(np.asarray(blocks.classes), flipped.classes)


def _blobs(shape=(64, 80)):
    """(1, H, W) image with three bright, asymmetric blobs, and its labels."""
    from skimage.draw import ellipse

    truth = np.zeros(shape, np.int32)
    for i, (cy, cx, ry, rx) in enumerate([(15, 20, 6, 11), (40, 55, 9, 5), (50, 15, 4, 4)], start=1):
        truth[ellipse(cy, cx, ry, rx, shape)] = i
    return (truth > 0).astype(np.float32)[None], truth


class _ArraySource:
    """Stand-in for inputs.PlaneSource over a float32 (C, H, W) array."""

    def __init__(self, image):
        self.image, self.shape = image, image.shape[1:]

    def read(self, y0, y1, x0, x1):
        return self.image[:, y0:y1, x0:x1]


def _blob_detector(image, keep=None):
    from napari_unet_maskrcnn.core.testing import blob_detections

    return blob_detections(image, threshold=0.5, score=0.9)


def test_a_flip_equivariant_detector_finds_the_same_objects():
    from napari_unet_maskrcnn.core.flip_averaging import FlipFusedDetector
    from napari_unet_maskrcnn.core.instances import predict_instances_plane
    from napari_unet_maskrcnn.core.progress import drain

    image, truth = _blobs()
    fused = FlipFusedDetector(_blob_detector, score_threshold=0.5)(image)
    np.testing.assert_allclose(fused["scores"], 0.9, atol=1e-6)  # found in all four views
    np.testing.assert_allclose(np.sort(fused["boxes"][:, 0]), np.sort(_blob_detector(image)["boxes"][:, 0]), atol=2)
    plane = drain(predict_instances_plane(_ArraySource(image), FlipFusedDetector(_blob_detector, score_threshold=0.5),
                                          tile=48, margin=16, min_size=1))
    plain = drain(predict_instances_plane(_ArraySource(image), _blob_detector, tile=48, margin=16, min_size=1))
    assert plane.labels.max() == plain.labels.max() == 3
    for ids in (plane.labels, plain.labels):  # every object whole, in its place
        for i in range(1, 4):
            overlap = np.bincount(ids[truth == i], minlength=4)
            assert overlap.argmax() > 0 and overlap.max() >= 0.9 * (truth == i).sum()
    assert np.mean((plane.labels > 0) == (truth > 0)) > 0.99


def test_objects_found_in_few_views_are_dropped_and_scores_are_view_means():
    from napari_unet_maskrcnn.core.flip_averaging import FlipFusedDetector

    image, _ = _blobs()
    calls = []

    def detector(view, keep=None):
        """Blobs at 0.9 in every view; view 0 also sees a ghost, views 0-2 a faint object at 0.8."""
        calls.append(view)
        found = _blob_detector(view)
        n = len(calls)
        extra_boxes, extra_scores = [], []
        if n == 1:
            extra_boxes.append((60, 2, 70, 12))
            extra_scores.append(0.95)
        if n <= 3:
            box = np.array([30, 5, 42, 12], np.float32)  # mirrored so that all views see one object
            if n in (2, 4):
                box[[0, 2]] = view.shape[-1] - box[[2, 0]]
            if n in (3, 4):
                box[[1, 3]] = view.shape[-2] - box[[3, 1]]
            extra_boxes.append(tuple(box))
            extra_scores.append(0.8)
        k = len(extra_boxes)
        return {"boxes": np.vstack([found["boxes"], np.asarray(extra_boxes, np.float32).reshape(k, 4)]),
                "scores": np.concatenate([found["scores"], np.asarray(extra_scores, np.float32)]),
                "labels": np.concatenate([found["labels"], np.ones(k, np.int32)]),
                "masks": np.concatenate([found["masks"], np.ones((k, 28, 28), np.float32)])}

    fused = FlipFusedDetector(detector, score_threshold=0.5)(image)
    assert len(calls) == 4
    assert len(fused["scores"]) == 4  # three blobs and the faint object; the ghost (0.95 / 4) is gone
    faint = np.argmin(np.abs(fused["scores"] - 0.6))
    assert fused["scores"][faint] == pytest.approx(3 * 0.8 / 4)
    x0, y0, x1, y1 = fused["boxes"][faint]
    assert 28 <= x0 <= 30 and 42 <= x1 <= 44 and 3 <= y0 <= 5 and 12 <= y1 <= 14
    mask = fused["masks"][faint]
    assert mask.shape == (y1 - y0, x1 - x0) and mask.max() == pytest.approx(1.0)
    kept = FlipFusedDetector(detector, score_threshold=0.5)(image, keep=lambda boxes: boxes[:, 0] < 25)
    assert len(kept["scores"]) == len(kept["masks"]) == 2


def test_instance_tta_in_memory_and_block_runs_agree(tiny_models, tmp_path):
    image = (np.random.default_rng(3).random((40, 48)) * 255).astype(np.uint8)
    options = dict(tile=64, margin=16, score_threshold=0.2, diameter=0)  # 2 x 2 tiles of the tiny model
    flipped = api.segment_instances(image, tiny_models["maskrcnn"], tta=True, **options)
    assert flipped.labels.shape == image.shape and flipped.labels.max() == len(flipped.table["label"])
    blocks = api.segment_instances(image, tiny_models["maskrcnn"], tta=True, out=str(tmp_path / "labels.zarr"),
                                   block=32, **options)
    np.testing.assert_array_equal(np.asarray(blocks.labels), flipped.labels)


def test_cli_runs_tta_for_instance_models(tiny_models, tmp_path):
    from napari_unet_maskrcnn.cli import main
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    status = main(["segment", str(tmp_path / "a.tif"), "--model", str(tiny_models["maskrcnn"]),
                   "--output", str(tmp_path / "out"), "--tta", "--diameter", "0", "--quiet"])
    assert status == 0
    assert (tmp_path / "out" / "a.tif").exists() and (tmp_path / "out" / "a.csv").exists()

"""Test-time flip averaging of U-Net tiles: exact on symmetric networks, same tiling and blocks."""

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


def test_cli_refuses_tta_for_instance_models(tiny_models, tmp_path, capsys):
    from napari_unet_maskrcnn.cli import main
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    status = main(["segment", str(tmp_path / "a.tif"), "--model", str(tiny_models["maskrcnn"]),
                   "--output", str(tmp_path / "out"), "--tta", "--quiet"])
    assert status != 0
    assert "--tta applies to U-Net" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

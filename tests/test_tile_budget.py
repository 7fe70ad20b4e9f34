"""Default tiles sized to an activation-memory budget; an explicit tile still wins."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.api.runs import auto_tile
from napari_unet_maskrcnn.core.model_file import read_spec
from napari_unet_maskrcnn.core.testing import make_tiny_model_file
from napari_unet_maskrcnn.core.tiling import (
    LARGEST_AUTO_TILE,
    SMALLEST_AUTO_TILE,
    TILE_MULTIPLE,
    UNET_FASTEST_TILE,
    activation_bytes_per_pixel,
    tile_budget_bytes,
    tile_for_budget,
)


def test_tile_for_budget_is_the_largest_multiple_that_fits():
    tile = tile_for_budget(400.0, 2**30)
    assert tile % TILE_MULTIPLE == 0
    assert tile**2 * 400 <= 2**30 < (tile + TILE_MULTIPLE) ** 2 * 400
    assert tile_for_budget(400.0, 1.0) == SMALLEST_AUTO_TILE
    assert tile_for_budget(1.0, 2**50) == LARGEST_AUTO_TILE


def test_bundled_designs_get_tiles_of_about_1500_px_per_gib():
    unet = activation_bytes_per_pixel("unet", {"depth": 4, "base_width": 16}, 3)
    maskrcnn = activation_bytes_per_pixel("maskrcnn", {"backbone": "resnet18", "fpn_channels": 128}, 3)
    assert 400 < unet < 600 and 300 < maskrcnn < 500  # the measured 445 and 290-330 B/px, with room
    assert 1280 <= tile_for_budget(unet, 2**30) <= 1600 and 1280 <= tile_for_budget(maskrcnn, 2**30) <= 1900


def test_explicit_tile_wins_and_block_runs_get_a_smaller_default(tmp_path, monkeypatch):
    monkeypatch.delenv("NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB", raising=False)
    path = make_tiny_model_file(tmp_path / "m.safetensors", "maskrcnn")
    spec = read_spec(path)
    expected = tile_for_budget(activation_bytes_per_pixel(spec.arch, spec.config, spec.in_channels), tile_budget_bytes())
    assert auto_tile(None, path) == expected
    assert auto_tile(None, path, blocks=True) < expected
    assert auto_tile(320, path) == 320
    unet = make_tiny_model_file(tmp_path / "u.safetensors", "unet")
    assert auto_tile(None, unet) == UNET_FASTEST_TILE  # the budget allows more; 512 px measured faster
    assert auto_tile(2048, unet) == 2048


def test_default_tile_follows_the_budget_and_equals_that_explicit_tile(tmp_path, monkeypatch):
    path = make_tiny_model_file(tmp_path / "u.safetensors", "unet")
    monkeypatch.setenv("NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB", "16")
    tile = auto_tile(None, path)
    assert tile == 256  # tiny U-Net: 232 B/px, 16 MB -> 268 px, down to a multiple of 64
    image = np.random.default_rng(0).random((600, 530), dtype=np.float32)
    events = []
    default = api.segment_semantic(image, path, device="cpu", return_probabilities=True,
                                   on_progress=events.append)
    explicit = api.segment_semantic(image, path, device="cpu", tile=tile, return_probabilities=True)
    assert events[-1].total == 9  # 3 x 3 tiles of 256 with the default 64 px overlap
    np.testing.assert_array_equal(default.classes, explicit.classes)
    np.testing.assert_array_equal(default.probabilities, explicit.probabilities)


@pytest.mark.parametrize("budget_mb", ["4096", "16"])
def test_instances_default_tile_is_one_pass_when_the_plane_fits(tmp_path, monkeypatch, budget_mb):
    from napari_unet_maskrcnn.core.tiling import core_grid

    path = make_tiny_model_file(tmp_path / "m.safetensors", "maskrcnn")
    monkeypatch.setenv("NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB", budget_mb)
    image = np.random.default_rng(1).random((600, 530), dtype=np.float32)
    tile = auto_tile(None, path)
    events = []
    default = api.segment_instances(image, path, device="cpu", score_threshold=0.3, on_progress=events.append)
    explicit = api.segment_instances(image, path, device="cpu", score_threshold=0.3, tile=tile)
    expected = len(core_grid(image.shape, tile, min(64, tile // 4)))
    assert [event.stage for event in events] == ["tile"] * expected + ["resolve"]  # the plane's overlaps resolved last
    assert events[-1].done == events[-1].total == expected + 1 and (expected == 1) == (budget_mb == "4096")
    np.testing.assert_array_equal(default.labels, explicit.labels)


def test_balanced_tile_reads_fewer_pixels_with_as_many_tiles():
    from napari_unet_maskrcnn.core.tiling import balanced_tile, grid

    def pixels(windows):
        return sum((w.y1 - w.y0) * (w.x1 - w.x0) for w in windows)

    for shape in [(2048, 2048), (3000, 2000), (1500, 1500), (100, 5000)]:
        tile = balanced_tile(shape, 1472, 64)
        assert tile <= 1472 and tile % 32 == 0
        assert len(grid(shape, tile, tile - 64)) == len(grid(shape, 1472, 1472 - 64))
        assert pixels(grid(shape, tile, tile - 64)) <= pixels(grid(shape, 1472, 1472 - 64))
    assert balanced_tile((2048, 2048), 1472, 64) == 1056  # two tiles a side overlapping by 64 px, not 896
    assert balanced_tile((900, 700), 1472, 64) == 900  # a plane that fits is one window


def test_unet_default_tile_is_balanced_for_the_plane(tmp_path, monkeypatch):
    path = make_tiny_model_file(tmp_path / "b.safetensors", "unet")
    monkeypatch.setenv("NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB", "16")  # 256 px tiles
    assert auto_tile(None, path, image=np.zeros((300, 300), np.float32)) == 192  # 2 x 2 tiles either way
    assert auto_tile(None, path, image=np.zeros((3, 300, 300), np.float32), axes="CYX") == 192
    assert auto_tile(None, path) == 256

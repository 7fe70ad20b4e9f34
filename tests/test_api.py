"""The public Python API over stacks, channels, progress and cancel (tiny models, synthetic data)."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core.models import maskrcnn
from napari_unet_maskrcnn.core.testing import blob_detections, make_tiny_model_file


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory):
    return make_tiny_model_file(tmp_path_factory.mktemp("m") / "unet.safetensors", arch="unet")


@pytest.fixture(scope="module")
def unet_rgb_file(tmp_path_factory):
    return make_tiny_model_file(
        tmp_path_factory.mktemp("m") / "unet_rgb.safetensors", arch="unet", in_channels=3
    )


@pytest.fixture(scope="module")
def maskrcnn_file(tmp_path_factory):
    return make_tiny_model_file(tmp_path_factory.mktemp("m") / "mrcnn.safetensors", arch="maskrcnn")


def discs(shape, centres, radius=9):
    image = np.zeros(shape, np.uint16)
    for centre in centres:
        image[disk(centre, radius, shape=shape)] = 1000
    return image


@pytest.mark.parametrize(
    "shape, axes, out_shape",
    [
        ((70, 90), "YX", (70, 90)),
        ((3, 70, 90), "ZYX", (3, 70, 90)),
        ((2, 2, 40, 50), "TZYX", (2, 2, 40, 50)),
        ((2, 40, 50, 3), None, (2, 40, 50)),
    ],
)
def test_semantic_shapes_over_stacks(unet_file, shape, axes, out_shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, shape).astype(np.uint16)
    channel = 0 if shape[-1] == 3 else None
    result = api.segment_semantic(image, unet_file, axes=axes, channel=channel, tile=64, overlap=16,
                                  return_probabilities=True)
    assert result.classes.shape == out_shape and result.classes.dtype == np.uint8
    assert result.probabilities.shape == (3, *out_shape)
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1.0, atol=1e-4)
    assert np.array_equal(result.classes, result.probabilities.argmax(axis=0))
    assert result.class_names == ["background", "object", "boundary"]


def test_rgb_model_on_rgb_and_grey_images(unet_rgb_file):
    rgb = np.random.default_rng(1).integers(0, 255, (64, 80, 3)).astype(np.uint8)
    assert api.segment_semantic(rgb, unet_rgb_file, axes="YXC", tile=64, overlap=16).classes.shape == (64, 80)
    grey = rgb[..., 0]
    assert api.segment_semantic(grey, unet_rgb_file, tile=64, overlap=16).axes == "YX"


def test_channel_axis_first(unet_file):
    image = np.random.default_rng(2).random((4, 2, 48, 48)).astype(np.float32)
    result = api.segment_semantic(image, unet_file, axes="ZCYX", channel=1, tile=64, overlap=16)
    assert result.classes.shape == (4, 48, 48) and result.axes == "ZYX"
    with pytest.raises(ValueError, match="channel"):
        api.segment_semantic(image, unet_file, axes="ZCYX", tile=64, overlap=16)


def test_progress_reaches_total_and_cancel_stops(unet_file):
    image = np.zeros((2, 130, 130), np.float32)
    events = []
    api.segment_semantic(image, unet_file, tile=64, overlap=16, on_progress=events.append)
    assert [e.done for e in events] == list(range(1, len(events) + 1))
    assert events[-1].done == events[-1].total == 2 * 9

    seen = []
    with pytest.raises(api.Cancelled):
        api.segment_semantic(image, unet_file, tile=64, overlap=16, on_progress=seen.append,
                             should_cancel=lambda: len(seen) >= 3)
    assert len(seen) == 3


def test_wrong_task_and_bad_inputs_are_actionable(unet_file, maskrcnn_file):
    with pytest.raises(ValueError, match="segment_instances"):
        api.segment_semantic(np.zeros((64, 64)), maskrcnn_file)
    with pytest.raises(ValueError, match="segment_semantic"):
        api.segment_instances(np.zeros((64, 64)), unet_file)
    with pytest.raises(ValueError, match="at least a 2D"):
        api.segment_semantic(np.zeros(10), unet_file)
    with pytest.raises(ValueError, match="axes"):
        api.segment_semantic(np.zeros((4, 64, 64)), unet_file, axes="YX")
    with pytest.raises(ValueError, match="tile must be a whole number between 64"):
        api.segment_semantic(np.zeros((64, 64)), unet_file, tile=16)
    with pytest.raises(ValueError, match="score_threshold"):
        api.segment_instances(np.zeros((64, 64)), maskrcnn_file, score_threshold=2)


def test_untrained_maskrcnn_runs_end_to_end(maskrcnn_file):
    image = np.random.default_rng(3).integers(0, 1000, (2, 64, 80)).astype(np.uint16)
    result = api.segment_instances(image, maskrcnn_file, tile=64, margin=8, score_threshold=0.0)
    assert result.labels.shape == (2, 64, 80) and result.labels.dtype == np.uint32
    assert set(result.table) >= {"label", "class_id", "class_name", "score", "area"}
    assert len(result.table["label"]) == len(np.unique(result.labels[result.labels > 0]))


def test_instances_link_across_z_and_stay_unique_over_time(monkeypatch, maskrcnn_file):
    monkeypatch.setattr(maskrcnn, "detect", lambda network, image, **kw: blob_detections(image))
    centres = [(20, 20), (20, 70), (60, 45)]
    z_stack = np.stack([discs((90, 100), [(y + z, x) for y, x in centres]) for z in range(3)])
    result = api.segment_instances(z_stack, maskrcnn_file, axes="ZYX", tile=64, margin=16)
    for y, x in centres:
        ids = {int(result.labels[z, y + z, x]) for z in range(3)}
        assert len(ids) == 1 and 0 not in ids
    assert len(result.table["label"]) == 3

    unlinked = api.segment_instances(z_stack, maskrcnn_file, axes="ZYX", tile=64, margin=16,
                                     z_link_iou=0)
    assert len(np.unique(unlinked.labels)) - 1 == 9

    movie = np.stack([z_stack, z_stack])
    timed = api.segment_instances(movie, maskrcnn_file, axes="TZYX", tile=64, margin=16,
                                  spacing=(2.0, 0.5, 0.5))
    assert not set(np.unique(timed.labels[0])[1:]) & set(np.unique(timed.labels[1])[1:])
    assert list(timed.table["t"]) == [0, 0, 0, 1, 1, 1]
    assert len(np.unique(timed.table["label"])) == 6


def test_semantic_split_instances(unet_file, maskrcnn_file, tmp_path):
    image = np.random.default_rng(4).random((2, 64, 64)).astype(np.float32)
    result = api.segment_semantic(image, unet_file, tile=64, overlap=16, split_instances=True)
    assert result.instances.shape == (2, 64, 64) and result.instances.dtype == np.uint32
    assert result.probabilities is None
    two_class = make_tiny_model_file(tmp_path / "two.safetensors", class_names=["background", "tissue"])
    with pytest.raises(ValueError, match="boundary"):
        api.segment_semantic(image, two_class, tile=64, overlap=16, split_instances=True)


def test_instance_settings_default_to_the_model_file(monkeypatch, tmp_path):
    from napari_unet_maskrcnn.core.model_file import load_model_file, save_model

    spec, network = load_model_file(make_tiny_model_file(tmp_path / "a.safetensors", arch="maskrcnn"))
    spec.defaults = {"score_threshold": 0.8, "min_size": 500}
    path = save_model(tmp_path / "with_defaults.safetensors", network, spec)
    seen = {}

    def fake_detect(network, image, **kwargs):
        seen.update(kwargs)
        return blob_detections(image)

    monkeypatch.setattr(maskrcnn, "detect", fake_detect)
    image = discs((64, 64), [(20, 20), (45, 45)], radius=8)  # ~200 px each: below min_size 500
    result = api.segment_instances(image, path, tile=64)
    assert seen["score_threshold"] == 0.8 and seen["nms_iou"] == 0.5
    assert result.labels.max() == 0
    given = api.segment_instances(image, path, tile=64, score_threshold=0.3, min_size=10)
    assert seen["score_threshold"] == 0.3 and given.labels.max() == 2

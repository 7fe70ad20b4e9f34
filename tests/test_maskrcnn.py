"""Mask R-CNN builder and detect(): no rescaling, unpasted masks, many detections, training losses."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
import torchvision

from napari_unet_maskrcnn.core.instances import predict_instances_plane
from napari_unet_maskrcnn.core.model_file import ModelSpec, build_network
from napari_unet_maskrcnn.core.models.maskrcnn import build_maskrcnn, detect
from napari_unet_maskrcnn.core.progress import drain

TINY = {"backbone": "resnet18", "fpn_channels": 32, "box_head_size": 64, "mask_head_channels": 32}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_maskrcnn(in_channels=1, num_classes=2, **TINY).eval()


def test_torchvision_compiled_nms_runs():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_no_resize_no_normalisation_only_padding(tiny):
    image = torch.rand(1, 150, 110)
    batch, _ = tiny.transform([image])
    assert batch.image_sizes == [(150, 110)]
    assert batch.tensors.shape == (1, 1, 160, 128)
    assert torch.equal(batch.tensors[0, :, :150, :110], image)


def test_eval_forward_keeps_boxes_in_image_and_masks_unpasted(tiny):
    tiny.roi_heads.score_thresh = 0.0
    try:
        with torch.inference_mode():
            (result,) = tiny([torch.rand(1, 150, 110)])
    finally:
        tiny.roi_heads.score_thresh = 0.05
    boxes, masks = result["boxes"], result["masks"]
    assert tiny.roi_heads.detections_per_img >= 1000
    assert 100 < len(boxes) <= 1000  # torchvision's default would have stopped at 100
    assert masks.shape == (len(boxes), 1, 28, 28)
    assert boxes.min() >= 0 and boxes[:, 2].max() <= 110 and boxes[:, 3].max() <= 150


def test_detect_returns_numpy_and_restores_the_network(tiny):
    tiny.train()
    out = detect(tiny, np.random.default_rng(0).random((1, 96, 80), dtype=np.float32), score_threshold=0.0)
    assert tiny.training and tiny.roi_heads.score_thresh == 0.05 and tiny.roi_heads.nms_thresh == 0.5
    tiny.eval()
    n = len(out["scores"])
    assert n > 0
    assert out["boxes"].shape == (n, 4) and out["boxes"].dtype == np.float32
    assert out["scores"].dtype == np.float32 and out["labels"].dtype == np.int32
    assert out["masks"].shape == (n, 28, 28) and out["masks"].dtype == np.float32
    assert set(out["labels"]) <= {1}
    assert out["boxes"][:, 2].max() <= 80 and out["boxes"][:, 3].max() <= 96

    strict = detect(tiny, np.zeros((1, 64, 64), np.float32), score_threshold=1.0)
    assert len(strict["scores"]) == 0 and strict["masks"].shape[1:] == (28, 28)


def test_training_returns_losses_that_backpropagate():
    torch.manual_seed(0)
    network = build_maskrcnn(in_channels=3, num_classes=3, **TINY).train()
    masks = torch.zeros(2, 96, 96, dtype=torch.uint8)
    masks[0, 10:30, 20:35] = 1
    masks[1, 50:60, 60:80] = 1
    target = {
        "boxes": torch.tensor([[20.0, 10.0, 35.0, 30.0], [60.0, 50.0, 80.0, 60.0]]),
        "labels": torch.tensor([1, 2]),
        "masks": masks,
    }
    losses = network([torch.rand(3, 96, 96)], [target])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert network.backbone.body.conv1.weight.grad is not None


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50"])
def test_backbones_build_with_any_channels(backbone):
    network = build_maskrcnn(in_channels=3, num_classes=4, backbone=backbone, fpn_channels=64)
    assert network.backbone.body.conv1.in_channels == 3
    assert network.backbone.out_channels == 64
    assert network.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 4


def test_config_survives_json_and_model_spec():
    config = json.loads(json.dumps({**TINY, "anchor_sizes": [[4], [8], [16], [32], [64]], "aspect_ratios": [1.0]}))
    spec = ModelSpec(arch="maskrcnn", config=config, class_names=["cell", "nucleus"], in_channels=3)
    network = build_network(spec)
    assert network.roi_heads.box_predictor.cls_score.out_features == 3  # background + 2
    assert network.rpn.anchor_generator.sizes == ((4,), (8,), (16,), (32,), (64,))
    assert network.rpn.head.cls_logits.out_channels == 1


def test_bad_config_says_what_to_fix():
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50"):
        build_maskrcnn(in_channels=1, num_classes=2, backbone="vgg16")
    with pytest.raises(ValueError, match="one entry per pyramid level"):
        build_maskrcnn(in_channels=1, num_classes=2, anchor_sizes=[[8], [16]])


def test_tiled_instances_with_a_real_network(tiny):
    image = np.random.default_rng(1).random((1, 96, 96), dtype=np.float32)
    detector = functools.partial(detect, tiny, score_threshold=0.0)
    result = drain(predict_instances_plane(_Source(image), detector, tile=64, margin=16, min_size=1))
    n = result.labels.max()
    assert n > 0 and len(result.scores) == len(result.classes) == n
    assert set(np.unique(result.labels)) == set(range(n + 1))

    def segment_every_box(image, keep):  # the tile's neighbours' objects are segmented too
        return detect(tiny, image, score_threshold=0.0)

    every = drain(predict_instances_plane(_Source(image), segment_every_box, tile=64, margin=16, min_size=1))
    np.testing.assert_array_equal(every.labels, result.labels)


def test_detect_segments_only_the_boxes_kept_and_their_masks_are_unchanged(tiny):
    image = np.random.default_rng(2).random((1, 96, 80), dtype=np.float32)
    every = detect(tiny, image, score_threshold=0.0)
    left = detect(tiny, image, score_threshold=0.0, keep=lambda boxes: boxes[:, 0] < 40)
    chosen = every["boxes"][:, 0] < 40
    assert 0 < chosen.sum() < len(chosen)
    for key in ("boxes", "scores", "labels", "masks"):
        np.testing.assert_array_equal(left[key], every[key][chosen])
    with torch.inference_mode():  # the same as torchvision's own forward
        tiny.roi_heads.score_thresh = 0.0
        (whole,) = tiny([torch.from_numpy(image)])
        tiny.roi_heads.score_thresh = 0.05
    np.testing.assert_array_equal(every["masks"], whole["masks"][:, 0].numpy())


def test_bfloat16_masks_leave_detections_and_scores_in_float32(tiny):
    image = np.random.default_rng(2).random((1, 96, 80), dtype=np.float32)
    plain = detect(tiny, image, score_threshold=0.0)
    mixed = detect(tiny, image, score_threshold=0.0, mask_autocast_dtype=torch.bfloat16)
    for key in ("boxes", "scores", "labels"):
        np.testing.assert_array_equal(mixed[key], plain[key])
    assert mixed["masks"].dtype == np.float32 and len(plain["masks"]) > 0
    assert not np.array_equal(mixed["masks"], plain["masks"])  # computed in bfloat16
    np.testing.assert_allclose(mixed["masks"], plain["masks"], atol=0.05)


def test_default_design_is_unchanged_and_group_norm_is_an_option():
    plain = build_maskrcnn(in_channels=1, num_classes=2, **TINY)
    names = set(plain.state_dict())
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in plain.modules())
    assert "backbone.fpn.inner_blocks.0.0.weight" in names and "roi_heads.box_head.fc6.weight" in names
    grouped = build_maskrcnn(in_channels=1, num_classes=2, **TINY, norm="group", box_head_convs=4,
                             rpn_conv_depth=2, mask_roi_size=7)
    norms = [name for name, m in grouped.named_modules() if isinstance(m, torch.nn.GroupNorm)]
    assert any(n.startswith("backbone.fpn") for n in norms)
    assert sum(n.startswith("roi_heads.box_head") for n in norms) == 4
    assert sum(n.startswith("roi_heads.mask_head") for n in norms) == 4
    assert len(grouped.rpn.head.conv) == 2
    out = detect(grouped, np.random.default_rng(0).random((1, 64, 64), dtype=np.float32), score_threshold=0.0)
    assert out["masks"].shape[1:] == (14, 14)
    with pytest.raises(ValueError, match="none, group"):
        build_maskrcnn(in_channels=1, num_classes=2, norm="batch")


class _Source:
    """Stand-in for inputs.PlaneSource over a float32 (C, H, W) array."""

    def __init__(self, image):
        self.image, self.channels, self.shape = image, image.shape[0], image.shape[1:]

    def read(self, y0, y1, x0, x1):
        return self.image[:, y0:y1, x0:x1]


def test_proposal_and_detection_counts_grow_with_the_tile_area(tiny):
    from napari_unet_maskrcnn.core.models.maskrcnn import REFERENCE_TILE, area_scale

    assert area_scale((REFERENCE_TILE // 2, REFERENCE_TILE)) == 1.0  # small images keep the model's counts
    assert area_scale((2 * REFERENCE_TILE, 3 * REFERENCE_TILE)) == 6.0
    seen = []
    hook = tiny.rpn.register_forward_pre_hook(
        lambda rpn, args: seen.append((rpn.pre_nms_top_n(), rpn.post_nms_top_n(), tiny.roi_heads.detections_per_img)))
    base = (tiny.rpn.pre_nms_top_n(), tiny.rpn.post_nms_top_n(), tiny.roi_heads.detections_per_img)
    tiny.eval()
    try:
        detect(tiny, np.zeros((1, 64, 96), np.float32))
        detect(tiny, np.zeros((1, REFERENCE_TILE, 2 * REFERENCE_TILE), np.float32))
    finally:
        hook.remove()
    assert seen[0] == base
    assert seen[1] == tuple(2 * n for n in base)
    assert (tiny.rpn.pre_nms_top_n(), tiny.rpn.post_nms_top_n(), tiny.roi_heads.detections_per_img) == base


def test_heads_in_chunks_give_the_same_detections(tiny, monkeypatch):
    from napari_unet_maskrcnn.core.models import maskrcnn

    image = np.random.default_rng(3).random((1, 128, 96), dtype=np.float32)
    whole = detect(tiny, image, score_threshold=0.0)
    monkeypatch.setattr(maskrcnn, "BOX_CHUNK", 37)
    monkeypatch.setattr(maskrcnn, "MASK_CHUNK", 5)
    chunked = detect(tiny, image, score_threshold=0.0)
    assert len(whole["boxes"]) > 10
    for key in ("boxes", "scores", "labels", "masks"):
        np.testing.assert_allclose(chunked[key], whole[key], atol=1e-5)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_roi_align_over_threads_gives_the_same_detections(tiny, monkeypatch, dtype):
    from napari_unet_maskrcnn.core.models import maskrcnn

    if torch.get_num_threads() < 2:
        monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    image = np.random.default_rng(4).random((1, 128, 96), dtype=np.float32)
    monkeypatch.setattr(maskrcnn, "PARALLEL_POOL_MIN", 10**9)
    serial = detect(tiny, image, score_threshold=0.0, autocast_dtype=dtype)
    monkeypatch.setattr(maskrcnn, "PARALLEL_POOL_MIN", 1)
    threaded = detect(tiny, image, score_threshold=0.0, autocast_dtype=dtype)
    assert len(serial["boxes"]) > 10
    for key in ("boxes", "scores", "labels", "masks"):
        np.testing.assert_array_equal(threaded[key], serial[key])


def test_proposals_follow_the_expected_object_count_when_the_diameter_is_known():
    from napari_unet_maskrcnn.core.models.maskrcnn import area_scale

    assert area_scale((512, 512), 19.54, 1000) == 1.0  # maskrcnn-nuclei's own tiles keep its counts
    assert area_scale((1024, 1024), 19.54, 1000) == pytest.approx(4.0, rel=0.01)  # 4x the nuclei
    assert area_scale((1024, 1024), 49.78, 1000) == 1.0  # 50 px cells: 1000 proposals are plenty
    assert area_scale((2048, 2048), 49.78, 1000) == pytest.approx(2.45, rel=0.01)
    assert area_scale((1024, 1024), None, 1000) == 4.0  # no diameter: by area

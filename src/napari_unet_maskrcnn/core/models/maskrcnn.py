"""torchvision Mask R-CNN set up for crowded, small objects (cells, nuclei) in microscopy.

Differences from torchvision's stock ``maskrcnn_resnet50_fpn``:

- any number of input channels (first convolution replaced), ResNet-18/34/50 backbone
  with a configurable FPN width, no pretrained weights (BatchNorm, trained from scratch);
- optionally (``norm="group"``) GroupNorm in the FPN, the box head (then convolutional,
  ``box_head_convs``) and the mask head, as He et al., "Rethinking ImageNet Pre-training"
  (ICCV 2019) train Mask R-CNN from scratch; the default ``"none"`` is the original design;
- small anchors (8-128 px), up to 1000 detections per image and more RPN proposals, so
  crowded tiles do not silently lose objects;
- no resizing (torchvision rescales every input to 800 px) and no mean/std
  normalisation: inputs are already normalised to about 0..1 per channel; images are
  only zero-padded to a multiple of 32;
- in eval, masks stay ``(N, 1, 28, 28)`` probabilities in each box's frame instead of
  being pasted into ``(N, 1, H, W)`` full-image arrays (gigabytes for 1000 detections).

Box convention: ``x0, y0, x1, y1`` are pixel *edges*, so an object covering columns
``a..b`` has ``x0 = a`` and ``x1 = b + 1`` (the same as ``regionprops`` bounding boxes);
training targets should be built the same way. Mask cell ``j`` of ``M`` covers
``[x0 + j (x1 - x0) / M, x0 + (j + 1) (x1 - x0) / M)``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from torchvision.models import resnet
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import maskrcnn_inference
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ..device import autocast

_DETECT_LOCK = threading.Lock()
_POOL_LOCK = threading.Lock()

BACKBONES = ("resnet18", "resnet34", "resnet50")
NORMS = ("none", "group")
GROUPS = 32  # GroupNorm groups (He et al.); fewer where they do not divide the channels
FPN_LEVELS = 5  # ResNet stages 1-4 plus the max-pooled extra level
SIZE_DIVISIBLE = 32
BOX_CHUNK = 2048  # proposals per pass through the box head (bounds its memory, not its result)
MASK_CHUNK = 256  # detections per pass through the mask head
PARALLEL_POOL_MIN = 64  # boxes per thread below which RoIAlign runs in the calling thread
PROPOSALS_PER_OBJECT = 1.45  # maskrcnn-nuclei: 1000 proposals per 512^2 tile of 19.5 px nuclei packed
MASK_ROI_SIZE = 14  # default side of the mask RoIAlign grid (28 x 28 masks), torchvision's
REFERENCE_TILE = 512  # the tile side the model's proposal and detection counts are meant for (see area_scale)


class NoResizeTransform(GeneralizedRCNNTransform):
    """Batches images (zero-padded to a multiple of 32) without resizing or normalising them.

    ``postprocess`` leaves boxes in input pixels (nothing was resized) and masks as the
    roi heads return them: ``(N, 1, M, M)`` probabilities in each box's frame.
    """

    def __init__(self, in_channels: int):
        super().__init__(
            min_size=1,
            max_size=1,
            image_mean=[0.0] * in_channels,
            image_std=[1.0] * in_channels,
            size_divisible=SIZE_DIVISIBLE,
        )

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        if not image.is_floating_point():
            raise TypeError(f"Mask R-CNN expects float images normalised to about 0..1, got {image.dtype}.")
        return image

    def resize(self, image, target=None):
        return image, target

    def postprocess(self, result, image_shapes, original_image_sizes):
        return result

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(no resize, no normalisation, pad to /{self.size_divisible})"


def build_maskrcnn(
    *,
    in_channels: int,
    num_classes: int,
    backbone: str = "resnet18",
    fpn_channels: int = 256,
    anchor_sizes: Sequence[Sequence[int]] = ((8,), (16,), (32,), (64,), (128,)),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    detections_per_image: int = 1000,
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 3000,
    rpn_post_nms_top_n_test: int = 2000,
    box_batch_size_per_image: int = 512,
    box_head_size: int = 1024,
    mask_head_channels: int = 256,
    mask_roi_size: int = MASK_ROI_SIZE,
    norm: str = "none",
    box_head_convs: int = 0,
    rpn_conv_depth: int = 1,
) -> MaskRCNN:
    """An untrained Mask R-CNN for ``in_channels``-channel images and ``num_classes`` classes.

    Every argument is JSON-serialisable (lists are accepted wherever tuples are shown), so a
    model file's ``config`` can be passed back as ``build_maskrcnn(in_channels=..., num_classes=..., **config)``.

    Args:
        in_channels: image channels (1 = greyscale, 3 = RGB).
        num_classes: object classes *including* background (label 0).
        backbone: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        fpn_channels: feature pyramid width.
        anchor_sizes: one tuple of anchor sizes (pixels) per pyramid level (5 levels).
        aspect_ratios: anchor height/width ratios, the same at every level.
        detections_per_image: most objects kept per image (torchvision's default 100
            silently drops nuclei in a crowded tile).
        rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train, rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_test: region proposals kept before (per level) and after NMS.
        box_batch_size_per_image: sampled proposals per image for the box loss.
        box_head_size: width of the two fully connected layers of the box head.
        mask_head_channels: width of the four convolutions of the mask head.
        mask_roi_size: side of the RoIAlign grid fed to the mask head; the soft masks are
            twice as large (14 -> 28 x 28). Mask head cost grows with its square.
        norm: ``"none"`` (no normalisation outside the backbone, as torchvision's v1) or
            ``"group"``: GroupNorm in the FPN, the box head and the mask head.
        box_head_convs: 3 x 3 convolutions (``fpn_channels`` wide) before the box head's one
            fully connected layer (torchvision's ``FastRCNNConvFCHead``, 4 in
            ``maskrcnn_resnet50_fpn_v2``); 0 = two fully connected layers (``TwoMLPHead``).
        rpn_conv_depth: 3 x 3 convolutions of the RPN head (2 in ``maskrcnn_resnet50_fpn_v2``).
    """
    sizes = tuple(tuple(int(s) for s in level) for level in anchor_sizes)
    if len(sizes) != FPN_LEVELS:
        raise ValueError(f"anchor_sizes needs one entry per pyramid level ({FPN_LEVELS}), got {len(sizes)}.")
    ratios = tuple(float(r) for r in aspect_ratios)
    if norm not in NORMS:
        raise ValueError(f"Unknown norm '{norm}': choose one of {', '.join(NORMS)}.")
    norm_layer = _group_norm if norm == "group" else None
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=(ratios,) * FPN_LEVELS)
    if box_head_convs > 0:
        box_head = FastRCNNConvFCHead(
            (fpn_channels, 7, 7), [fpn_channels] * box_head_convs, [box_head_size], norm_layer=norm_layer
        )
    else:
        box_head = TwoMLPHead(fpn_channels * 7 * 7, box_head_size)
    network = MaskRCNN(
        _resnet_fpn(backbone, in_channels, fpn_channels, norm_layer),
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(fpn_channels, anchors.num_anchors_per_location()[0], conv_depth=rpn_conv_depth),
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(box_head_size, num_classes),
        box_detections_per_img=detections_per_image,
        box_batch_size_per_image=box_batch_size_per_image,
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=mask_roi_size, sampling_ratio=2),
        mask_head=MaskRCNNHeads(fpn_channels, (mask_head_channels,) * 4, 1, norm_layer=norm_layer),
        mask_predictor=MaskRCNNPredictor(mask_head_channels, mask_head_channels, num_classes),
    )
    network.transform = NoResizeTransform(in_channels)
    return network


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with :data:`GROUPS` groups, or the largest divisor of ``channels`` below it."""
    return nn.GroupNorm(math.gcd(GROUPS, channels), channels)


def _resnet_fpn(name: str, in_channels: int, fpn_channels: int, norm_layer=None) -> BackboneWithFPN:
    """ResNet ``name`` taking ``in_channels`` channels, all layers trainable, with an FPN.

    Built by hand rather than with ``resnet_fpn_backbone``, whose FPN width is fixed at 256.
    """
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone '{name}': choose one of {', '.join(BACKBONES)}.")
    body = getattr(resnet, name)(weights=None, norm_layer=nn.BatchNorm2d)
    body.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    stage2 = body.inplanes // 8  # 64 (basic blocks) or 256 (bottlenecks)
    return BackboneWithFPN(
        body,
        return_layers={f"layer{k}": str(k - 1) for k in range(1, 5)},
        in_channels_list=[stage2 * 2**k for k in range(4)],
        out_channels=fpn_channels,
        extra_blocks=LastLevelMaxPool(),
        norm_layer=norm_layer,
    )


def detect(
    network: MaskRCNN,
    image: np.ndarray,
    *,
    score_threshold: float = 0.5,
    nms_iou: float = 0.5,
    device: str | torch.device = "cpu",
    autocast_dtype: torch.dtype | None = None,
    keep: Callable[[np.ndarray], np.ndarray] | None = None,
    mask_autocast_dtype: torch.dtype | None = None,
) -> dict[str, np.ndarray]:
    """Detect objects in one normalised image.

    The network's test-time proposal counts and detection cap are scaled by the image's
    area and expected object count (:func:`area_scale`: at least the model's own).
    Boxes scoring below ``score_threshold`` are dropped inside the network, before the mask
    head (torchvision's default keeps every box above 0.05 and segments them all), and so
    are the boxes ``keep`` rejects: in a tile, the objects that a neighbouring tile owns.

    Args:
        network: a Mask R-CNN from :func:`build_maskrcnn`, already on ``device``. It is
            run in eval mode and left in the mode it was in; its thresholds are restored.
        image: float32 ``(C, h, w)``, normalised to about 0..1 per channel.
        score_threshold: lowest class score kept.
        nms_iou: IoU above which the lower-scoring of two same-class boxes is suppressed.
        device: where ``image`` is sent.
        autocast_dtype: run under autocast with this dtype (e.g. bfloat16); None = float32.
        keep: ``boxes float32 (N, 4) -> bool (N,)``: which detections to segment and return;
            None = all.
        mask_autocast_dtype: run the mask stage (RoIAlign, mask head, predictor) under autocast
            with this dtype, whatever ``autocast_dtype`` is: bfloat16 masks with float32
            detections and scores (``precision="auto"`` for Mask R-CNN, :meth:`.blockwise.NetworkRun.detector`).

    Returns:
        ``boxes`` float32 ``(N, 4)`` x0, y0, x1, y1 in pixels of ``image`` (pixel edges),
        ``scores`` float32 ``(N,)``, ``labels`` int32 ``(N,)`` 1-based classes, ``masks``
        float32 ``(N, M, M)`` object probabilities in each box's frame (M = 2 x ``mask_roi_size``: 28 by default).
    """
    heads, rpn = network.roi_heads, network.rpn
    with _DETECT_LOCK:  # the thresholds and counts live on the (cached, shared) network
        saved = (network.training, heads.score_thresh, heads.nms_thresh, heads.detections_per_img,
                 rpn._pre_nms_top_n["testing"], rpn._post_nms_top_n["testing"])
        heads.score_thresh, heads.nms_thresh = float(score_threshold), float(nms_iou)
        scale = area_scale(image.shape[-2:], getattr(network, "object_diameter_px", None), saved[5])
        heads.detections_per_img, rpn._pre_nms_top_n["testing"], rpn._post_nms_top_n["testing"] = (
            math.ceil(count * scale) for count in saved[3:])
        network.eval()
        try:
            with torch.inference_mode():
                tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
                with autocast(device, autocast_dtype):
                    result = _eval_forward(network, tensor, keep, mask_autocast_dtype)
        finally:
            network.train(saved[0])
            heads.score_thresh, heads.nms_thresh, heads.detections_per_img = saved[1:4]
            rpn._pre_nms_top_n["testing"], rpn._post_nms_top_n["testing"] = saved[4:]
    return {
        "boxes": result["boxes"].float().cpu().numpy(),
        "scores": result["scores"].float().cpu().numpy(),
        "labels": result["labels"].cpu().numpy().astype(np.int32),
        "masks": result["masks"][:, 0].float().cpu().numpy(),
    }


def area_scale(shape: Sequence[int], object_diameter: float | None = None, proposals: int | None = None) -> float:
    """By how much :func:`detect` multiplies the model's proposal counts and detection cap for an image of ``shape``.

    With the model's object diameter ``d`` (``network.object_diameter_px``, set when the
    registry loads a model file that records it) and its post-NMS ``proposals``: enough for
    :data:`PROPOSALS_PER_OBJECT` proposals per object of the most objects the image can hold,
    ``h w / d**2``, i.e. ``PROPOSALS_PER_OBJECT h w / (d**2 proposals)``; otherwise the image's
    area in :data:`REFERENCE_TILE` squares. Never below 1: images no larger than the tiles the
    counts were set (and measured) for keep the model's own counts, and so do large tiles of
    large objects (maskrcnn-phasecells, 50 px cells, up to about 1300 x 1300 pixels), where
    more proposals only add false positives. The box stage's work then grows with the tile's
    area and expected object count instead of being diluted or fixed.
    """
    height, width = (int(n) for n in shape)
    if object_diameter and proposals:
        return max(1.0, PROPOSALS_PER_OBJECT * height * width / (float(object_diameter) ** 2 * int(proposals)))
    return max(1.0, height * width / REFERENCE_TILE**2)


def _eval_forward(network: MaskRCNN, image: torch.Tensor, keep, mask_dtype: torch.dtype | None = None
                  ) -> dict[str, torch.Tensor]:
    """torchvision's eval forward of one image (``GeneralizedRCNN`` + ``RoIHeads``), step by step.

    Spelled out so that the detections ``keep`` rejects leave before the mask head; the kept
    ones get exactly the masks the whole forward would give them (every box is pooled and
    segmented on its own). Proposals go through the box head :data:`BOX_CHUNK` at a time and
    detections through the mask head :data:`MASK_CHUNK` at a time (each box on its own either
    way), so the heads' activations stay a few hundred MB however large the tile and crowded
    the image: the network's memory grows with the tile's pixels only.
    """
    heads = network.roi_heads
    images, _ = network.transform([image])
    features = network.backbone(images.tensors)
    (proposals,), _ = network.rpn(images, features)
    sizes = images.image_sizes
    # RoIAlign's CPU kernel reads NCHW and copies a channels-last input on every call: once here
    pooled = {name: level.contiguous() for name, level in features.items()}
    logits, regressions = [], []
    for part in proposals.split(BOX_CHUNK):
        class_logits, box_regression = heads.box_predictor(heads.box_head(_roi_pool(heads.box_roi_pool, pooled, part, sizes)))
        logits.append(class_logits.float())
        regressions.append(box_regression.float())
    (boxes,), (scores,), (labels,) = heads.postprocess_detections(
        torch.cat(logits), torch.cat(regressions), [proposals], sizes
    )
    if keep is not None:
        wanted = torch.as_tensor(np.asarray(keep(boxes.float().cpu().numpy()), dtype=bool), device=boxes.device)
        boxes, scores, labels = boxes[wanted], scores[wanted], labels[wanted]
    with autocast(image.device, mask_dtype) if mask_dtype is not None else contextlib.nullcontext():
        masks = [
            maskrcnn_inference(heads.mask_predictor(heads.mask_head(_roi_pool(heads.mask_roi_pool, pooled, part, sizes))),
                               [part_labels])[0].float()
            for part, part_labels in zip(boxes.split(MASK_CHUNK), labels.split(MASK_CHUNK))
        ]
    masks = torch.cat(masks) if masks else boxes.new_zeros((0, 1, *_mask_size(heads)))
    return {"boxes": boxes, "scores": scores, "labels": labels, "masks": masks}


def _roi_pool(pool: MultiScaleRoIAlign, features: dict, boxes: torch.Tensor, sizes) -> torch.Tensor:
    """``pool(features, [boxes], sizes)``, the boxes split over torch's threads on the CPU.

    torchvision's CPU RoIAlign runs on one core; every box is pooled on its own, so pooling
    parts of the boxes in parallel threads gives the same tensor. The threads run under this
    thread's inference and autocast state (both are thread-local).
    """
    threads = torch.get_num_threads() if boxes.device.type == "cpu" else 1
    if threads < 2 or len(boxes) < PARALLEL_POOL_MIN * threads:
        return pool(features, [boxes], sizes)
    autocast_on = torch.is_autocast_enabled("cpu")
    autocast_dtype = torch.get_autocast_dtype("cpu")
    inference = torch.is_inference_mode_enabled()

    def part(chunk: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(inference), torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_on):
            return pool(features, [chunk], sizes)

    return torch.cat(list(_pool_threads(threads).map(part, boxes.tensor_split(threads))))


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool_threads(threads: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="roi-align")
        return _POOLS[threads]


def _mask_size(heads) -> tuple[int, int]:
    """Side of the soft masks: twice the mask RoIAlign grid (the predictor's 2x upsampling)."""
    side = 2 * int(heads.mask_roi_pool.output_size[0])
    return side, side

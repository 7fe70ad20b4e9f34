"""Mask R-CNN instances through the API: :func:`iter_segment_instances`, :func:`segment_instances`."""

from __future__ import annotations

import os

import numpy as np

from ..core.progress import CancelCheck, ProgressCallback, ProgressGenerator, drain
from ..core.settings import check_tile_setting, segment_default as default
from ..core.validation import check_segment_call
from .blocks import block_output, block_result, plane_sources
from .results import InstanceResult, object_size_report
from .runs import (
    DEFAULT_MARGIN,
    INSTANCE_DEFAULTS,
    auto_tile,
    check_tile,
    context,
    network_run,
    prepare,
    resolved_model,
    table_spacing,
)


def iter_segment_instances(
    image,
    model: str | os.PathLike,
    *,
    axes: str | None = None,
    channel: int | None = default("channel", "instances"),
    tile: int | None = default("tile", "instances"),
    margin: int | None = default("margin", "instances"),
    device: str = default("device", "instances"),
    score_threshold: float | None = default("score_threshold", "instances"),
    mask_threshold: float | None = default("mask_threshold", "instances"),
    nms_iou: float | None = default("nms_iou", "instances"),
    min_size: int | None = default("min_size", "instances"),
    z_link_iou: float = default("z_link_iou", "instances"),
    spacing: tuple[float, ...] | None = None,
    precision: str = default("precision", "instances"),
    tta: bool = default("tta", "instances"),
    diameter: float | None = default("diameter", "instances"),
    pixel_size_um: float | None = None,
    out=None,
    client=None,
    block: int = default("block", "instances"),
    overwrite: bool = default("overwrite", "instances"),
) -> ProgressGenerator[InstanceResult]:
    """One id per object in every 2D plane of ``image`` with a Mask R-CNN model.

    Objects are linked across z (IoU >= ``z_link_iou`` with the previous slice keeps the id;
    0 disables linking); time points are not linked; ids are unique over the whole stack.

    Args:
        image, model, axes, channel, tile, device: as in :func:`iter_segment_semantic`.
        margin: context pixels read around each tile's core; objects larger than about
            ``margin`` may be cut at tile seams, so keep it above the object diameter
            (default: 64, or a quarter of a smaller tile).
        score_threshold: detections scoring lower are dropped (0..1).
        mask_threshold: mask probability above which a pixel belongs to the object (0..1).
        nms_iou: boxes overlapping more than this IoU are suppressed (0..1).
        min_size: objects smaller than this (pixels, after overlap resolution) are dropped.
            These four default (None) to the model file's ``defaults``, else 0.5, 0.5, 0.5, 10.
        spacing: physical pixel size per output spatial axis (Z, Y, X order) for calibrated areas.
        precision: ``"auto"`` (default: the mask head in bfloat16 where the CPU/GPU computes it
            natively, detections and scores in float32; held-out AP unchanged within 0.003, 1.2x
            faster end to end, docs/BENCHMARKS.md), ``"fp32"`` or ``"bf16"`` (all of it: bfloat16
            detection cost Mask R-CNN 1-2 points of AP(0.5) on DSB2018, scores and boxes shift).
        tta: test-time augmentation: detect in the tile and its three flips and fuse the
            detections (4x the network time; objects found in few views are dropped; see
            :class:`~napari_unet_maskrcnn.core.flip_averaging.FlipFusedDetector`).
        diameter, pixel_size_um: as in :func:`iter_segment_semantic`; the automatic estimate is
            the median equivalent diameter of the objects of a first pass at native scale.
            ``margin`` and ``tile`` are in pixels of the resized plane, ``min_size`` in the
            image's pixels.
        out, client, block, overwrite: as in :func:`iter_segment_semantic` (``result.labels`` is
            then the zarr array); the labels and the table equal the in-memory ones.

    Yields ProgressEvent per tile (per block with ``out`` or ``client``; ``"rescaled tile"``
    in a second, resized pass); returns
    :class:`InstanceResult`.
    """
    from ..core.instance_run import InstanceSettings, iter_instance_run
    from ..core.object_size import SizeRequest

    model_path = resolved_model(model)  # once per run
    blocks = out is not None or client is not None
    tile = auto_tile(check_tile_setting(tile), model_path, blocks, image, axes)  # None: sized to memory
    out = check_segment_call("instances", {**locals(), "model": model})  # every parameter, before the model loads
    margin = context(tile, margin, DEFAULT_MARGIN)
    check_tile(tile, margin, "margin")
    canonical, axes, spec = prepare(image, model_path, axes, "instances", name=model)
    run = network_run(model_path, device, precision, client, tta)
    settings = {**INSTANCE_DEFAULTS, **{k: v for k, v in spec.defaults.items() if k in INSTANCE_DEFAULTS}}
    given = {"score_threshold": score_threshold, "mask_threshold": mask_threshold, "nms_iou": nms_iou,
             "min_size": min_size}
    settings.update({k: v for k, v in given.items() if v is not None})
    for name in ("score_threshold", "mask_threshold", "nms_iou"):
        if not 0.0 <= settings[name] <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1 (got {settings[name]}).")
    n_z = canonical.shape[1]
    with block_output(out, canonical, axes, np.uint32) as writer:
        table, sizes = yield from iter_instance_run(
            plane_sources(canonical, spec, channel), writer, run,
            InstanceSettings(tile, margin, **settings, z_link_iou=z_link_iou, block=block),
            SizeRequest.for_model(spec, diameter, pixel_size_um), list(spec.class_names),
            spacing=table_spacing(spacing, n_z), client=client, in_memory=not blocks,
        )
    labels, result_axes = block_result(writer, out, axes)
    return InstanceResult(labels, table, list(spec.class_names), result_axes, *object_size_report(sizes))



def segment_instances(
    image,
    model: str | os.PathLike,
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    **options,
) -> InstanceResult:
    """Run :func:`iter_segment_instances` to the end (options as there); see :func:`segment_semantic`."""
    return drain(iter_segment_instances(image, model, **options), on_progress, should_cancel)

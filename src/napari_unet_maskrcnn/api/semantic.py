"""U-Net per-pixel classes through the API: :func:`iter_segment_semantic`, :func:`segment_semantic`."""

from __future__ import annotations

import os

import numpy as np

from ..core.axes import from_canonical
from ..core.progress import CancelCheck, ProgressCallback, ProgressGenerator, drain
from ..core.settings import check_tile_setting, segment_default as default
from ..core.validation import check_segment_call
from .blocks import block_output, block_result, plane_sources
from .results import SemanticResult, object_size_report
from .runs import (
    DEFAULT_OVERLAP,
    INSTANCE_DEFAULTS,
    auto_tile,
    check_tile,
    context,
    network_run,
    prepare,
    resolved_model,
)


def iter_segment_semantic(
    image,
    model: str | os.PathLike,
    *,
    axes: str | None = None,
    channel: int | None = default("channel", "semantic"),
    tile: int | None = default("tile", "semantic"),
    overlap: int | None = default("overlap", "semantic"),
    device: str = default("device", "semantic"),
    return_probabilities: bool = default("return_probabilities", "semantic"),
    split_instances: bool = default("split_instances", "semantic"),
    z_link_iou: float = default("z_link_iou", "semantic"),
    min_size: int | None = default("min_size", "semantic"),
    precision: str = default("precision", "semantic"),
    diameter: float | None = default("diameter", "semantic"),
    pixel_size_um: float | None = None,
    out=None,
    client=None,
    block: int = default("block", "semantic"),
    tta: bool = default("tta", "semantic"),
    overwrite: bool = default("overwrite", "semantic"),
) -> ProgressGenerator[SemanticResult]:
    """Per-pixel classes of every 2D plane of ``image`` with a U-Net model.

    Args:
        image: array of any dtype; its axes are ``axes`` (letters T, Z, C, Y, X), guessed when None.
        model: a model name (see :func:`list_models`) or a model file path.
        channel: which channel to segment when the image has several (not RGB).
        tile: tile edge in pixels; peak memory grows with tile**2, not with the image (None: the
            largest tile whose activations fit 1 GiB, :func:`~.runs.auto_tile`; planes up to it in one pass).
        overlap: pixels shared by neighbouring tiles, blended smoothly (default: 64, or a
            quarter of a smaller tile).
        device: ``"auto"`` (CUDA, MPS, CPU), ``"cpu"``, ``"cuda"``...
        return_probabilities: also return float32 per-class probabilities.
        split_instances: also derive instances (seeded watershed of the object class inside
            the boundary class); needs a model with a ``boundary`` class.
        min_size: smallest instance kept by ``split_instances`` (pixels; None = 10).
        z_link_iou: ``split_instances`` of a z-stack: objects overlapping one in the previous
            slice with at least this IoU keep its id, as Mask R-CNN's (0 = no linking).
        precision: ``"auto"`` (bfloat16 where the CPU/GPU computes it natively), ``"fp32"``, ``"bf16"``.
        diameter: the objects' diameter in pixels; each plane is resized so its objects match
            the model's training diameter. None (default) = automatic: estimated per plane by a
            first pass (instances split by watershed; models with a ``boundary`` class), and
            rescaled only outside the model's trained range (see
            :mod:`~napari_unet_maskrcnn.core.object_size`); 0 = off (native scale).
        pixel_size_um: the image's pixel size (micrometres); with the model's, and no
            ``diameter``, planes are resized by their ratio instead of estimating.
        out: write the classes block by block into this zarr array (shaped like the result),
            or into a new OME-Zarr folder at this path (axes in T, Z, Y, X order), for
            results larger than memory; ``result.classes`` is then that zarr array.
        client: a ``dask.distributed.Client``: blocks are computed on its workers.
        block: block side (pixels) for ``out`` / ``client``; the result is the same for any.
            With ``out`` or ``client`` planes are segmented at their own scale: an automatic
            diameter is estimated on a central 1024 px window of the middle plane and reported;
            a given or estimated diameter that needs resizing is refused with the fix.
        tta: test-time augmentation: average the class probabilities over the four flips of
            every tile (4x the network time; see :mod:`~napari_unet_maskrcnn.core.flip_averaging`).
        overwrite: let ``out`` replace an earlier result of this plugin at that path (never
            anything else: :mod:`~napari_unet_maskrcnn.core.output_paths`).

    Every parameter is checked by name, with its range, before the model is loaded
    (:func:`~napari_unet_maskrcnn.core.validation.check_segment_call`).

    Yields ProgressEvent per tile (per block with ``out`` or ``client``; ``"rescaled tile"``
    in a second, resized pass); returns
    :class:`SemanticResult`.
    """
    from ..core.object_size import SizeRequest
    from ..core.postprocess import instances_from_class_stack
    from ..core.semantic_run import SemanticSettings, iter_semantic_run

    model_path = resolved_model(model)  # once per run
    blocks = out is not None or client is not None
    tile = auto_tile(check_tile_setting(tile), model_path, blocks, image, axes)  # None: sized to memory
    out = check_segment_call("semantic", {**locals(), "model": model})  # every parameter, before the model loads
    overlap = context(tile, overlap, DEFAULT_OVERLAP)
    check_tile(tile, overlap, "overlap")
    canonical, axes, spec = prepare(image, model_path, axes, "semantic", name=model)
    if split_instances and "boundary" not in spec.class_names:
        raise ValueError(
            f"Model '{model}' has classes {spec.class_names} without a 'boundary' class, so "
            "instances cannot be split from it; untick the instances option."
        )
    if blocks and (return_probabilities or split_instances):
        raise ValueError("Probabilities and split instances are computed in memory only: "
                         "leave out= and client= empty, or untick them.")
    run = network_run(model_path, device, precision, client, tta)
    boundary = spec.class_names.index("boundary") if "boundary" in spec.class_names else None
    min_size = INSTANCE_DEFAULTS["min_size"] if min_size is None else min_size
    n_classes = len(spec.class_names)
    probabilities = None
    if return_probabilities or split_instances:
        probabilities = np.zeros((n_classes, *canonical.shape[:4]), np.float32)
    with block_output(out, canonical, axes, np.uint8) as writer:
        sizes = yield from iter_semantic_run(
            plane_sources(canonical, spec, channel), writer, run,
            SemanticSettings(tile, overlap, block, boundary, min_size),
            SizeRequest.for_model(spec, diameter, pixel_size_um), n_classes,
            probabilities=probabilities, client=client, in_memory=not blocks,
        )
    classes, result_axes = block_result(writer, out, axes)
    instances = None
    if split_instances:
        instances = from_canonical(instances_from_class_stack(
            writer.array, probabilities, object_class=1, boundary_class=boundary, min_size=min_size,
            z_link_iou=z_link_iou,
        ), axes)
    if return_probabilities:
        probabilities = np.stack([from_canonical(p, axes) for p in probabilities])
    return SemanticResult(classes, list(spec.class_names), probabilities if return_probabilities else None,
                          result_axes, instances, *object_size_report(sizes))



def segment_semantic(
    image,
    model: str | os.PathLike,
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    **options,
) -> SemanticResult:
    """Run :func:`iter_segment_semantic` to the end (options as there).

    ``on_progress(event)`` is called after every tile; when ``should_cancel()`` returns True
    the run stops and :class:`Cancelled` is raised.
    """
    return drain(iter_segment_semantic(image, model, **options), on_progress, should_cancel)

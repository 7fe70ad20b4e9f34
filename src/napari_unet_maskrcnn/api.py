"""Public Python API: segment numpy images with U-Net (classes) or Mask R-CNN (instances).

Both tasks exist in two forms sharing one code path with the GUI and the CLI:

- ``iter_segment_*`` generators yield :class:`~napari_unet_maskrcnn.core.progress.ProgressEvent`
  after each tile and return the result (napari re-yields them from a worker; stopping the
  generator cancels the run within one tile);
- ``segment_*`` run to the end, with optional ``on_progress`` and ``should_cancel`` callbacks.

Example::

    from napari_unet_maskrcnn import api
    result = api.segment_instances(image, "maskrcnn-nuclei", axes="ZYX")
    result.labels      # uint32 (Z, Y, X), one id per nucleus, linked across z
    result.table       # dict of columns: label, class_name, score, area, bbox_*, centroid_*

Nuclei per tissue class (counts, density, mean size)::

    tissue = api.segment_semantic(rgb, "unet-tissue")
    nuclei = api.segment_instances(rgb, "maskrcnn-nuclei")
    measured = api.measure_objects(nuclei.labels, rgb, regions=tissue.classes,
                                   class_names=tissue.class_names)
    measured.summary   # per class: cells, region_area_*, density_*, mean_cell_area_*
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .core.arrays import as_array
from .core.axes import from_canonical, guess_axes, output_axes, to_canonical, validate_axes
from .core.blockwise import DEFAULT_BLOCK
from .core.device import inference_dtype
from .core.model_file import ModelFileError, ModelSpec, read_spec
from .core.object_size import ObjectSize, fixed_scale
from .core.progress import (
    CancelCheck,
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    ProgressGenerator,
    drain,
)
from .core.registry import ModelInfo, list_models, register_model_file, resolve_model
from .core.tiling import core_grid, grid

__all__ = [
    "Cancelled",
    "InstanceResult",
    "Measurements",
    "ModelFileError",
    "ModelInfo",
    "ProgressEvent",
    "SemanticResult",
    "get_model_spec",
    "iter_segment_instances",
    "iter_segment_semantic",
    "list_models",
    "measure_objects",
    "register_model_file",
    "segment_instances",
    "segment_semantic",
]

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64
DEFAULT_MARGIN = 64
MIN_TILE = 64
DEFAULT_PRECISION = "auto"
INSTANCE_DEFAULTS = {"score_threshold": 0.5, "mask_threshold": 0.5, "nms_iou": 0.5, "min_size": 10}


@dataclass
class SemanticResult:
    """U-Net output.

    Attributes:
        classes: uint8, the input's shape without its channel axis; value k = class_names[k].
        class_names: names of the classes, index 0 first.
        probabilities: float32 (K, *classes.shape) per-class probabilities, or None.
        axes: axes of ``classes`` (the input axes without C).
        instances: uint32 labels split from the object class by seeded watershed (one id per
            object, unique over the stack), when asked for with ``split_instances``.
        diameter, scale, object_size: how the planes were rescaled (see :func:`object_size_report`).
    """

    classes: np.ndarray
    class_names: list[str]
    probabilities: np.ndarray | None
    axes: str
    instances: np.ndarray | None = None
    diameter: float | None = None
    scale: float = 1.0
    object_size: dict = field(default_factory=dict)


@dataclass
class InstanceResult:
    """Mask R-CNN output.

    Attributes:
        labels: uint32, the input's shape without its channel axis; 0 = background, ids
            unique over the whole stack (linked across z).
        table: per-instance columns (label, class_id, class_name, score, area, bbox_*,
            centroid_*; ``t`` for time series), as numpy arrays of equal length.
        class_names: the model's object classes (class_id 1 first).
        axes: axes of ``labels``.
        diameter, scale, object_size: how the planes were rescaled (see :func:`object_size_report`).
    """

    labels: np.ndarray
    table: dict[str, np.ndarray]
    class_names: list[str]
    axes: str
    diameter: float | None = None
    scale: float = 1.0
    object_size: dict = field(default_factory=dict)


def get_model_spec(model: str | os.PathLike) -> ModelSpec:
    """The spec (task, classes, input channels, defaults) of a model name or file, without loading weights."""
    return read_spec(resolve_model(model))


def _prepare(image, model, axes, device, task: str):
    """Validate inputs and load the model: returns (canonical TZYXC view, axes, spec, network, device)."""
    from .core.device import choose_device
    from .core.registry import load_model

    image = as_array(image)  # numpy, or dask left lazy: planes and tiles are read when needed
    if image.ndim < 2 or image.size == 0:
        raise ValueError(
            f"The image has shape {image.shape}; segmentation needs at least a 2D (Y, X) image."
        )
    axes = guess_axes(image.shape) if axes is None else validate_axes(axes, image.shape)
    dev = choose_device(device)
    spec, network = load_model(model, dev)
    if spec.task != task:
        other = "segment_instances / the Mask R-CNN widget" if spec.task == "instances" else (
            "segment_semantic / the U-Net widget")
        raise ValueError(
            f"Model '{model}' is a {spec.task} model ({spec.arch}); use it with {other}."
        )
    return to_canonical(image, axes), axes, spec, network, dev


def _plane(canonical: np.ndarray, t: int, z: int) -> np.ndarray:
    """(H, W) or (H, W, C) plane of a canonical TZYXC array (no copy)."""
    plane = canonical[t, z]
    return plane[..., 0] if plane.shape[-1] == 1 else plane


def _context(tile: int, given: int | None, default: int) -> int:
    """Overlap/margin in pixels: as given, else ``default`` capped at a quarter of the tile."""
    return int(given) if given is not None else min(default, max(int(tile) // 4, 0))


def _check_tile(tile: int, context: int, name: str) -> None:
    if tile < MIN_TILE or tile <= 2 * context:
        raise ValueError(
            f"Tile size {tile} is too small for {name} {context}: use a tile of at least "
            f"{max(MIN_TILE, 2 * context + 32)} pixels."
        )


class _RunProgress:
    """Progress over all planes of a run; a plane's tile count may change (a resized pass)."""

    def __init__(self, per_plane: int, planes: int):
        self.per_plane = per_plane
        self.total = per_plane * planes
        self.done = 0

    def relay(self, gen: ProgressGenerator) -> ProgressGenerator:
        """Re-yield a per-plane generator's events on the whole run's scale; return its result."""
        counted = self.per_plane
        try:
            event = next(gen)
            while True:
                if event.total != counted:
                    self.total += event.total - counted
                    counted = event.total
                yield ProgressEvent(self.done + event.done, self.total, event.stage)
                event = next(gen)
        except StopIteration as stop:
            return stop.value
        finally:
            gen.close()
            self.done += counted


def object_size_report(sizes: list[ObjectSize]) -> tuple[float | None, float, dict]:
    """``(diameter, scale, metadata)`` of a run from its planes' :class:`ObjectSize`.

    ``diameter``: the objects' diameter in the image's pixels (the median of the planes'
    estimates, or the given value; None when not estimated); ``scale``: the planes' resize
    factor (their median when they differ); ``metadata``: mode, diameter, scale, the model's
    diameter and, for stacks, every plane's values.
    """
    diameters = [size.diameter for size in sizes if size.diameter is not None]
    diameter = float(np.median(diameters)) if diameters else None
    scale = float(np.median([size.scale for size in sizes]))
    metadata = {**sizes[0].as_dict(), "diameter": diameter, "scale": scale}
    if len(sizes) > 1:
        metadata["planes"] = [size.as_dict() for size in sizes]
    return diameter, scale, metadata


def iter_segment_semantic(
    image,
    model: str | os.PathLike,
    *,
    axes: str | None = None,
    channel: int | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int | None = None,
    device: str = "auto",
    return_probabilities: bool = False,
    split_instances: bool = False,
    z_link_iou: float = 0.3,
    min_size: int | None = None,
    precision: str = DEFAULT_PRECISION,
    diameter: float | None = None,
    pixel_size_um: float | None = None,
    out=None,
    client=None,
    block: int = DEFAULT_BLOCK,
) -> ProgressGenerator[SemanticResult]:
    """Per-pixel classes of every 2D plane of ``image`` with a U-Net model.

    Args:
        image: array of any dtype; its axes are ``axes`` (letters T, Z, C, Y, X), guessed when None.
        model: a model name (see :func:`list_models`) or a model file path.
        channel: which channel to segment when the image has several (not RGB).
        tile: tile edge in pixels; peak memory grows with tile**2, not with the image.
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
            With ``out`` or ``client`` planes are segmented at their own scale (an automatic
            diameter is not estimated; a diameter that needs resizing is refused).

    Yields ProgressEvent per tile (per block with ``out`` or ``client``; ``"rescaled tile"``
    in a second, resized pass); returns
    :class:`SemanticResult`.
    """
    from .core.inputs import prepare_plane
    from .core.object_size import segment_at_object_size, semantic_to_grid
    from .core.postprocess import instances_from_classes
    from .core.semantic import predict_semantic_plane

    overlap = _context(tile, overlap, DEFAULT_OVERLAP)
    _check_tile(tile, overlap, "overlap")
    canonical, axes, spec, network, dev = _prepare(image, model, axes, device, "semantic")
    if split_instances and "boundary" not in spec.class_names:
        raise ValueError(
            f"Model '{model}' has classes {spec.class_names} without a 'boundary' class, so "
            "instances cannot be split from it; untick the instances option."
        )
    mode, scale = fixed_scale(diameter, spec.object_diameter_px, pixel_size_um, spec.pixel_size_um)
    if out is not None or client is not None:
        if return_probabilities or split_instances:
            raise ValueError("Probabilities and split instances are computed in memory only: "
                             "leave out= and client= empty, or untick them.")
        _check_native_scale(scale)
        return (yield from _semantic_blocks(canonical, axes, spec, model, dev, channel, tile, overlap,
                                            precision, out, client, block))
    n_t, n_z, height, width, _ = canonical.shape
    n_classes = len(spec.class_names)
    keep_probabilities = return_probabilities or split_instances
    boundary = spec.class_names.index("boundary") if "boundary" in spec.class_names else None
    min_size = INSTANCE_DEFAULTS["min_size"] if min_size is None else min_size
    progress = _RunProgress(len(grid((height, width), tile, tile - overlap)), n_t * n_z)
    classes = np.zeros((n_t, n_z, height, width), np.uint8)
    probabilities = (
        np.zeros((n_classes, n_t, n_z, height, width), np.float32) if keep_probabilities else None
    )

    def predict(source, resized: bool):
        return predict_semantic_plane(
            source, network, tile=tile, overlap=overlap, device=dev,
            return_probabilities=keep_probabilities or resized,
            autocast_dtype=inference_dtype(precision, dev),
        )

    def measure(result):
        if boundary is None:
            return None
        return instances_from_classes(result[0], object_class=1, boundary_class=boundary, min_size=min_size)

    sizes = []
    for t in range(n_t):
        for z in range(n_z):
            source = prepare_plane(_plane(canonical, t, z), spec.in_channels, channel, spec.normalization)
            plane_gen = segment_at_object_size(
                source, predict, measure, semantic_to_grid, mode=mode, scale=scale,
                model_diameter=spec.object_diameter_px, diameter=diameter,
            )
            (plane_classes, plane_probs), size = yield from progress.relay(plane_gen)
            sizes.append(size)
            classes[t, z] = plane_classes
            if probabilities is not None:
                probabilities[:, t, z] = plane_probs
    instances = None
    if split_instances:
        from .core.postprocess import instances_from_class_stack

        instances = from_canonical(instances_from_class_stack(
            classes, probabilities, object_class=1, boundary_class=boundary, min_size=min_size,
            z_link_iou=z_link_iou,
        ), axes)
    out_probs = None
    if return_probabilities:
        out_probs = np.stack([from_canonical(p, axes) for p in probabilities])
    return SemanticResult(from_canonical(classes, axes), list(spec.class_names), out_probs,
                          output_axes(axes), instances, *object_size_report(sizes))


def iter_segment_instances(
    image,
    model: str | os.PathLike,
    *,
    axes: str | None = None,
    channel: int | None = None,
    tile: int = DEFAULT_TILE,
    margin: int | None = None,
    device: str = "auto",
    score_threshold: float | None = None,
    mask_threshold: float | None = None,
    nms_iou: float | None = None,
    min_size: int | None = None,
    z_link_iou: float = 0.3,
    spacing: tuple[float, ...] | None = None,
    precision: str = "fp32",
    diameter: float | None = None,
    pixel_size_um: float | None = None,
    out=None,
    client=None,
    block: int = DEFAULT_BLOCK,
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
        precision: as in :func:`iter_segment_semantic`, but float32 by default: bfloat16 cost
            Mask R-CNN 1-2 points of AP(0.5) on DSB2018 (scores and boxes shift), while the
            U-Net's classes are unchanged by it.
        diameter, pixel_size_um: as in :func:`iter_segment_semantic`; the automatic estimate is
            the median equivalent diameter of the objects of a first pass at native scale.
            ``margin`` and ``tile`` are in pixels of the resized plane, ``min_size`` in the
            image's pixels.
        out, client, block: as in :func:`iter_segment_semantic` (``result.labels`` is then the
            zarr array); the labels and the table equal the in-memory ones.

    Yields ProgressEvent per tile (per block with ``out`` or ``client``; ``"rescaled tile"``
    in a second, resized pass); returns
    :class:`InstanceResult`.
    """
    from .core.inputs import prepare_plane
    from .core.instance_table import instance_table
    from .core.instances import predict_instances_plane
    from .core.object_size import instances_to_grid, segment_at_object_size
    from .core.linking import link_slices
    from .core.models.maskrcnn import detect

    margin = _context(tile, margin, DEFAULT_MARGIN)
    _check_tile(tile, margin, "margin")
    canonical, axes, spec, network, dev = _prepare(image, model, axes, device, "instances")
    settings = {**INSTANCE_DEFAULTS, **{k: v for k, v in spec.defaults.items() if k in INSTANCE_DEFAULTS}}
    given = {"score_threshold": score_threshold, "mask_threshold": mask_threshold, "nms_iou": nms_iou,
             "min_size": min_size}
    settings.update({k: v for k, v in given.items() if v is not None})
    score_threshold, mask_threshold, nms_iou, min_size = (settings[k] for k in INSTANCE_DEFAULTS)
    for name in ("score_threshold", "mask_threshold", "nms_iou"):
        if not 0.0 <= settings[name] <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1 (got {settings[name]}).")
    mode, scale = fixed_scale(diameter, spec.object_diameter_px, pixel_size_um, spec.pixel_size_um)
    if out is not None or client is not None:
        _check_native_scale(scale)
        return (yield from _instance_blocks(
            canonical, axes, spec, model, dev, channel, tile, margin, precision, out, client, block,
            dict(score_threshold=score_threshold, nms_iou=nms_iou), mask_threshold, min_size, z_link_iou,
            spacing,
        ))
    n_t, n_z, height, width, _ = canonical.shape
    detector = partial(detect, network, score_threshold=score_threshold, nms_iou=nms_iou, device=dev,
                       autocast_dtype=inference_dtype(precision, dev))
    progress = _RunProgress(len(core_grid((height, width), tile, margin)), n_t * n_z)
    labels = np.zeros((n_t, n_z, height, width), np.uint32)

    def predict(source, resized: bool):
        area_ratio = source.shape[0] * source.shape[1] / (height * width)
        return predict_instances_plane(
            source, detector, tile=tile, margin=margin, mask_threshold=mask_threshold,
            min_size=int(min_size * area_ratio) if resized else min_size,
        )

    def to_grid(plane, shape):
        return instances_to_grid(plane, shape, min_size)

    tables, sizes = [], []
    next_id = 0
    for t in range(n_t):
        planes = []
        for z in range(n_z):
            source = prepare_plane(_plane(canonical, t, z), spec.in_channels, channel, spec.normalization)
            plane_gen = segment_at_object_size(
                source, predict, lambda plane: plane.labels, to_grid, mode=mode, scale=scale,
                model_diameter=spec.object_diameter_px, diameter=diameter,
            )
            plane, size = yield from progress.relay(plane_gen)
            planes.append(plane)
            sizes.append(size)
        stack, scores, classes = link_slices(planes, z_link_iou if n_z > 1 else 0.0)
        table = instance_table(
            stack if n_z > 1 else stack[0], scores, classes, list(spec.class_names),
            spacing=_table_spacing(spacing, n_z),
        )
        table["label"] = table["label"] + next_id
        if n_t > 1:
            table["t"] = np.full(len(table["label"]), t, np.int64)
        tables.append(table)
        labels[t] = np.where(stack > 0, stack.astype(np.uint32) + np.uint32(next_id), 0)
        next_id += len(scores)
    table = {key: np.concatenate([tab[key] for tab in tables]) for key in tables[0]}
    return InstanceResult(from_canonical(labels, axes), table, list(spec.class_names), output_axes(axes),
                          *object_size_report(sizes))


def _check_native_scale(scale: float | None) -> None:
    if scale not in (None, 1.0):
        raise ValueError(f"out= and client= segment planes at their own scale, but the diameter asks to resize "
                         f"them by {scale:.2f}: give diameter=0 (GUI/CLI: 0), or resize the image first.")


def _plane_sources(canonical, spec, channel) -> dict:
    from .core.inputs import prepare_plane

    n_t, n_z = canonical.shape[:2]
    return {(t, z): prepare_plane(_plane(canonical, t, z), spec.in_channels, channel, spec.normalization)
            for t in range(n_t) for z in range(n_z)}


def _block_output(out, canonical, axes, dtype):
    """Context manager giving the (T, Z, H, W) writer: ``out``, or a numpy array when None."""
    from contextlib import nullcontext

    from .core.blockwise import CanonicalWriter, open_output

    shape = canonical.shape[:4]
    if out is None:
        return nullcontext(CanonicalWriter(np.zeros(shape, dtype), "TZYX"))
    return open_output(out, shape, output_axes(axes), dtype)


def _block_result(writer, out, axes):
    """The result array and its axes: in memory, the given array, or the zarr array written at ``out``."""
    from .core.blockwise import CanonicalWriter

    if out is None:
        return from_canonical(writer.array, axes), output_axes(axes)
    if isinstance(out, CanonicalWriter):
        return out.array, out.axes
    if isinstance(out, (str, os.PathLike)):
        import zarr

        from .core.zarr_io import label_array_path

        return zarr.open_array(label_array_path(out, False), mode="r+"), writer.axes
    return out, output_axes(axes)


def _semantic_blocks(canonical, axes, spec, model, dev, channel, tile, overlap, precision, out, client, block):
    from .core.blockwise import NetworkRun, iter_semantic_blocks

    run = NetworkRun(str(resolve_model(model)), str(dev), precision)
    sources = _plane_sources(canonical, spec, channel)
    with _block_output(out, canonical, axes, np.uint8) as writer:
        yield from iter_semantic_blocks(sources, writer, run, tile=tile, overlap=overlap, block=block,
                                        client=client)
    classes, result_axes = _block_result(writer, out, axes)
    return SemanticResult(classes, list(spec.class_names), None, result_axes)


def _instance_blocks(canonical, axes, spec, model, dev, channel, tile, margin, precision, out, client, block,
                     detector_options, mask_threshold, min_size, z_link_iou, spacing):
    from .core.blockwise import NetworkRun, iter_instance_blocks, object_table

    run = NetworkRun(str(resolve_model(model)), str(dev), precision)
    sources = _plane_sources(canonical, spec, channel)
    n_z = canonical.shape[1]
    with _block_output(out, canonical, axes, np.uint32) as writer:
        per_time = yield from iter_instance_blocks(
            sources, writer, run, tile=tile, margin=margin, mask_threshold=mask_threshold, min_size=min_size,
            detector_options=detector_options, z_link_iou=z_link_iou if n_z > 1 else 0.0, block=block,
            client=client,
        )
    tables, next_id = [], 0
    for t, (scores, classes, objects, ids) in enumerate(per_time):
        table = object_table(objects, ids, scores, classes, list(spec.class_names), n_z, _table_spacing(spacing, n_z))
        table["label"] = table["label"] + next_id
        if len(per_time) > 1:
            table["t"] = np.full(len(table["label"]), t, np.int64)
        tables.append(table)
        next_id += len(scores)
    table = {key: np.concatenate([tab[key] for tab in tables]) for key in tables[0]}
    labels, result_axes = _block_result(writer, out, axes)
    return InstanceResult(labels, table, list(spec.class_names), result_axes)


def _table_spacing(spacing, n_z: int):
    """Spacing matching the table's dimensionality: (z, y, x) for stacks, (y, x) for planes."""
    if spacing is None:
        return None
    spacing = tuple(float(s) for s in spacing)
    if n_z > 1:
        return spacing[-3:] if len(spacing) >= 3 else (1.0,) + spacing[-2:]
    return spacing[-2:]


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


@dataclass
class Measurements:
    """Output of :func:`measure_objects`.

    Attributes:
        objects: one row per object (columns of equal length): label, area, centroid_*,
            bbox_*, shape and intensity columns, and ``region_id`` / ``region`` with regions
            (see :func:`napari_unet_maskrcnn.core.measure.measure_instances`).
        summary: one row per region class and "all": region, cells, region_area_<unit>,
            density_<unit>, mean_cell_area_<unit>, mean intensities (lists of equal length).
    """

    objects: dict[str, np.ndarray]
    summary: dict[str, list]


def measure_objects(
    labels,
    image=None,
    *,
    regions=None,
    class_names: list[str] | None = None,
    spacing: tuple[float, ...] | None = None,
    channel_axis: int | None = None,
    channel_names: list[str] | None = None,
) -> Measurements:
    """Measure each object of ``labels`` and summarise the objects per region class.

    Args:
        labels: instance labels, (Y, X) or (Z, Y, X), 0 = background (e.g. ``InstanceResult.labels``).
        image: intensities of the same spatial shape, optionally with a last channel axis
            (e.g. the RGB image, (Y, X, 3)); with several channels and no ``channel_axis``
            the last axis is taken for channels, named red, green, blue(, alpha) when there
            are 3 or 4.
        regions: class map of the same shape as ``labels`` (e.g. ``SemanticResult.classes``).
        class_names: names of the region classes (e.g. ``SemanticResult.class_names``).
        spacing: pixel size per axis of ``labels`` in µm; areas and densities are then in
            µm² and cells per mm² (else pixels).
        channel_axis, channel_names: the channel axis of ``image`` and its channels' names.

    Returns: :class:`Measurements`.
    """
    from .core.measure import COLOUR_NAMES, measure_objects as measure

    labels = np.asarray(labels)
    if image is not None:
        image = np.asarray(image)
        if channel_axis is None and image.ndim == labels.ndim + 1:
            channel_axis = image.ndim - 1
            if channel_names is None and image.shape[-1] in (3, 4):
                channel_names = list(COLOUR_NAMES[: image.shape[-1]])
    objects, summary = measure(labels, image, spacing, regions, class_names, channel_axis, channel_names)
    return Measurements(objects, summary)

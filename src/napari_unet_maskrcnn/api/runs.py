"""What every segmentation run shares: tile/overlap defaults and checks, loading the model
for an image, planes of the canonical TZYXC view, progress over all planes."""

from __future__ import annotations

import numpy as np

from ..core.arrays import as_array
from ..core.axes import guess_axes, to_canonical, validate_axes
from ..core.settings import INSTANCE_FALLBACKS, TILE_CONTEXT, segment_default
from ..core.validation import MIN_TILE, check_ambiguous_axes

DEFAULT_TILE = 512
DEFAULT_OVERLAP = DEFAULT_MARGIN = TILE_CONTEXT  # declared once in core.settings
DEFAULT_PRECISION = segment_default("precision", "semantic")
INSTANCE_DEFAULTS = INSTANCE_FALLBACKS



def resolved_model(model):
    """The model file of ``model`` (a name or a path), resolved once per run: later steps take the path."""
    import os

    from ..core.registry import resolve_model

    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a model name or a model file path; got {type(model).__name__}.")
    return resolve_model(model)


def prepare(image, model, axes, task: str, name=None):
    """Validate the image and the model's task: returns (canonical TZYXC view, axes, spec).

    ``model`` is a model file path (:func:`resolved_model`), ``name`` what the caller called
    it (for messages). Only the model file's spec is read (no torch, no weights): see
    :func:`network_run`.
    """
    from ..core.model_file import read_spec

    image = as_array(image)  # numpy, or dask left lazy: planes and tiles are read when needed
    if image.ndim < 2 or image.size == 0:
        raise ValueError(
            f"The image has shape {image.shape}; segmentation needs at least a 2D (Y, X) image."
        )
    if axes is None:
        check_ambiguous_axes(image.shape)
    axes = guess_axes(image.shape) if axes is None else validate_axes(axes, image.shape)
    spec = read_spec(model)
    name = model if name is None else name
    if spec.task != task:
        other = "segment_instances / the Mask R-CNN widget" if spec.task == "instances" else (
            "segment_semantic / the U-Net widget")
        raise ValueError(
            f"Model '{name}' is a {spec.task} model ({spec.arch}); use it with {other}."
        )
    return to_canonical(image, axes), axes, spec


def network_run(model, device: str, precision: str, client, tta: bool = False):
    """The :class:`~..core.blockwise.NetworkRun` of a run; its network is loaded where it computes.

    Without a ``client`` the network is loaded here and now, so a bad device or model file
    fails before anything is written; with one, this process never imports torch or holds
    the weights (the workers load them once each), which keeps a cluster run's client small.
    """
    from ..core.blockwise import NetworkRun
    from ..core.registry import resolve_model

    run = NetworkRun(str(resolve_model(model)), str(device), precision, tta)
    if client is None:
        run.load()
    return run


def auto_tile(tile: int | None, model, blocks: bool = False, image=None, axes: str | None = None) -> int:
    """The tile side of a run: ``tile`` when given, else the largest that fits the activation budget.

    The default (``tile=None``) is sized to the model (:func:`~..core.tiling.activation_bytes_per_pixel`)
    and the budget (:func:`~..core.tiling.tile_budget_bytes`, 1 GiB unless
    ``NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB`` says otherwise; half of it for block runs, ``blocks``),
    so planes up to that size are segmented in one pass (a U-Net's at most
    :data:`~..core.tiling.UNET_FASTEST_TILE`, measured faster). For a U-Net and a plane larger than
    that, given ``image`` (and its ``axes``), the tile shrinks to the smallest that needs no more
    tiles (:func:`~..core.tiling.balanced_tile`), so the last tile of a row is not shifted back
    over its neighbour. Only the model file's spec is read.
    """
    if tile is not None:
        return tile  # checked by name with the other parameters (validation.check_segment_call)
    from ..core.model_file import read_spec
    from ..core.registry import resolve_model
    from ..core.tiling import (BLOCK_RUN_BUDGET_SHARE, UNET_FASTEST_TILE, activation_bytes_per_pixel,
                               balanced_tile, tile_budget_bytes, tile_for_budget)

    spec = read_spec(resolve_model(model))
    share = BLOCK_RUN_BUDGET_SHARE if blocks else 1.0
    tile = tile_for_budget(activation_bytes_per_pixel(spec.arch, spec.config, spec.in_channels),
                           tile_budget_bytes(share))
    if spec.arch != "unet":
        return tile  # Mask R-CNN cores already split a plane evenly (core_grid)
    tile = min(tile, UNET_FASTEST_TILE)  # measured faster than larger U-Net tiles
    if image is None:
        return tile
    try:
        shape = tuple(np.shape(image))
        axes = guess_axes(shape) if axes is None else validate_axes(axes, shape)
        plane = (shape[axes.index("Y")], shape[axes.index("X")])
    except (ValueError, TypeError):
        return tile  # prepare() reports the bad axes
    return balanced_tile(plane, tile, context(tile, None, DEFAULT_OVERLAP))


def canonical_plane(canonical: np.ndarray, t: int, z: int) -> np.ndarray:
    """(H, W) or (H, W, C) plane of a canonical TZYXC array (no copy)."""
    plane = canonical[t, z]
    return plane[..., 0] if plane.shape[-1] == 1 else plane


def context(tile: int, given: int | None, default: int) -> int:
    """Overlap/margin in pixels: as given, else ``default`` capped at a quarter of the tile."""
    return int(given) if given is not None else min(default, max(int(tile) // 4, 0))


def check_tile(tile: int, context: int, name: str) -> None:
    if tile < MIN_TILE or tile <= 2 * context:
        raise ValueError(
            f"Tile size {tile} is too small for {name} {context}: use a tile of at least "
            f"{max(MIN_TILE, 2 * context + 32)} pixels."
        )


def table_spacing(spacing, n_z: int):
    """Spacing matching the table's dimensionality: (z, y, x) for stacks, (y, x) for planes."""
    if spacing is None:
        return None
    spacing = tuple(float(s) for s in spacing)
    if n_z > 1:
        return spacing[-3:] if len(spacing) >= 3 else (1.0,) + spacing[-2:]
    return spacing[-2:]

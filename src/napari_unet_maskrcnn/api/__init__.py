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

from ..core.model_file import ModelFileError, ModelSpec, read_spec
from ..core.progress import Cancelled, ProgressEvent
from ..core.registry import ModelInfo, list_models, register_model_file, resolve_model
from .instances import iter_segment_instances, segment_instances
from .evaluation import Evaluation, evaluate, evaluate_pairs, guess_kind, iter_evaluate
from .measurement import iter_measure, measure, measure_objects
from .results import InstanceResult, Measurements, SemanticResult
from .runs import DEFAULT_TILE, MIN_TILE  # noqa: F401  (the widgets' tile-size field)
from .semantic import iter_segment_semantic, segment_semantic
from .training import train

__all__ = [
    "Cancelled",
    "Evaluation",
    "InstanceResult",
    "Measurements",
    "ModelFileError",
    "ModelInfo",
    "ProgressEvent",
    "SemanticResult",
    "evaluate",
    "evaluate_pairs",
    "get_model_spec",
    "guess_kind",
    "iter_evaluate",
    "iter_measure",
    "iter_segment_instances",
    "iter_segment_semantic",
    "list_models",
    "measure",
    "measure_objects",
    "register_model_file",
    "segment_instances",
    "segment_semantic",
    "train",
]


def get_model_spec(model: str | os.PathLike) -> ModelSpec:
    """The spec (task, classes, input channels, defaults) of a model name or file, without loading weights."""
    return read_spec(resolve_model(model))

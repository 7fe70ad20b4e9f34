"""Training U-Net and Mask R-CNN models from labelled images (no napari, no prints).

Example::

    from napari_unet_maskrcnn.core.training import TrainConfig, load_pairs, train_unet

    pairs = load_pairs("images/", "labels/")          # matched by file stem
    result = train_unet(pairs, output="nuclei.safetensors",
                        config=TrainConfig(minutes=30, val_fraction=0.2),
                        on_progress=print)             # TrainEvent per step / epoch
    result.best_metrics                                # {"object_iou": 0.87, ...}

Modules: :mod:`.data` (pairs, split, sampling, targets), :mod:`.augment` (crops and
augmentation), :mod:`.tasks` (per-architecture losses and validation), :mod:`.config`
(recipe and learning-rate schedule), :mod:`.checkpoint` (resumable ``last.pt``),
:mod:`.builders` (``train_unet``, ``train_maskrcnn``), :mod:`.loop` (the run: epochs,
validation, best model), :mod:`.events` (progress and results), :mod:`.precision` (autocast,
clock), :mod:`.provenance` (what a model file records about its training).
"""

from .augment import AugmentSettings
from .config import TrainConfig
from .data import TrainingPair, load_pairs, read_name_list, split_pairs
from .builders import train_maskrcnn, train_unet
from .events import EpochReport, TrainEvent, TrainResult

__all__ = [
    "AugmentSettings",
    "EpochReport",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "TrainingPair",
    "load_pairs",
    "read_name_list",
    "split_pairs",
    "train_maskrcnn",
    "train_unet",
]

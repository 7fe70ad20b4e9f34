"""Every user-facing setting of segmentation and training, declared once.

A :class:`Setting` holds a setting's name (the API keyword; the command line flag is
``--name-with-dashes``, the widget's label ``label``), its type, default, valid range and help
text. Every front end is made from these declarations:

- the API: the signatures of ``api.iter_segment_*`` / ``api.train`` take their defaults from
  here, and :func:`~.validation.check_segment_call` / :func:`check_settings` check the values
  by name and range;
- the command line: :meth:`Setting.add_argument` makes the ``argparse`` flag
  (``cli/segment.py``, ``cli/train.py``);
- the napari widgets: ``napari_plugin/settings_widgets.py`` makes the field (label, default,
  range, tooltip).

Meanings shared by all three:

- ``diameter``: None (an empty field, no ``--diameter``, the widget's "automatic" box) =
  automatic (estimated from the image); 0 = off (native scale); a number = the objects'
  diameter in pixels.
- a setting whose default is None and that has a ``fallback`` takes the model file's own
  default, else the fallback (the widgets show the fallback, then the chosen model's default).

This module imports nothing of napari, Qt or torch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from .validation import MAX_BLOCK, MAX_MIN_SIZE, MAX_TILE, MIN_BLOCK, MIN_TILE, PRECISIONS, check_number

TILE_CONTEXT = 64
"""Default context of a tile in pixels: U-Net tiles overlap by it, Mask R-CNN reads it around each tile's core
(a quarter of a smaller tile)."""
BLOCK = 4096
"""Default block side (pixels) of ``out=`` / ``client=`` runs (``core.blockwise.DEFAULT_BLOCK``)."""
AUGMENT_RECIPES = ("standard", "strong", "histology", "robust", "robust-lowres", "none")
BACKBONES = ("resnet18", "resnet34", "resnet50")


@dataclass(frozen=True)
class Setting:
    """One setting, declared once for the API, the command line and the widgets.

    Attributes:
        name: the API keyword; the flag is ``--`` + name with dashes unless ``flag`` says otherwise.
        kind: ``int``, ``float``, ``bool`` or ``str``.
        default: the API's and the command line's default (None: automatic / the model's).
        help: what it does, as the command line's help and the widget's tooltip say it.
        label: the widget's label (default: the name with spaces).
        low, high: valid range (numbers), inclusive.
        unit: the range's unit, for messages.
        choices: the valid values (strings).
        fallback: the value used when ``default`` None and the model file gives none.
        flag: the command line flag, when it is not derived from the name.
        aliases: older flags still accepted (deprecated).
        widget_default: the widget's starting value, when the dock starts elsewhere (say why in ``help``).
        step: the widget's step.
    """

    name: str
    kind: type
    default: Any
    help: str
    label: str = ""
    low: float | None = None
    high: float | None = None
    unit: str = ""
    choices: tuple[str, ...] | None = None
    fallback: Any = None
    flag: str = ""
    aliases: tuple[str, ...] = ()
    widget_default: Any = field(default=None, compare=False)
    step: float | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def widget_label(self) -> str:
        return self.label or self.name.replace("_", " ")

    @property
    def shown_default(self) -> Any:
        """The widget's starting value: ``widget_default``, else the default (the fallback for None)."""
        if self.widget_default is not None:
            return self.widget_default
        return self.fallback if self.default is None else self.default

    def check(self, value, name: str | None = None):
        """``value`` checked against the type and range (TypeError / ValueError naming ``name``)."""
        name = name or self.name
        if value is None:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False; got {value!r}.")
            return value
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"{name} must be one of {', '.join(self.choices)}; got {value!r}.")
            return value
        if self.kind in (int, float):
            return check_number(name, value, low=self.low, high=self.high, integer=self.kind is int,
                                unit=self.unit)
        return value

    def add_argument(self, parser, **overrides) -> argparse.Action:
        """The command line flag of this setting on ``parser`` (argparse; ``dest`` is the name)."""
        options: dict[str, Any] = dict(dest=self.name, help=self.cli_help())
        if self.kind is bool:
            options.update(action="store_true", default=bool(self.default))
        else:
            options.update(type=self.kind, default=self.default)
            if self.choices is not None:
                options["choices"] = self.choices
        options.update(overrides)
        flags = [self.cli_flag, *self.aliases]
        return parser.add_argument(*flags, **options)

    def cli_help(self) -> str:
        text = self.help
        if self.default is not None and self.kind is not bool and "default" not in text:
            text += f" (default {self.default})"
        if self.aliases:
            text += f" ({', '.join(self.aliases)}: deprecated spelling)"
        return text.replace("%", "%%")


def _fraction(name: str, help: str, label: str = "", default=None, fallback=None) -> Setting:
    return Setting(name, float, default, help, label=label, low=0.0, high=1.0, fallback=fallback, step=0.05)


# -- segmentation -------------------------------------------------------------------------------------

SEGMENT_SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("channel", int, None, "channel to segment in multichannel images (0-based)", low=0),
    Setting("tile", int, None,
            "tile edge in pixels; memory grows with tile², not with the image (default: the largest tile whose "
            "activations fit 1 GiB, NAPARI_UNET_MASKRCNN_TILE_BUDGET_MB; half of it for zarr output and clusters)",
            label="tile size", low=MIN_TILE, high=MAX_TILE, unit="pixels", step=64),
    Setting("overlap", int, None,
            f"semantic: pixels shared by neighbouring tiles, blended (default {TILE_CONTEXT}, or a quarter of "
            "a smaller tile)", low=0, high=MAX_TILE // 2, unit="pixels", fallback=TILE_CONTEXT),
    Setting("margin", int, None,
            f"instances: context pixels read around each tile's core; keep it above the object diameter "
            f"(default {TILE_CONTEXT}, or a quarter of a smaller tile)", low=0, high=MAX_TILE // 2, unit="pixels",
            fallback=TILE_CONTEXT),
    Setting("device", str, "auto", "auto (CUDA, MPS, CPU), cpu, cuda, mps"),
    Setting("precision", str, "auto",
            "auto (default): bfloat16 where the CPU/GPU computes it natively (Mask R-CNN: its mask head "
            "only, detections and scores in float32: bf16 throughout costs it 1-2 points of AP); fp32; bf16",
            choices=PRECISIONS),
    _fraction("score_threshold", "instances: detections scoring lower are dropped (default: the model's, "
              "else 0.5)", fallback=0.5),
    _fraction("mask_threshold", "instances: mask probability above which a pixel belongs to the object "
              "(default: the model's, else 0.5)", fallback=0.5),
    _fraction("nms_iou", "instances: of boxes overlapping more than this IoU only the best is kept "
              "(default: the model's, else 0.5)", label="NMS IoU", fallback=0.5),
    Setting("min_size", int, None, "objects smaller than this many pixels are dropped (default: the model's, "
            "else 10; U-Net: with split_instances)", label="minimum size", low=0, high=MAX_MIN_SIZE,
            unit="pixels", fallback=10),
    _fraction("z_link_iou", "objects overlapping one in the previous z-slice with at least this IoU keep its id "
              "(instances and split_instances; 0 = no linking)", label="z-linking IoU", default=0.3),
    Setting("diameter", float, None,
            "object diameter in pixels: each plane is resized so its objects match the model's training size. "
            "Not given (None, an empty field) = automatic: estimated from the image, resized only outside the "
            "model's trained range; "
            "0 = off (native scale)", label="object diameter (px)", low=0.0, unit="pixels", step=1.0),
    Setting("return_probabilities", bool, False,
            "semantic: also return each class's probability (float32, 0-1); the command line writes "
            "DIR/<stem>_probabilities.tif", aliases=("--probabilities",)),
    Setting("split_instances", bool, False,
            "semantic models with a boundary class: also split the object class into one id per object "
            "(seeded watershed); the command line writes these instead of the classes",
            label="split instances (watershed)"),
    Setting("tta", bool, False,
            "test-time augmentation over each tile's four flips (4x the network time): U-Nets average the "
            "class probabilities, Mask R-CNNs fuse the detections (objects found in few views are dropped)",
            label="test-time flips (4x slower)"),
    Setting("block", int, BLOCK, f"block side in pixels for zarr output and clusters (default {BLOCK})",
            low=MIN_BLOCK, high=MAX_BLOCK, unit="pixels"),
    Setting("overwrite", bool, False,
            "replace outputs that exist already (zarr: only results of this plugin); without it an existing "
            "output stops the run before it starts"),
)}

SEMANTIC = ("channel", "tile", "overlap", "device", "return_probabilities", "split_instances", "z_link_iou",
            "min_size", "precision", "diameter", "block", "tta", "overwrite")
"""The settings of ``api.iter_segment_semantic``."""
INSTANCES = ("channel", "tile", "margin", "device", "score_threshold", "mask_threshold", "nms_iou", "min_size",
             "z_link_iou", "precision", "tta", "diameter", "block", "overwrite")
"""The settings of ``api.iter_segment_instances``."""
INSTANCE_FALLBACKS = {name: SEGMENT_SETTINGS[name].fallback
                      for name in ("score_threshold", "mask_threshold", "nms_iou", "min_size")}
"""Mask R-CNN settings a model file may set (``ModelSpec.defaults``), and their values when it does not."""


def check_tile_setting(tile):
    """``tile`` checked by name and range (None stays None: sized to memory)."""
    return SEGMENT_SETTINGS["tile"].check(tile)


def segment_default(name: str, task: str) -> Any:
    """The API default of setting ``name`` for ``task`` ("semantic" or "instances"): today the same for both."""
    return SEGMENT_SETTINGS[name].default


# -- training -----------------------------------------------------------------------------------------

UNET_SCRATCH = {"depth": 4, "base_width": 16}
"""U-Net size trained from scratch (that of the bundled U-Nets: quick on a CPU), in every front end."""
MASKRCNN_SCRATCH = {"backbone": "resnet18", "fpn_channels": 128, "mask_head_channels": 128, "box_batch_size": 256}
"""Mask R-CNN size trained from scratch (that of the bundled Mask R-CNNs), in every front end."""
DEFAULT_EPOCHS = 50
"""Epochs of a run given neither ``epochs`` nor ``minutes``."""
ANNOTATION_MARGIN = 16
"""Pixels around labelled objects whose background is learned (annotated region "objects")."""

TRAIN_SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("arch", str, "unet", "unet: per-pixel classes; maskrcnn: instances", choices=("unet", "maskrcnn")),
    Setting("base", str, None, "start from this model's weights (fine-tuning): a model name or file",
            label="start from"),
    Setting("epochs", int, None,
            f"epochs to train (default {DEFAULT_EPOCHS} unless minutes is given); with minutes, training stops at "
            "whichever comes first. The dock's 0 = until the time budget is spent", label="max epochs", low=1,
            widget_default=0),
    Setting("minutes", float, None,
            "time budget in minutes; with epochs, training stops at whichever comes first (the dock starts "
            "at 10 minutes: it shows progress over the budget)", label="time budget (min)", low=0.01,
            high=7 * 24 * 60, widget_default=10.0, step=1.0),
    Setting("val_fraction", float, 0.2,
            "part of the images held out to pick the best epoch, drawn with seed (0 = none: the last epoch "
            "is kept)", label="validation fraction", low=0.0, high=0.9, step=0.05),
    Setting("seed", int, 0, "random seed: split, initialisation, crops, augmentation", low=0),
    Setting("crop", int, 256, "side of the training crops in pixels; smaller crops use less memory",
            label="crop size (px)", low=16, high=8192, unit="pixels", step=32),
    Setting("batch_size", int, None, "crops per step (default: unet 8, maskrcnn 4)", low=1, high=1024),
    Setting("lr", float, None, "peak learning rate (default: unet 1e-3, maskrcnn 3e-4)", low=1e-9, high=1.0),
    Setting("device", str, "auto", "auto (CUDA, MPS, CPU), cpu, cuda, mps"),
    Setting("precision", str, "auto",
            "mixed precision: auto = bfloat16 on CPUs that have it and AMP on CUDA; fp32 = off; bf16 = on",
            choices=PRECISIONS),
    Setting("augment", str, "standard",
            "augmentation recipe: standard (flips, scale 0.75-1.33, intensity), strong (any rotation, H&E stain "
            "and colour jitter, inverted contrast, dim objects, scale 0.5-2), histology (any rotation, stain "
            "jitter), robust (scale 0.7-1.4 per axis, stain jitter on colour images, grey images inverted, "
            "defocus blur, dimming), robust-lowres (robust without inversion, plus crops shrunk 1.5-4x and "
            "enlarged back), none (plain crops)", choices=AUGMENT_RECIPES),
    Setting("channel", int, None, "train on this channel of multichannel images (0-based)", low=0),
    Setting("in_channels", int, None, "network input channels (default: from the images)", low=1, high=64),
    Setting("label_kind", str, "instances",
            "unet: labels are object ids (learns background/object/boundary), class maps 1..K with 0 = "
            "unlabelled (outputs 0..K-1), or 'painted' class maps whose values are the outputs (1..K)",
            label="labels are", choices=("instances", "classes", "painted")),
    Setting("depth", int, UNET_SCRATCH["depth"], "unet from scratch: downsampling steps", low=1, high=8),
    Setting("base_width", int, UNET_SCRATCH["base_width"], "unet from scratch: channels of the first level",
            low=1, high=1024, aliases=("--width",)),
    Setting("backbone", str, MASKRCNN_SCRATCH["backbone"], "maskrcnn from scratch: backbone", choices=BACKBONES),
    Setting("fpn_channels", int, MASKRCNN_SCRATCH["fpn_channels"], "maskrcnn from scratch: feature pyramid width",
            low=1, high=4096),
    Setting("mask_head_channels", int, MASKRCNN_SCRATCH["mask_head_channels"],
            "maskrcnn from scratch: mask head width", low=1, high=4096),
    Setting("box_head_size", int, None, "maskrcnn from scratch: box head width (default 1024)", low=1, high=65536),
    Setting("box_batch_size", int, MASKRCNN_SCRATCH["box_batch_size"],
            "maskrcnn: sampled proposals per image for the heads", low=1, high=65536),
    Setting("mask_roi_size", int, None,
            "maskrcnn: side of the mask head's RoIAlign grid; the soft masks are twice as large (14 -> 28 x 28, "
            "28 -> 56 x 56: finer outlines of large objects; the mask head's cost grows with its square). Default: "
            "the base model's, else 14. Also changes a base model's: its mask head is convolutional, so all its "
            "weights are kept", low=4, high=64),
    Setting("checkpoint_every", int, 1, "epochs between checkpoints", low=1),
    Setting("annotation_margin", int, ANNOTATION_MARGIN,
            "annotated region 'objects': background within this distance of a labelled object is learned",
            label="margin (px)", low=0, high=10_000, unit="pixels"),
)}


def check_settings(settings: dict[str, Setting], values: dict[str, Any], prefix: str = "") -> None:
    """Check every value of ``values`` that ``settings`` declares (TypeError / ValueError naming it).

    ``prefix`` "--" names the values as command line flags.
    """
    for name, value in values.items():
        setting = settings.get(name)
        if setting is not None:
            setting.check(value, setting.cli_flag if prefix == "--" else None)


def amp_of(precision: str) -> bool | None:
    """Training precision as ``TrainConfig.amp``: auto -> None (wherever supported), bf16 -> True, fp32 -> False."""
    return {"auto": None, "bf16": True, "fp32": False}[precision]

"""What the "Train model" widget hands to the core, and the job its worker thread runs.

napari-specific reading lives here: which slice a pair means, a Shapes layer's shapes as
polygons in the image's pixel coordinates, class names from a labels layer's ``features``,
and where the model file goes. :func:`run_training` is the worker's job: it builds the
pairs with :func:`~.core.training.regions.plane_pairs`, trains with the core and writes the
model file (atomically, by :func:`~.core.model_file.save_model`) unless the run was
stopped before its first step.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .layer_inputs import layer_axes
from ..core.model_file import MODEL_SUFFIX
from ..core.registry import BUNDLED, user_model_dir
from ..core.training import TrainConfig
from ..core.training.regions import Plane, Polygon

UNET_SCRATCH = {"depth": 4, "base_width": 16}
"""U-Net size trained from scratch (that of the bundled U-Nets: quick on a CPU)."""
MASKRCNN_SCRATCH = {"backbone": "resnet18", "fpn_channels": 128,
                    "builder_options": {"mask_head_channels": 128, "box_batch_size_per_image": 256}}
"""Mask R-CNN size trained from scratch (that of the bundled Mask R-CNNs)."""
ELLIPSE_VERTICES = 32


@dataclass(frozen=True)
class PairChoice:
    """An image layer and a labels layer chosen as a training pair.

    Attributes:
        image, labels: the layers.
        axes: the image's axes (letters of TZCYX).
        plane: the (t, z) slice of a stack to train on, or None for every annotated slice.
    """

    image: Any
    labels: Any
    axes: str
    plane: Plane | None

    @classmethod
    def of(cls, image, labels, slices: str, viewer) -> PairChoice:
        """The pair of ``image`` and ``labels``; ``slices`` ``"current"``: the slice shown in ``viewer``."""
        axes = layer_axes(image, viewer)
        stack = bool(set(axes) & set("TZ"))
        return cls(image, labels, axes, current_plane(image, axes, viewer) if stack and slices == "current" else None)

    @staticmethod
    def is_stack(image, viewer) -> bool:
        """Whether the image layer has a T or Z axis."""
        try:
            return bool(set(layer_axes(image, viewer)) & set("TZ"))
        except ValueError:
            return False

    @property
    def description(self) -> str:
        """``"cells + cells labels (z 3)"``, as the list of pairs shows it."""
        text = f"{self.image.name} + {self.labels.name}"
        if self.plane is not None:
            where = [f"{axis.lower()} {index}" for axis, index in zip("TZ", self.plane) if axis in self.axes]
            return f"{text} ({', '.join(where)})"
        return text + (" (all annotated slices)" if set(self.axes) & set("TZ") else "")


@dataclass(frozen=True)
class PairSnapshot:
    """One pair's data for the worker: arrays and names, no layers."""

    image: Any
    labels: Any
    axes: str
    name: str
    planes: list[Plane] | None
    polygons: list[Polygon]
    class_names: dict[int, str]


@dataclass(frozen=True)
class TrainRequest:
    """Everything a training run needs (built in the main thread, used in the worker).

    Attributes:
        arch: ``"unet"`` or ``"maskrcnn"``.
        label_kind: ``"instances"``, ``"painted"`` (U-Net class strokes, painted value = output
            value) or ``"classes"`` (strokes 1..K -> outputs 0..K-1).
        region: ``"objects"``, ``"polygons"`` or ``"image"`` (see :mod:`.core.training.regions`).
        margin: pixels around labelled objects counted as annotated (``"objects"``).
        snapshots: the pairs.
        config: the recipe (time budget, epochs, validation share, crop, device, base model).
        output: the model file to write.
        class_names: painted value -> class name typed in the widget (win over the layers' features).
        channel: ``(channel, in_channels)``: the one channel of multichannel images to learn
            from, or all of them as ``in_channels`` inputs; ``(None, None)`` for grey and RGB.
    """

    arch: str
    label_kind: str
    region: str
    margin: int
    snapshots: list[PairSnapshot]
    config: TrainConfig
    output: Path
    class_names: dict[int, str] = field(default_factory=dict)
    channel: tuple[int | None, int | None] = (None, None)

    @classmethod
    def build(cls, *, base: str | None, minutes: float, epochs: int | None, val_share: float, crop: int,
              device: str, **fields) -> TrainRequest:
        config = TrainConfig(epochs=epochs, minutes=minutes, crop=crop, val_fraction=val_share, device=device,
                             base=base)
        return cls(config=config, **fields)


def current_plane(layer, axes: str, viewer) -> Plane:
    """The (t, z) slice of ``layer`` that ``viewer`` shows."""
    point = layer.world_to_data(viewer.dims.point)
    letters = axes if len(axes) == len(point) else axes.replace("C", "")
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    index = {axis: int(np.clip(round(float(point[i])), 0, data.shape[i] - 1))
             for i, axis in enumerate(letters) if axis in "TZ"}
    return index.get("T", 0), index.get("Z", 0)


def shape_polygons(shapes, image, axes: str) -> list[Polygon]:
    """The rectangles, polygons and ellipses of a Shapes layer in ``image``'s pixel coordinates.

    A shape on a slice of a stack (a Shapes layer with as many dimensions as the image)
    applies to that slice; shapes of a layer with fewer dimensions apply to every slice.
    Lines and paths enclose nothing and are left out.
    """
    letters = axes if len(axes) == image.ndim else axes.replace("C", "")
    rows, cols = letters.index("Y"), letters.index("X")
    polygons = []
    for vertices, kind in zip(shapes.data, shapes.shape_type):
        if kind in ("line", "path"):
            continue
        if kind == "ellipse":
            vertices = ellipse_outline(vertices)
        pixels = np.array([image.world_to_data(shapes.data_to_world(vertex)) for vertex in vertices])
        plane = None
        if shapes.ndim >= image.ndim:
            plane = tuple(int(round(pixels[0, letters.index(a)])) if a in letters else 0 for a in "TZ")
        polygons.append((plane, pixels[:, [rows, cols]]))
    return polygons


def ellipse_outline(corners: np.ndarray) -> np.ndarray:
    """Vertices on the ellipse inscribed in a (possibly rotated) box given by its 4 corners, in order."""
    corners = np.asarray(corners, float)
    centre = corners.mean(axis=0)
    half_u, half_v = (corners[1] - corners[0]) / 2, (corners[3] - corners[0]) / 2
    angles = np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)[:, None]
    return centre + np.cos(angles) * half_u + np.sin(angles) * half_v


def feature_class_names(labels) -> dict[int, str]:
    """Label value -> ``class_name`` from a labels layer's ``features`` (rows by ``index``, else order)."""
    table = labels.features
    if "class_name" not in table.columns:
        return {}
    values = table["index"] if "index" in table.columns else range(len(table))
    return {int(value): str(name) for value, name in zip(values, table["class_name"]) if int(value) > 0}


def snapshot(pair: PairChoice, shapes, viewer) -> PairSnapshot:
    """The data of ``pair`` for the worker; ``shapes``: a Shapes layer marking the annotated areas, or None."""
    from ..core.validation import check_training_size

    image = pair.image.data[0] if pair.image.multiscale else pair.image.data
    check_training_size((image.shape[pair.axes.index("Y")], image.shape[pair.axes.index("X")]),
                        f"{pair.image.name}")
    return PairSnapshot(
        image=image,
        labels=pair.labels.data,
        axes=pair.axes,
        name=f"{pair.image.name} + {pair.labels.name}",
        planes=None if pair.plane is None else [pair.plane],
        polygons=shape_polygons(shapes, pair.image, pair.axes) if shapes is not None else [],
        class_names=feature_class_names(pair.labels),
    )


def model_output_path(name: str, save_to: str | os.PathLike | None) -> Path:
    """The model file to write: ``save_to`` when given, else ``<name>.safetensors`` in the model folder.

    Raises:
        ValueError: an empty or unusable name, a bundled model's name, or a name already taken.
    """
    if save_to is not None and str(save_to) not in ("", "."):
        path = Path(save_to).expanduser()
        return path if path.suffix == MODEL_SUFFIX else path.with_name(path.name + MODEL_SUFFIX)
    name = name.strip()
    if not re.fullmatch(r"[\w][\w .+-]*", name):
        raise ValueError(f"'{name}' cannot be a model name: use letters, digits, '-', '_' (e.g. 'my-cells').")
    if name in BUNDLED:
        raise ValueError(f"'{name}' is the name of a bundled model: choose another name.")
    path = user_model_dir() / f"{name}{MODEL_SUFFIX}"
    if path.exists():
        raise ValueError(f"A model named '{name}' exists already ('{path}'): choose another name, "
                         f"e.g. '{free_model_name(name)}'.")
    return path


def free_model_name(name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... whichever is not yet a file in the model folder."""
    stem = re.sub(r"-\d+$", "", name.strip()) or "my-model"
    candidates = [name.strip(), *(f"{stem}-{n}" for n in range(2, 10_000))]
    return next(c for c in candidates if c and not (user_model_dir() / f"{c}{MODEL_SUFFIX}").exists())


def score_name(request: TrainRequest) -> str:
    """The validation metric that picks the best epoch of ``request``'s run."""
    from ..core.training.tasks import InstanceTask, SemanticTask

    return InstanceTask.score_name if request.arch == "maskrcnn" else SemanticTask(request.label_kind).score_name


def validation_warnings(pairs: list, sources: dict[str, str], config: TrainConfig) -> list[str]:
    """What the user must know about the validation of a run on ``pairs`` (TrainingPair list).

    No validation at all (too few pairs for the share), and validation slices taken from a
    stack whose other slices train (neighbouring slices look alike: the score is optimistic).
    ``sources`` maps each pair's name to the layer pair it came from.
    """
    from ..core.training import split_pairs

    if config.val_fraction <= 0 and not config.val_names:
        return []
    train, val = split_pairs(pairs, val_fraction=config.val_fraction, val_names=config.val_names,
                             seed=config.seed)
    if not val:
        return [f"No validation: {len(pairs)} training image(s) with a validation share of "
                f"{config.val_fraction:g} leave none to hold out, so the last epoch is kept, unscored. "
                "Add more pairs (or all annotated slices of a stack) to validate."]
    shared = sorted({sources[pair.name] for pair in val} & {sources[pair.name] for pair in train})
    if shared:
        return [f"Validation slices come from the same stack as training slices ({', '.join(shared)}): "
                "neighbouring slices look alike, so the validation score is optimistic."]
    return []


def collapse_warning(arch: str, metrics: dict) -> str | None:
    """A warning when the kept model's validation says it learned nothing useful, else None.

    U-Net: at most one class scores an IoU above 0 (it predicts one class everywhere);
    Mask R-CNN: no validation object found (recall 0 at IoU 0.5).
    """
    if arch == "unet":
        ious = {key[4:]: value for key, value in metrics.items() if key.startswith("iou_") and value is not None}
        if len(ious) >= 2 and sum(value > 0 for value in ious.values()) <= 1:
            return ("Training collapsed to one class: on the validation images the model predicts "
                    f"({', '.join(f'{name} IoU {value:.2f}' for name, value in ious.items())}). Train "
                    "longer, label more of the rarer classes, or check that the labels match the image.")
    elif metrics.get("recall50") == 0:
        return ("The model finds no object in the validation images (recall 0). Train longer, "
                "or check that the labels match the image.")
    return None


def run_training(request: TrainRequest, on_progress, should_stop):
    """The worker's job: pairs, training, model file; returns the core's ``TrainResult``.

    ``on_progress`` gets every ``TrainEvent``; ``should_stop()`` ends the run at its next step,
    keeping the best weights so far. ``result.path`` is None when it ended the run before the
    first step (no file is written). Raises the core's ValueError (bad pairs or labels, an
    unreadable start model) with a message saying the fix.
    """
    from ..core.model_file import read_spec, save_model
    from ..core.registry import resolve_model
    from ..core.training import TrainEvent, train_maskrcnn, train_unet
    from ..core.training.regions import plane_pairs

    pairs, names, sources = {}, {}, {}
    for snap in request.snapshots:
        for pair in plane_pairs(snap.image, snap.labels, snap.axes, name=snap.name, label_kind=request.label_kind,
                                planes=snap.planes, region=request.region, margin=request.margin,
                                polygons=snap.polygons):
            pairs.setdefault(pair.name, pair)  # the same slice added twice trains once
            sources.setdefault(pair.name, snap.name)
        names = {**snap.class_names, **names}
    names.update(request.class_names)
    pairs = list(pairs.values())
    for message in validation_warnings(pairs, sources, request.config):
        on_progress(TrainEvent("warning", 0, 0, 0, request.config.epochs, 0.0, message=message))
    base_names = read_spec(resolve_model(request.config.base)).class_names if request.config.base else None
    channel, in_channels = request.channel
    common = dict(config=request.config, on_progress=on_progress, should_stop=should_stop,
                  channel=channel, in_channels=in_channels,
                  provenance={"data": {"source": "napari layers", "pairs": [pair.name for pair in pairs]}})
    if request.arch == "unet":
        if request.label_kind in ("classes", "painted"):
            count = max(int(pair.labels.max()) for pair in pairs)
            class_names = [names.get(value, f"class {value}") for value in range(1, count + 1)]
        else:
            class_names = base_names if base_names and len(base_names) == 3 else None
        result = train_unet(pairs, label_kind=request.label_kind, class_names=class_names, **UNET_SCRATCH,
                            **common)
    else:
        counted = Counter(names.values()).most_common(1)
        class_name = base_names[0] if base_names else counted[0][0] if counted else "object"
        result = train_maskrcnn(pairs, class_name=class_name, **MASKRCNN_SCRATCH, **common)
    warning = collapse_warning(request.arch, result.best_metrics)
    if warning:
        on_progress(TrainEvent("warning", result.history[-1].epoch if result.history else 0, result.steps, 0,
                               request.config.epochs, result.elapsed_s, message=warning))
    if result.steps == 0:
        return result
    return replace(result, path=save_model(request.output, result.network, result.spec))

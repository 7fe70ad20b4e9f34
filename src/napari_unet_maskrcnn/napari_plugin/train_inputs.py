"""What the "Train model" widget hands to the core, and the job its worker thread runs.

napari-specific reading lives here: which slice a pair means, a Shapes layer's shapes as
polygons in the image's pixel coordinates, class names from a labels layer's ``features``,
and where the model file goes. :func:`run_training` is the worker's job: it builds the
pairs with ``api.training.plane_pairs`` and trains with ``api.train`` (as the command line does:
same settings, same from-scratch size, same warnings), which writes the model file atomically
unless the run was stopped before its first step.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .layer_inputs import layer_axes
from ..core.model_file import MODEL_SUFFIX
from ..core.registry import BUNDLED, user_model_dir

Plane = tuple  # (t, z) of a slice, as core.training.regions.Plane
Polygon = tuple  # (plane or None, (N, 2) vertices), as core.training.regions.Polygon
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
        settings: ``api.train``'s keywords (time budget, epochs, validation fraction, crop, device, base model).
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
    settings: dict[str, Any]
    output: Path
    class_names: dict[int, str] = field(default_factory=dict)
    channel: tuple[int | None, int | None] = (None, None)

    @classmethod
    def build(cls, *, base: str | None, minutes: float, epochs: int | None, val_fraction: float, crop: int,
              device: str, **fields) -> TrainRequest:
        settings = dict(base=base, minutes=minutes, epochs=epochs, val_fraction=val_fraction, crop=crop, device=device)
        return cls(settings=settings, **fields)


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
    from ..api.training import score_name as name

    return name(request.arch, request.label_kind)


def run_training(request: TrainRequest, on_progress, should_stop):
    """The worker's job: pairs, then ``api.train`` (model file included); returns the core's ``TrainResult``.

    ``on_progress`` gets every ``TrainEvent`` (warnings included); ``should_stop()`` ends the run at its
    next step, keeping the best weights so far. ``result.path`` is None when it ended the run before the
    first step (no file is written). Raises ValueError (bad pairs or labels, an unreadable start model)
    with a message saying the fix.
    """
    from .. import api
    from ..api.training import plane_pairs

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
    base = request.settings.get("base")
    base_names = api.get_model_spec(base).class_names if base else None
    if request.arch == "unet":
        if request.label_kind in ("classes", "painted"):
            count = max(int(pair.labels.max()) for pair in pairs)
            class_names = [names.get(value, f"class {value}") for value in range(1, count + 1)]
        else:
            class_names = base_names if base_names and len(base_names) == 3 else None
    else:
        counted = Counter(names.values()).most_common(1)
        class_names = [base_names[0] if base_names else counted[0][0] if counted else "object"]
    channel, in_channels = request.channel
    return api.train(
        pairs, request.output, arch=request.arch, label_kind=request.label_kind, class_names=class_names,
        channel=channel, in_channels=in_channels, sources=sources, on_progress=on_progress, should_stop=should_stop,
        provenance={"data": {"source": "napari layers", "pairs": [pair.name for pair in pairs]}},
        overwrite=True,  # model_output_path refused a taken name; a chosen file was confirmed in the save dialog
        **request.settings,
    )

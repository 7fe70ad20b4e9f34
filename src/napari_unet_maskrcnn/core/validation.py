"""Checks of every segmentation parameter, by name and with its valid range, before any work.

:func:`check_segment_call` is the first thing ``api.iter_segment_semantic`` and
``api.iter_segment_instances`` do (so also the CLI and the GUI): a wrong value is a
``ValueError`` (or ``TypeError`` for a wrong kind of value) that names the parameter, the
value and the range, before the model is loaded. It also applies :mod:`.output_paths` to
``out=`` and refuses an in-memory result larger than the free memory.

:func:`check_number` is the building block; the settings' names and ranges are declared in
:mod:`.settings` (also the command line's and the widgets').
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

from .device import PRECISION_CHOICES as PRECISIONS  # declared once, with the device choice

MIN_TILE = 64
"""Smallest tile edge (pixels) the tiling accepts."""
MAX_TILE = 8192
"""Largest tile edge (pixels): a U-Net tile holds ``classes x tile**2`` float32 several times over."""
MIN_BLOCK = 16
"""Smallest block side (pixels) of block runs; blocks are rounded to whole tiles anyway."""
MAX_BLOCK = 65536
MAX_MIN_SIZE = 2**31 - 1
MEMORY_FRACTION = 0.8
"""An in-memory result may take at most this part of the memory that is available now."""


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 integer: bool = False, none_ok: bool = True, unit: str = ""):
    """``value`` checked to be a finite number (a whole one if ``integer``) in ``[low, high]``.

    Returns it as ``int`` / ``float`` (None stays None when ``none_ok``).

    Raises:
        TypeError: not a number (a string, a bool, an array...).
        ValueError: not finite, not whole, or out of range; the message names ``name``.
    """
    if value is None and none_ok:
        return None
    kind = "a whole number" if integer else "a number"
    span = _span(low, high, unit)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {kind}{span}; got {value!r} ({type(value).__name__}).")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be {kind}{span}; got {value}.")
    if integer and float(value) != int(value):
        raise ValueError(f"{name} must be {kind}{span}; got {value}.")
    number = int(value) if integer else float(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{name} must be {kind}{span}; got {value}.")
    return number


def _span(low, high, unit: str) -> str:
    unit = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f" between {_bound(low)} and {_bound(high)}{unit}"
    if low is not None:
        return f" >= {_bound(low)}{unit}"
    if high is not None:
        return f" <= {_bound(high)}{unit}"
    return ""


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_image(image) -> None:
    """Refuse what cannot be an image, naming the parameter ``image`` and the conversion to make."""
    module = type(image).__module__.split(".")[0]
    if module == "torch":
        raise TypeError("image is a torch.Tensor; pass a numpy array instead: image.detach().cpu().numpy().")
    if image is None or isinstance(image, (bool, numbers.Number, Mapping)):
        raise TypeError("image must be an array (numpy, dask, zarr) or an image file path; "
                        f"got {type(image).__name__}.")


def check_ambiguous_axes(shape: tuple[int, ...]) -> None:
    """Refuse a 3D shape whose guessed axes would make absurd planes, e.g. (64, 64, 2).

    With no axes given, a 3D array is ``ZYX`` (or ``YXC`` for a last dimension of 3 or 4):
    a last dimension under 8 would then be planes a few pixels wide. Say which it is instead.
    """
    if len(shape) == 3 and shape[-1] < 8 and shape[-1] not in (3, 4) and min(shape[:2]) >= 8:
        raise ValueError(
            f"The image has shape {tuple(shape)}: as a z-stack (axes 'ZYX') its planes would be only "
            f"{shape[1]} x {shape[2]} pixels. Give axes='YXC' if the last dimension holds {shape[-1]} channels "
            "(then channel= picks one), or axes='ZYX' if it really is a stack."
        )


def check_segment_call(task: str, arguments: Mapping[str, Any]):
    """Check the arguments of ``iter_segment_semantic`` / ``iter_segment_instances``; return ``out``.

    Args:
        task: ``"semantic"`` or ``"instances"``.
        arguments: the API function's arguments by name (its ``locals()`` on entry).

    Returns:
        ``out`` as given, or a path turned into an :class:`.output_paths.ZarrOutput` carrying
        ``overwrite`` (checked: an existing folder is replaced only when it is this project's).

    Raises:
        TypeError, ValueError: a parameter of the wrong kind or out of range (named).
        OutputClash: ``out`` would replace something (see :mod:`.output_paths`).
    """
    a = dict(arguments)
    check_image(a["image"])
    if not isinstance(a["model"], (str, os.PathLike)):
        raise TypeError(f"model must be a model name or a model file path; got {type(a['model']).__name__}.")
    if a.get("axes") is not None and not isinstance(a["axes"], str):
        raise TypeError(f"axes must be letters such as 'ZYX'; got {a['axes']!r}.")
    from .settings import SEGMENT_SETTINGS  # each setting's type and range, declared once

    for name in ("tile", "z_link_iou", "block", "precision"):
        if a.get(name) is None:
            raise TypeError(f"{name} must be a number; got None.")
    for name, setting in SEGMENT_SETTINGS.items():
        if name in a and name != "diameter":
            setting.check(a[name])
    if not isinstance(a.get("device"), str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or 'mps'; got {a.get('device')!r}.")
    check_number("pixel_size_um", a.get("pixel_size_um"), low=1e-6, high=1e6, unit="µm")
    spacing = a.get("spacing")
    if spacing is not None:
        for value in spacing:
            check_number("spacing", value, low=1e-12, none_ok=False)
    check_diameter_range(a.get("diameter"), a["model"])
    return _checked_out(task, a)


def check_diameter_range(diameter, model, name: str = "diameter") -> None:
    """``diameter``: None (automatic), 0 (off) or a size the planes can be resized to match (named range).

    Reads only the model file's header (its training diameter), not its weights.
    """
    from .model_file import read_spec
    from .object_size import SCALE_LIMITS
    from .registry import resolve_model

    value = check_number(name, diameter, low=0, unit="pixels")
    if not value:
        return
    model_diameter = read_spec(resolve_model(model)).object_diameter_px
    if not model_diameter:
        return  # object_size.fixed_scale says why a diameter cannot be used with this model
    low, high = model_diameter / SCALE_LIMITS[1], model_diameter / SCALE_LIMITS[0]
    if not low <= value <= high:
        raise ValueError(
            f"{name} must be 0 (off) or between {low:.3g} and {high:.3g} pixels for this model (trained on "
            f"objects of {model_diameter:.3g} px; planes are resized by at most {SCALE_LIMITS[1]:g}x); got {value:g}. "
            "Measure an object in the image, or leave the diameter automatic."
        )


def _checked_out(task: str, a: dict):
    from .output_paths import PlannedOutput, ZarrOutput, check_outputs

    out = a.get("out")
    overwrite = bool(a.get("overwrite", False))
    if isinstance(out, ZarrOutput):
        out, overwrite = out.path, out.overwrite or overwrite
    if isinstance(out, (str, os.PathLike)):
        inputs = [a["image"]] if isinstance(a["image"], (str, os.PathLike)) else []
        check_outputs([PlannedOutput(_path(out), "out=", "zarr")], inputs, overwrite=overwrite)
        return ZarrOutput(_path(out), overwrite)
    if out is None and a.get("client") is None:
        _check_result_fits(task, a)
    return out


def _path(value):
    from pathlib import Path

    return Path(value)


def _check_result_fits(task: str, a: dict) -> None:
    """Refuse an in-memory run whose result arrays would not fit in the memory available now."""
    from .io import available_memory

    shape = getattr(a["image"], "shape", None)
    if shape is None or len(shape) < 2:
        return
    pixels = math.prod(int(n) for n in shape)
    if a.get("axes") and "C" in str(a["axes"]).upper():
        pixels //= max(1, int(shape[str(a["axes"]).upper().index("C")]))
    per_pixel = 4 if task == "instances" else 1  # uint32 labels, or uint8 classes
    if a.get("return_probabilities") or a.get("split_instances"):
        per_pixel += 3 * 4 + 4  # float32 probabilities of (typically) three classes, instance ids
    needed = pixels * per_pixel
    available = available_memory()
    if available and needed > MEMORY_FRACTION * available:
        raise ValueError(
            f"The result of an image of shape {tuple(shape)} needs about {needed / 2**30:.1f} GiB of memory, "
            f"but only {available / 2**30:.1f} GiB are free. Write it block by block to disk instead: "
            "out='result.zarr' (command line: --output-format zarr)."
        )


CONTENT_CHECK_ELEMENTS = 2**26
"""Images up to this many elements are scanned for all-NaN / all-zero content (bigger: not read twice)."""


def content_warnings(data, axes: str) -> list[str]:
    """What a user should know about an image before its (probably empty) result.

    Args:
        data: the pixels (numpy or dask), dimensions ordered as ``axes``.
        axes: letters of TZCYX.

    Returns one message each for: planes too small to hold an object (under 8 x 8 pixels),
    no finite pixel (all NaN / infinite), every pixel the same value (e.g. all zero). The last
    two are only looked for in images of at most :data:`CONTENT_CHECK_ELEMENTS` elements.
    Shared by the command line and the segmentation docks.
    """
    import numpy as np

    warnings = []
    height, width = data.shape[axes.index("Y")], data.shape[axes.index("X")]
    if height < 8 or width < 8:
        warnings.append(f"the image is only {height} x {width} pixels: no object can be found in it.")
    if data.size == 0 or data.size > CONTENT_CHECK_ELEMENTS:
        return warnings
    values = np.asarray(data)
    finite = np.isfinite(values) if values.dtype.kind in "fc" else None
    if finite is not None and not finite.any():
        warnings.append("every pixel is NaN or infinite: the result is empty.")
        return warnings
    kept = values[finite] if finite is not None else values
    if kept.size and kept.min() == kept.max():
        warnings.append(f"every pixel has the same value ({kept.flat[0]}): there is nothing to segment.")
    return warnings


def check_label_values(data, name: str):
    """A label image as integers: ``data`` unchanged when integer, floats with whole values cast to int64.

    Raises:
        ValueError: fractional, negative or non-finite values (they are not object ids), naming ``name``.
    """
    import numpy as np

    values = np.asarray(data)
    if values.dtype.kind == "b":
        return values.astype(np.uint8)
    if values.dtype.kind in "ui":
        if values.dtype.kind == "i" and values.size and values.min() < 0:
            raise ValueError(f"{name} has negative values (minimum {values.min()}); label ids must be >= 0.")
        return values
    if values.dtype.kind != "f":
        raise ValueError(f"{name} has {values.dtype} values; a label image holds whole numbers (0 = background).")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} has NaN or infinite values; a label image holds whole numbers (0 = background).")
    if values.size and (values != np.round(values)).any():
        example = values[values != np.round(values)].flat[0]
        raise ValueError(f"{name} has fractional values (e.g. {example:g}): it is not a label image (object ids "
                         "are whole numbers). Give the label image, or round it first.")
    if values.size and values.min() < 0:
        raise ValueError(f"{name} has negative values (minimum {values.min():g}); label ids must be >= 0.")
    return values.astype(np.int64)


MIN_TRAIN_SIDE = 16
"""Smallest image side (pixels) a training pair may have: below it no crop holds an object and its context."""


def check_training_size(shape_yx: tuple[int, int], name: str) -> None:
    """Refuse a training image smaller than ``MIN_TRAIN_SIDE`` x ``MIN_TRAIN_SIDE`` (ValueError naming it)."""
    height, width = (int(n) for n in shape_yx)
    if min(height, width) < MIN_TRAIN_SIDE:
        raise ValueError(f"'{name}' is only {height} x {width} pixels: training needs images of at least "
                         f"{MIN_TRAIN_SIDE} x {MIN_TRAIN_SIDE} pixels. Choose a larger image and its labels.")

"""Object size, like cellpose's ``diameter``: estimate it, rescale a plane to the model's, map results back.

Every model file may store ``object_diameter_px``, the median equivalent diameter
(``sqrt(4 area / pi)``, pixels) of the objects it was trained on. Segmentation takes a
``diameter`` (the objects' diameter in the image's pixels):

- ``None`` (automatic): when the image's and the model's pixel sizes are both known, the
  plane is resized by their ratio. Otherwise the objects' diameter is estimated from the
  image alone (:mod:`.size_estimator`: a scale-space descriptor and a small regressor
  trained under random rescaling, independent of the segmentation model), and only when
  ``estimate / model diameter`` falls outside :data:`TRAINED_RANGE` is the plane resized
  by ``model diameter / estimate``. Inside the range it runs at native scale: rescaling
  every image to one size lowered AP on moderately large DSB2018 nuclei (issue 7). Guards
  (issue 18): an estimate the regressor is unsure of (:data:`~.size_estimator.MAX_SPREAD`, or a
  large plane's central and wide views :data:`~.size_estimator.MAX_DISAGREEMENT` apart)
  is used only when it is far outside the trained size (:data:`UNSURE_FOLLOWED`); nearer, a
  native pass runs and its objects' median diameter decides, as the only estimate did before
  issue 18; and a resized pass is kept only when the objects it found measure what the
  model was trained on (median within :data:`ACCEPT_RANGE` of the model's diameter on the
  resized plane); otherwise the plane is segmented at native scale and the report says so.
- a number > 0: the plane is resized by ``model diameter / diameter`` (one pass).
- ``0``: off, native scale.

A resized plane is read lazily (:class:`.resampling.ScaledSource`, tile by tile, memory bounded by the
tile) and the model's output is mapped back onto the original pixel grid exactly: labels by
nearest neighbour (:func:`.resampling.nearest_to_grid`), probabilities by anti-aliased linear
interpolation (:func:`.resampling.linear_to_grid`); both use pixel-centre alignment, so nothing shifts.
U-Net classes are the argmax of the mapped probabilities (:func:`semantic_to_grid`), except
for models with a boundary class, whose object / boundary classes are rebuilt on the grid
with the training rule (:func:`boundary_classes_to_grid`) so the boundary keeps its width.
Resampling is done here rather than with ``skimage.transform.resize`` because a tile of the
resized plane must equal the same part of the whole resized plane; the conventions are
scikit-image's (pixel centres, linear interpolation, Gaussian anti-aliasing of
``sigma = (factor - 1) / 2`` when shrinking).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .progress import ProgressEvent, ProgressGenerator
from .resampling import CentralWindow, ScaledSource, linear_to_grid, nearest_to_grid

TRAINED_RANGE = (0.67, 1.5)
"""``estimate / model diameter`` inside this range: the plane runs at native scale (automatic mode).
The default, and Mask R-CNN's; see :data:`TRAINED_RANGES`."""
TRAINED_RANGES = {"maskrcnn": TRAINED_RANGE, "unet": (0.5, 2.0)}
"""The native-scale range per architecture, chosen on the held-out lists at x0.5, x1 and x2
(docs/OBJECT_SIZE.md): U-Nets lose less than Mask R-CNNs when a plane's objects are up to 2x
off their size, and more by resizing planes that are not, so their range is wider."""
SCALE_LIMITS = (0.1, 10.0)
"""Resize factors are clipped to this range (a wrong estimate must not make absurd planes)."""
PIXEL_SIZE_TOLERANCE = 0.02
"""Pixel-size ratios within this relative distance of 1 are treated as 1 (no resampling)."""
UNSURE_FOLLOWED = (0.4, 2.5)
"""An unsure estimate (not ``SizeEstimate.confident``) is followed only when ``estimate / model
diameter`` is outside this range: objects that far from the trained size are lost at native scale
anyway, and the resized pass is still checked (:func:`resized_pass_mismatch`). Nearer, native scale
is the safer choice (issue 18: enlarged x4 DSB2018 nuclei of 150-210 px came out unsure at 100-150 px)."""
ACCEPT_RANGE = (0.5, 2.0)
"""A resized pass is kept when its objects' median diameter / the model's diameter lies in this range."""
TRIAL_WINDOW = 1024
"""Side (pixels of the resized plane) of the central window an automatic resized pass is tried on
first when the resized plane holds more than :data:`TRIAL_AREA` such windows: a wrong estimate is
then rejected at the cost of one window instead of the whole enlarged plane (issue 21: a x4.2 pass
of a 1024² image is 18 MPix of network work before its objects reject it)."""
TRIAL_AREA = 4
"""A resized plane of more than this many :data:`TRIAL_WINDOW` squares is tried on one first (the
trial then adds at most a quarter to a pass that is kept)."""
FRAGMENT_SEARCH_SCALES = (0.5, 0.25, 0.125)
"""When a native pass's objects are fragments (they measure smaller than the model's size while the
unsure estimate says larger), the plane is tried shrunk by these factors in turn and the first pass
whose objects measure the model's size (median inside the native-scale range) is kept (issue 18:
DSB2018 nuclei of 66-85 px, x4, unsure estimates of 25-37 px: 89 and 220 fragments at native scale).
Each try is at most a quarter of the native pass's work."""
FRAGMENT_SEARCH_MIN_SIDE = 64
"""Pixels: a shrunk plane with a side below this is not tried."""
MODES = ("auto", "given", "pixel size", "off")


@dataclass(frozen=True)
class ObjectSize:
    """How one plane (or a whole run) was scaled.

    Attributes:
        mode: ``"auto"`` (estimated), ``"given"`` (the caller's diameter), ``"pixel size"``
            (image / model pixel-size ratio) or ``"off"``.
        diameter: the objects' diameter in the image's pixels: the estimate (auto) or the
            given value; None when not estimated or no object was found.
        scale: factor the plane was resized by before the model (1 = native).
        model_diameter: the model's training diameter (pixels), None when unknown.
        note: why an automatic estimate was not followed (unsure, or the resized pass's
            objects did not match it), None otherwise.
    """

    mode: str
    diameter: float | None
    scale: float
    model_diameter: float | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "diameter": self.diameter, "scale": self.scale,
                "model_diameter": self.model_diameter, "note": self.note}


@dataclass(frozen=True)
class SizeRequest:
    """``mode`` and ``scale`` from :func:`.object_size.fixed_scale` (scale None = estimate per
    plane), the caller's ``diameter`` (pixels; None = automatic), the model's training
    diameter (pixels; None when the model file does not record it) and the estimate-to-model
    ratios at which a plane stays at native scale (:data:`TRAINED_RANGES`)."""

    mode: str
    scale: float | None
    diameter: float | None
    model_diameter: float | None
    trained_range: tuple[float, float] = TRAINED_RANGE

    @classmethod
    def for_model(cls, spec, diameter: float | None, pixel_size_um: float | None) -> SizeRequest:
        """The request of a run with model ``spec`` (:class:`~.model_file.ModelSpec`): see :func:`fixed_scale`."""
        mode, scale = fixed_scale(diameter, spec.object_diameter_px, pixel_size_um, spec.pixel_size_um)
        return cls(mode, scale, diameter, spec.object_diameter_px, TRAINED_RANGES.get(spec.arch, TRAINED_RANGE))


def describe_object_size(size: dict[str, Any]) -> str:
    """One line for people on a result's ``object_size`` dict: the diameter, how it was found, the scale used."""
    how = {"auto": "estimated", "given": "given", "pixel size": "from the pixel sizes", "off": "off"}[size["mode"]]
    diameter = size["diameter"]
    text = f"Object diameter {diameter:.1f} px ({how})" if diameter is not None else f"Object diameter {how}"
    if size["mode"] == "auto" and diameter is None:
        text = "Object diameter not estimated (image too small or constant)"
    model = size["model_diameter"]
    text += f", model trained on {model:.1f} px" if model else ", model's training diameter unknown"
    text += f", image resized x{size['scale']:.3g}" if size["scale"] != 1.0 else ", native scale"
    return text + (f" ({size['note']})" if size.get("note") else "")


def equivalent_diameters(labels: np.ndarray) -> np.ndarray:
    """Equivalent diameters ``sqrt(4 area / pi)`` (pixels), float64 (n,), of the ids > 0 present in ``labels``."""
    areas = np.bincount(np.asarray(labels).ravel().astype(np.int64, copy=False))[1:]
    return np.sqrt(4.0 * areas[areas > 0] / math.pi)


def median_of(diameters: np.ndarray) -> float | None:
    """Median of equivalent diameters (pixels); None without any."""
    diameters = np.asarray(diameters, np.float64)
    return float(np.median(diameters)) if diameters.size else None


def mask_diameters(masks: Iterable[np.ndarray]) -> np.ndarray:
    """Equivalent diameters (pixels), float64 (n,), of bool object masks."""
    return np.sqrt(4.0 * np.asarray([np.count_nonzero(m) for m in masks], np.float64) / math.pi)


def median_diameter(label_images: np.ndarray | Iterable[np.ndarray]) -> float | None:
    """Median equivalent diameter (pixels) of all objects of one label image or several; None without objects."""
    if isinstance(label_images, np.ndarray):
        label_images = [label_images]
    diameters = [equivalent_diameters(labels) for labels in label_images]
    return median_of(np.concatenate(diameters) if diameters else np.zeros(0))


def check_diameter(diameter: float | None) -> float | None:
    """``diameter`` as a float (None = automatic, 0 = off); ValueError for negative or non-finite values."""
    if diameter is None:
        return None
    value = float(diameter)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"diameter must be a number of pixels >= 0 (0 = off, None = automatic), got {diameter}.")
    return value


def fixed_scale(
    diameter: float | None,
    model_diameter: float | None,
    image_pixel_um: float | None = None,
    model_pixel_um: float | None = None,
) -> tuple[str, float | None]:
    """``(mode, scale)`` decided without looking at the image; scale None = estimate it (auto).

    Raises:
        ValueError: a diameter is given but the model does not know its training diameter.
    """
    diameter = check_diameter(diameter)
    if diameter == 0:
        return "off", 1.0
    if diameter is not None:
        if not model_diameter:
            raise ValueError(
                "This model file does not record the object diameter it was trained on, so a "
                "diameter cannot be matched to it: leave diameter automatic (None / empty), or "
                "retrain / fine-tune the model with this version."
            )
        return "given", _clipped(model_diameter / diameter)
    if image_pixel_um and model_pixel_um:
        ratio = float(image_pixel_um) / float(model_pixel_um)
        return "pixel size", 1.0 if abs(ratio - 1.0) <= PIXEL_SIZE_TOLERANCE else _clipped(ratio)
    return "auto", None


def choose_scale(
    estimate: float | None, model_diameter: float | None, trained_range: tuple[float, float] = TRAINED_RANGE
) -> float:
    """Resize factor for an estimated diameter: 1 inside the trained range, else ``model / estimate``."""
    if not estimate or not model_diameter:
        return 1.0
    ratio = estimate / model_diameter
    if trained_range[0] <= ratio <= trained_range[1]:
        return 1.0
    return _clipped(model_diameter / estimate)


def _clipped(scale: float) -> float:
    return float(min(max(scale, SCALE_LIMITS[0]), SCALE_LIMITS[1]))


def segment_at_object_size(
    source,
    predict: Callable[[Any, bool], ProgressGenerator[Any]],
    measure: Callable[[Any], np.ndarray | None],
    to_grid: Callable[[Any, tuple[int, int]], Any],
    *,
    mode: str,
    scale: float | None,
    model_diameter: float | None,
    diameter: float | None = None,
    trained_range: tuple[float, float] = TRAINED_RANGE,
    estimate: Callable[[Any], Any] | None = None,
) -> ProgressGenerator[tuple[Any, ObjectSize]]:
    """Segment one plane at the object size the model knows, in the plane's own pixel grid.

    A generator: yields ``ProgressEvent(done, total, stage)`` counted within the plane; a
    resized pass reports ``"rescaled tile"``, and when its objects contradict the estimate
    the native pass that follows grows ``total``.

    Args:
        source: ``PlaneSource`` of the plane, shape (H, W).
        predict: ``predict(source, resized) -> generator`` of the model's result on a source
            (``resized`` tells whether it is a :class:`ScaledSource`, or a :class:`CentralWindow`
            of one: an automatic resized plane of more than :data:`TRIAL_AREA` trial windows is
            first tried on its central :data:`TRIAL_WINDOW` square and rejected there when its
            objects contradict the estimate).
        measure: equivalent diameters (n,) of the objects of a result, in its pixels (None: it has
            no objects to measure; a resized pass is then kept unchecked).
        to_grid: ``to_grid(result, (H, W))`` maps a resized result back onto the plane's grid.
        mode, scale: from :func:`fixed_scale`; ``scale`` None = estimate (automatic): the
            estimator decides; when it is unsure near the trained size, a native pass runs first
            and, when its objects' median diameter is outside ``trained_range``, a resized pass;
            when they are fragments (smaller than the model's, the estimate larger), shrunk
            tries (:data:`FRAGMENT_SEARCH_SCALES`). A shrunk automatic pass whose objects do not
            measure the model's size gets one second look at the size they measured (when that
            also shrinks), checked the same way; otherwise a native pass follows.
        diameter: the caller's diameter (mode ``"given"``), reported as is.
        model_diameter: the model's training diameter in pixels, or None.
        estimate: ``estimate(source) -> SizeEstimate | None``; default
            :func:`.size_estimator.estimate_diameter`.

    Returns:
        ``(result on the (H, W) grid, ObjectSize)``.
    """
    diameter = diameter if mode == "given" else None
    note, native, done = None, None, 0
    if scale is None:
        scale, diameter, note = automatic_scale(source, model_diameter, trained_range, estimate)
    if scale is None:  # unsure and near the trained size: the objects of a native pass decide
        native, done = yield from _counted(predict(source, False), 0, 0)
        measured = _median_measured(measure, native)
        scale = choose_scale(measured, model_diameter, trained_range)
        if scale != 1.0 and diameter is not None and (scale > 1.0) != (diameter < model_diameter):
            # the objects point the other way from the estimate: fragments of objects larger than the
            # model's (or merged small ones); enlarging would make them worse (issue 18: x4 DSB2018)
            note += f"; the objects found at native scale ({measured:.1f} px) contradict it"
            if scale > 1.0:  # fragments: look for the scale at which the model sees whole objects
                found, done = yield from _fragment_search(source, predict, measure, model_diameter,
                                                          trained_range, done)
                if found is not None:
                    result, found_scale, found_diameter = found
                    return to_grid(result, tuple(source.shape)), ObjectSize(
                        mode, found_diameter, found_scale, model_diameter,
                        note + f"; at x{found_scale:.3g} they measured {found_diameter:.1f} px, kept")
            return native, ObjectSize(mode, diameter, 1.0, model_diameter, note + ", native scale kept")
        if scale == 1.0:
            return native, ObjectSize(mode, diameter, 1.0, model_diameter, note + ", native scale kept")
        diameter, note = measured, note + f"; the objects found at native scale measured {measured:.1f} px"
    if scale == 1.0:
        result, _ = yield from _counted(predict(source, False), 0, 0)
        return result, ObjectSize(mode, diameter, 1.0, model_diameter, note)
    result, rejected, done = yield from _resized_pass(source, predict, measure, scale, mode, model_diameter, done)
    if rejected:
        first, measured = rejected
        second = choose_scale(measured, model_diameter, trained_range)
        if scale < 1.0 and second < 1.0 and abs(math.log2(second / scale)) > 0.25:  # shrinking: cheap
            # a second look at the size the rejected pass's objects measured (issue 18: an estimate 2.4x too
            # large shrank DSB2018 nuclei to half the model's size; native scale then found 2.4x the count)
            result, again, done = yield from _resized_pass(source, predict, measure, second, mode,
                                                           model_diameter, done)
            if not again:
                return to_grid(result, tuple(source.shape)), ObjectSize(
                    mode, measured, second, model_diameter,
                    first + f"; at x{second:.3g} they measured the model's size, kept")
            first += "; " + again[0]
        if native is None:
            native, _ = yield from _counted(predict(source, False), done, done)
        return native, ObjectSize(mode, diameter, 1.0, model_diameter,
                                  first + "; native scale used instead, give the diameter if the result is wrong")
    return to_grid(result, tuple(source.shape)), ObjectSize(mode, diameter, scale, model_diameter, note)


def _resized_pass(source, predict, measure, scale: float, mode: str, model_diameter: float | None, done: int):
    """One pass over ``source`` resized by ``scale`` (an automatic one first on a central trial window when
    the resized plane is large): ``(result, None or (why rejected, objects' median diameter in the plane's
    pixels or None), done)``; only automatic passes are checked (:func:`resized_pass_mismatch`)."""
    scaled = ScaledSource(source, scale)
    passes = [scaled]
    if mode == "auto" and scaled.shape[0] * scaled.shape[1] > TRIAL_AREA * TRIAL_WINDOW ** 2:
        passes.insert(0, CentralWindow(scaled, TRIAL_WINDOW))
    for plane in passes:
        result, total = yield from _counted(predict(plane, True), done, done, "rescaled tile")
        done += total
        diameters = measure(result) if mode == "auto" else None
        rejected = resized_pass_mismatch(diameters, scale, model_diameter)
        if rejected:
            found = median_of(diameters)
            where = "" if plane is scaled else " (tried on a central window)"
            return result, (rejected + where, None if found is None else found / scale), done
    return result, None, done


def automatic_scale(source, model_diameter: float | None, trained_range: tuple[float, float] = TRAINED_RANGE,
                    estimate: Callable[[Any], Any] | None = None) -> tuple[float, float | None, str | None]:
    """``(scale, estimated diameter or None, note or None)`` of an automatic plane, before any network pass.

    The scale is 1 when the model does not record its training diameter, and None (with a
    note) when the estimator is unsure of an estimate inside :data:`UNSURE_FOLLOWED`: then
    the objects of a native pass decide (:func:`segment_at_object_size`), as before issue 18.
    """
    from .size_estimator import estimate_diameter

    found = (estimate or estimate_diameter)(source)
    if found is None:
        return 1.0, None, None
    if not model_diameter:
        return 1.0, found.diameter, None
    ratio = found.diameter / model_diameter
    if not found.confident and UNSURE_FOLLOWED[0] <= ratio <= UNSURE_FOLLOWED[1]:
        return None, found.diameter, f"estimate {found.diameter:.1f} px unsure ({found.doubt()})"
    return choose_scale(found.diameter, model_diameter, trained_range), found.diameter, None


def native_run_object_size(source, size: SizeRequest) -> ProgressGenerator[ObjectSize]:
    """The :class:`ObjectSize` of a run that segments every plane at native scale (``out=`` / ``client=``).

    Automatic (``scale`` None): the diameter is estimated from ``source`` alone (e.g. a central
    window of the middle plane; :mod:`.size_estimator`, NumPy only: a ``client=`` run's caller
    never loads torch) and must lie in the model's trained range. A generator (one
    ``"object size"`` event when estimating).

    Raises:
        ValueError: the given or estimated diameter needs the planes resized (with the fix).
    """
    mode, scale, diameter, model_diameter, note = size.mode, size.scale, size.diameter, size.model_diameter, None
    if scale is None:
        scale, diameter, note = automatic_scale(source, model_diameter, size.trained_range)
        yield ProgressEvent(1, 1, "object size")
        if scale is None:  # unsure near the trained size: in memory a native pass would decide
            scale, note = 1.0, note + ", native scale kept"
        if scale != 1.0:
            raise ValueError(
                f"The objects measure about {diameter:.1f} px across (estimated on the image's central "
                f"window), outside the range this model was trained for ({model_diameter:.1f} px); out= "
                f"and client= segment at the image's own scale. Resize the image by {scale:.2f} first, "
                "segment it in memory (no out=/client=; --output-format tif), give the objects' diameter "
                "if the estimate is wrong, or diameter=0 (GUI/CLI: 0) to segment at native scale anyway."
            )
    elif scale != 1.0:
        raise ValueError(f"out= and client= segment planes at their own scale, but the diameter asks to resize "
                         f"them by {scale:.2f}: give diameter=0 (GUI/CLI: 0), or resize the image first.")
    return ObjectSize(mode, diameter if mode != "off" else None, 1.0, model_diameter, note)


def _median_measured(measure, result) -> float | None:
    """Median equivalent diameter (pixels of the result) of ``measure(result)``; None when nothing to measure."""
    diameters = measure(result)
    return median_of(diameters) if diameters is not None else None


def _fragment_search(source, predict, measure, model_diameter: float, trained_range: tuple[float, float],
                     done: int):
    """Passes over ``source`` shrunk by :data:`FRAGMENT_SEARCH_SCALES` in turn, until one's objects measure
    the model's size: ``((result, scale, median diameter in the plane's pixels) or None, done)``."""
    for scale in FRAGMENT_SEARCH_SCALES:
        plane = ScaledSource(source, scale)
        if min(plane.shape) < FRAGMENT_SEARCH_MIN_SIDE:
            break
        result, total = yield from _counted(predict(plane, True), done, done, "rescaled tile")
        done += total
        measured = _median_measured(measure, result)
        if measured is not None and trained_range[0] <= measured / model_diameter <= trained_range[1]:
            return (result, scale, measured / scale), done
    return None, done


def resized_pass_mismatch(diameters: np.ndarray | None, scale: float, model_diameter: float | None,
                          accept_range: tuple[float, float] = ACCEPT_RANGE) -> str | None:
    """Why a resized pass's objects contradict the estimate (a note), or None when they match it.

    ``diameters``: equivalent diameters of the objects found on the resized plane (None:
    nothing to check, the pass is kept). The pass is rejected when it found no object, or
    when their median on the resized plane is outside ``accept_range`` times the model's.
    """
    if diameters is None or not model_diameter:
        return None
    found = median_of(diameters)
    if found is None:
        return f"no object found after resizing x{scale:.3g}"
    ratio = found / model_diameter
    if accept_range[0] <= ratio <= accept_range[1]:
        return None
    return f"after resizing x{scale:.3g} the objects measured {found / scale:.1f} px, not the model's size"


def _counted(gen: ProgressGenerator, offset: int, extra_total: int, stage: str | None = None):
    """Re-yield ``gen``'s events shifted by ``offset`` (done) and ``extra_total``; return (result, its total)."""
    total = 0
    try:
        event = next(gen)
        while True:
            total = event.total
            yield ProgressEvent(offset + event.done, extra_total + event.total, stage or event.stage)
            event = next(gen)
    except StopIteration as stop:
        return stop.value, total
    finally:
        gen.close()


def objects_to_grid(objects, resized_shape: tuple[int, int], shape: tuple[int, int], min_size: int, t: int = 0,
                    z: int = 0):
    """:class:`~.instance_table.PlaneObject` s of a resized (h, w) plane mapped onto the (H, W) grid.

    The objects are painted in order (ids 1..n), mapped by nearest neighbour; objects left
    smaller than ``min_size`` pixels (or gone) are dropped, the others keep their order,
    scores and classes.
    """
    from .instance_table import objects_from_labels

    labels = np.zeros(resized_shape, np.int32)
    for index, obj in enumerate(objects, 1):
        labels[obj.y0 : obj.y0 + obj.mask.shape[0], obj.x0 : obj.x0 + obj.mask.shape[1]][obj.mask] = index
    return objects_from_labels(nearest_to_grid(labels, shape), [o.score for o in objects],
                               [o.class_id for o in objects], t, z, min_size)


def semantic_to_grid(result: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]):
    """``(classes, probabilities (K, h, w))`` of a resized plane on the (H, W) grid.

    Probabilities are resized linearly; classes are their argmax (uint8 (H, W)).
    """
    probabilities = linear_to_grid(result[1], shape)
    return probabilities.argmax(axis=0).astype(np.uint8), probabilities


def boundary_classes_to_grid(
    result: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], *, object_class: int = 1, boundary_class: int = 2
):
    """``(classes, probabilities (K, h, w))`` of a resized plane of a model with a boundary class, on the (H, W) grid.

    Resized linearly like :func:`semantic_to_grid`, the 1-2 pixel boundary class the model
    draws at its own scale would come out ``1 / scale`` times as wide and eat into the object
    class. Instead the plane's objects are split on the resized plane
    (:func:`~.postprocess.instances_from_classes`), mapped by nearest neighbour, and their
    object / boundary classes rebuilt on the grid with the training rule
    (:func:`~.postprocess.instances_to_classes`), so the boundary has the width the model was
    trained to draw. The foreground (object or boundary) is still that of the linearly
    resized probabilities: object pixels outside it become its class, and its pixels outside
    every object (objects under 10 pixels at the model's scale, edges the nearest mapping
    does not reach) become boundary, so they join a neighbouring object or none when
    instances are split on the grid, instead of seeding objects of their own (issue 18:
    unet-phasecells on a Usiigaci image enlarged x4, 128 objects for 45 cells, AP(0.5) 0.16;
    with this rule 36 objects, 0.42).

    Returns:
        ``(uint8 classes (H, W), float32 probabilities (K, H, W))``; the probabilities are
        resized linearly, so the classes differ from their argmax along the boundaries.
    """
    from .postprocess import instances_from_classes, instances_to_classes

    classes, probabilities = semantic_to_grid(result, shape)
    found = instances_from_classes(result[0], result[1], object_class=object_class, boundary_class=boundary_class)
    instances = nearest_to_grid(found, shape)
    foreground = (classes == object_class) | (classes == boundary_class)
    instances[~foreground] = 0
    rebuilt = instances_to_classes(instances, object_class=object_class, boundary_class=boundary_class)
    outside_objects = np.where(foreground, boundary_class, classes)
    return np.where(instances > 0, rebuilt, outside_objects).astype(np.uint8), probabilities

"""Per-object measurements and per-region summaries through the API: :func:`iter_measure` / :func:`measure`
(``measure_objects`` is the same as ``measure``); used by ``unet-maskrcnn measure`` and the Measure dock."""

from __future__ import annotations

import numpy as np

from ..core.measure import COLOUR_NAMES  # noqa: F401  (names of RGB(A) channels, also the dock's)
from ..core.progress import CancelCheck, ProgressCallback, ProgressGenerator, drain
from .results import Measurements


def measure(labels, image=None, *, on_progress: ProgressCallback | None = None,
            should_cancel: CancelCheck | None = None, **options) -> Measurements:
    """Run :func:`iter_measure` to the end (options as there)."""
    return drain(iter_measure(labels, image, **options), on_progress, should_cancel)


def measure_objects(labels, image=None, **options) -> Measurements:
    """:func:`measure` (its earlier name)."""
    return measure(labels, image, **options)


def iter_measure(
    labels,
    image=None,
    *,
    regions=None,
    class_names: list[str] | None = None,
    spacing: tuple[float, ...] | None = None,
    channel_axis: int | None = None,
    channel_names: list[str] | None = None,
    time_lapse: bool = False,
) -> ProgressGenerator[Measurements]:
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
        time_lapse: the first axis of ``labels``, ``regions`` and ``image`` is time: each time
            point is measured on its own and both tables start with a ``t`` column (``spacing``
            then leaves the time axis out).

    Yields ProgressEvent per time point (one for a single image); returns :class:`Measurements`.

    Raises:
        ValueError: ``labels`` or ``regions`` with fractional, negative or NaN values.
    """
    from ..core.measure import iter_measure_objects
    from ..core.validation import check_label_values

    labels = check_label_values(labels, "labels")
    if regions is not None:
        regions = check_label_values(regions, "regions")
    if image is not None:
        image = np.asarray(image)
        if channel_axis is None and image.ndim == labels.ndim + 1:
            channel_axis = image.ndim - 1
            if channel_names is None and image.shape[-1] in (3, 4):
                channel_names = list(COLOUR_NAMES[: image.shape[-1]])
    objects, summary = yield from iter_measure_objects(
        labels, time_lapse=time_lapse, image=image, spacing=spacing, regions=regions, class_names=class_names,
        channel_axis=channel_axis, channel_names=channel_names)
    return Measurements(objects, summary)

"""Per-object measurements and per-region summaries through the API: :func:`measure_objects`."""

from __future__ import annotations

import numpy as np

from .results import Measurements


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

    Raises:
        ValueError: ``labels`` or ``regions`` with fractional, negative or NaN values.
    """
    from ..core.measure import COLOUR_NAMES, measure_objects as measure
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
    objects, summary = measure(labels, image, spacing, regions, class_names, channel_axis, channel_names)
    return Measurements(objects, summary)

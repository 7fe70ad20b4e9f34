"""Random training crops with microscopy augmentation, image and labels kept aligned.

One sample is made in three steps (:func:`random_sample`):

1. geometry at read time (:func:`read_scaled_crop`): a random window of side ``crop / s``
   (scale jitter ``s``, log-uniform) is read through the model's normalisation
   (``PlaneSource.read``, exactly as at inference), the part outside the image padded, and
   resized to ``crop x crop``, bilinear for the image and nearest for the labels;
2. a random flip and 90-degree rotation (the 8 symmetries of the square), optionally any
   angle (:func:`random_rotation`);
3. colour on the normalised image: H&E stain jitter in HED space and per-channel gains on
   3-channel images (:func:`jitter_colour`; optionally colour images only), an optional
   contrast inversion (fluorescence looks like brightfield and back; optionally grey images
   only);
4. optical degradations (:func:`degrade`): a loss of resolution (the crop shrunk and enlarged
   back with the inference path's own resampling, as a small image is enlarged to the model's
   object size), Gaussian defocus blur, and contrast reduction towards the crop's background
   under a smooth random gain field (dim objects, uneven illumination);
5. intensity jitter (:func:`jitter_intensity`): contrast, brightness, gamma and Gaussian noise.

With ``anisotropic`` the zoom of step 1 is drawn per axis (elongated or squashed objects).

:data:`AUGMENT_PRESETS` names the recipes the CLI offers (``--augment``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from ..resampling import linear_to_grid
from .data import PAD_LABEL


@dataclass(frozen=True)
class AugmentSettings:
    """How strongly training crops are varied.

    Attributes:
        scale_range: (min, max) zoom factor of a crop (>1 enlarges objects), log-uniform.
        flips: random flips and 90-degree rotations.
        contrast: contrast factor drawn from ``[1 - contrast, 1 + contrast]``.
        brightness: offset (normalised units, ~0..1 image range) from ``[-brightness, brightness]``.
        gamma_range: (min, max) exponent applied to positive intensities, log-uniform.
        noise_std: Gaussian noise standard deviation drawn from ``[0, noise_std]`` (normalised units).
        any_rotation: also rotate by a uniform random angle (pixels rotated in from outside
            read as padding).
        stain_jitter: 3-channel images: each of the haematoxylin, eosin and DAB optical
            densities scaled by ``1 + U(-s, s)`` and shifted by ``U(-s, s)`` (Tellez et al.
            2018's HED augmentation); 0 = off.
        channel_gain: 3-channel images: each channel scaled by ``1 + U(-g, g)``; 0 = off.
        invert_probability: chance of inverting the contrast (``1 - x``): dark objects on a
            light background become bright on dark and back.
        anisotropic: draw the zoom of each axis independently from ``scale_range``.
        colour_only_stain: apply ``stain_jitter`` / ``channel_gain`` only to colour crops
            (channels differ, :func:`is_grey`), so grey images stay grey.
        invert_grey_only: apply ``invert_probability`` only to grey crops (inverting H&E
            gives no real image).
        blur_probability: chance of a Gaussian defocus blur, sigma (pixels) uniform in
            ``blur_sigma``.
        dim_probability: chance of a contrast reduction: each channel's deviation from its
            median (the background) is multiplied by a smooth random field (a 4 x 4 grid of
            values uniform in ``dim_range``, interpolated), so objects get dim, some more
            than others; the noise of step 5 then lowers their signal-to-noise ratio.
        lowres_probability: chance of a loss of resolution: the crop is shrunk by a factor
            drawn log-uniform from ``lowres_range`` (anti-aliased linear) and enlarged back
            (linear), the blur an image gets when taken at a coarser pixel size and enlarged
            to the model's object size (issue 18: objects of ~4 px enlarged x4).
    """

    scale_range: tuple[float, float] = (0.75, 1.33)
    flips: bool = True
    contrast: float = 0.2
    brightness: float = 0.1
    gamma_range: tuple[float, float] = (0.75, 1.33)
    noise_std: float = 0.05
    any_rotation: bool = False
    stain_jitter: float = 0.0
    channel_gain: float = 0.0
    invert_probability: float = 0.0
    anisotropic: bool = False
    colour_only_stain: bool = False
    invert_grey_only: bool = False
    blur_probability: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    dim_probability: float = 0.0
    dim_range: tuple[float, float] = (0.3, 1.0)
    lowres_probability: float = 0.0
    lowres_range: tuple[float, float] = (1.5, 4.0)

    def __post_init__(self) -> None:
        for name in ("scale_range", "gamma_range", "blur_sigma", "dim_range", "lowres_range"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be (min, max) with 0 < min <= max, got {(low, high)}.")


NO_AUGMENTATION = AugmentSettings(
    scale_range=(1.0, 1.0), flips=False, contrast=0.0, brightness=0.0, gamma_range=(1.0, 1.0), noise_std=0.0
)

# Issue 18: the failures of maskrcnn-nuclei on other labs' images. Dim, low-contrast and
# defocused nuclei (contrast reduction under a smooth gain field, blur, gamma, noise);
# elongated, pale H&E nuclei (zoom 0.7-1.4 per axis, stain jitter in HED space on colour
# crops); brightfield (grey crops inverted: fluorescence looks like brightfield and back).
_ROBUST = AugmentSettings(
    scale_range=(0.7, 1.4), anisotropic=True, contrast=0.3, brightness=0.1, gamma_range=(0.6, 1.6),
    noise_std=0.06, stain_jitter=0.08, channel_gain=0.05, colour_only_stain=True,
    invert_probability=0.2, invert_grey_only=True, blur_probability=0.25, blur_sigma=(0.5, 2.0),
    dim_probability=0.3, dim_range=(0.25, 1.0),
)

AUGMENT_PRESETS = {
    "standard": AugmentSettings(),
    # Aimed at unseen microscopes: any orientation, stain and colour variation, inverted
    # contrast (brightfield <-> fluorescence), dim and noisy objects, a 4x range of object sizes.
    "strong": AugmentSettings(
        scale_range=(0.5, 2.0), contrast=0.4, brightness=0.15, gamma_range=(0.6, 1.6), noise_std=0.08,
        any_rotation=True, stain_jitter=0.05, channel_gain=0.1, invert_probability=0.15,
    ),
    # H&E tissue: stains and scanners vary, orientation is arbitrary, contrast never inverts.
    "histology": AugmentSettings(
        scale_range=(0.7, 1.4), contrast=0.2, brightness=0.1, gamma_range=(0.8, 1.25), noise_std=0.03,
        any_rotation=True, stain_jitter=0.05, channel_gain=0.05,
    ),
    "robust": _ROBUST,
    # Issue 18, after stage 3b: 'robust' without the contrast inversion (it cost brightfield
    # precision, docs/TRAINING_ATTEMPTS.md) and with crops that lost resolution (shrunk 1.5-4x
    # and enlarged back), the images the automatic object size makes of small objects.
    "robust-lowres": replace(
        _ROBUST, invert_probability=0.0, invert_grey_only=False, blur_probability=0.2,
        lowres_probability=0.25, lowres_range=(1.5, 4.0),
    ),
    "none": NO_AUGMENTATION,
}


def random_sample(
    source,
    labels: np.ndarray,
    crop: int,
    rng: np.random.Generator,
    settings: AugmentSettings,
    pad_label: int = PAD_LABEL,
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training crop.

    Args:
        source: a ``PlaneSource`` of the image (``shape`` (H, W), ``channels`` C, ``read``).
        labels: integer (H, W) labels of the same plane.
        crop: side of the crop in pixels.
        rng: the random generator of the run.
        settings: augmentation strengths.
        pad_label: label of pixels outside the image.

    Returns:
        ``(image float32 (C, crop, crop), labels int64 (crop, crop))``.
    """
    scale = _log_uniform(rng, *settings.scale_range)
    if settings.anisotropic:
        scale = (scale, _log_uniform(rng, *settings.scale_range))
    image, crop_labels = read_scaled_crop(source, labels, crop, scale, rng, pad_label)
    if settings.flips:
        image, crop_labels = random_symmetry(image, crop_labels, rng)
    if settings.any_rotation:
        image, crop_labels = random_rotation(image, crop_labels, rng, pad_label)
    grey = is_grey(image) if settings.colour_only_stain or settings.invert_grey_only else None
    if not (settings.colour_only_stain and grey):
        image = jitter_colour(image, rng, settings)
    if settings.invert_probability > 0 and rng.random() < settings.invert_probability:
        if not settings.invert_grey_only or grey:
            image = (1.0 - image).astype(np.float32)
    image = degrade(image, rng, settings)
    return jitter_intensity(image, rng, settings), crop_labels


def read_scaled_crop(
    source,
    labels: np.ndarray,
    crop: int,
    scale: float | tuple[float, float],
    rng: np.random.Generator,
    pad_label: int = PAD_LABEL,
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``crop x crop`` window of the plane zoomed by ``scale``.

    A window of side ``round(crop / scale)`` is placed uniformly at random (when the image is
    smaller than the window, the image is placed at random inside it); pixels outside the
    image read as 0 (image) and ``pad_label`` (labels). ``scale`` may be a pair (rows,
    columns): the window is then ``round(crop / scale_y) x round(crop / scale_x)``.

    Returns:
        ``(image float32 (C, crop, crop), labels int64 (crop, crop))``.
    """
    scale_y, scale_x = (scale, scale) if np.isscalar(scale) else scale
    side_y, side_x = max(1, round(crop / scale_y)), max(1, round(crop / scale_x))
    height, width = source.shape
    y0 = _window_start(height, side_y, rng)
    x0 = _window_start(width, side_x, rng)
    image = np.zeros((source.channels, side_y, side_x), np.float32)
    window_labels = np.full((side_y, side_x), pad_label, np.int64)
    ys, ye = max(y0, 0), min(y0 + side_y, height)
    xs, xe = max(x0, 0), min(x0 + side_x, width)
    image[:, ys - y0 : ye - y0, xs - x0 : xe - x0] = source.read(ys, ye, xs, xe)
    window_labels[ys - y0 : ye - y0, xs - x0 : xe - x0] = labels[ys:ye, xs:xe]
    if side_y == crop and side_x == crop:
        return image, window_labels
    zoom = (1.0, crop / side_y, crop / side_x)
    image = ndimage.zoom(image, zoom, order=1, mode="nearest", grid_mode=True)
    rows = np.minimum(((np.arange(crop) + 0.5) * side_y / crop).astype(np.int64), side_y - 1)
    cols = np.minimum(((np.arange(crop) + 0.5) * side_x / crop).astype(np.int64), side_x - 1)
    return image.astype(np.float32, copy=False), window_labels[np.ix_(rows, cols)]


def _window_start(length: int, side: int, rng: np.random.Generator) -> int:
    """Uniform start of a ``side`` window over ``length`` pixels (negative: the window overhangs)."""
    low, high = min(0, length - side), max(0, length - side)
    return int(rng.integers(low, high + 1))


def random_symmetry(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random flip and 90-degree rotation of image (C, h, w) and labels (h, w)."""
    turns = int(rng.integers(4))
    image, labels = np.rot90(image, turns, axes=(1, 2)), np.rot90(labels, turns)
    if rng.random() < 0.5:
        image, labels = image[:, :, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def random_rotation(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, pad_label: int = PAD_LABEL
) -> tuple[np.ndarray, np.ndarray]:
    """Image (C, h, w) bilinear and labels (h, w) nearest, rotated by the same uniform angle.

    The corners rotated in from outside read as 0 (image) and ``pad_label`` (labels), like
    the padding of a crop that overhangs the image.
    """
    angle = float(rng.uniform(0.0, 360.0))
    rotated = ndimage.rotate(image, angle, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    rotated_labels = ndimage.rotate(labels, angle, axes=(1, 0), reshape=False, order=0, mode="constant",
                                    cval=pad_label)
    return rotated.astype(np.float32, copy=False), rotated_labels


# Ruifrok & Johnston's stain vectors (rows: haematoxylin, eosin, DAB), as in skimage.color.
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED)


def jitter_colour(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """H&E stain jitter and per-channel gains of a normalised 3-channel image (3, h, w).

    Other channel counts are returned unchanged. The stain jitter works on optical densities
    ``-log(x)`` of the image clipped to (0, 1], projected on the haematoxylin / eosin / DAB
    vectors, each scaled and shifted, and projected back; the part of the image outside
    [0, 1] is kept as it was.
    """
    if image.shape[0] != 3 or (settings.stain_jitter <= 0 and settings.channel_gain <= 0):
        return image
    out = image.astype(np.float32, copy=True)
    if settings.stain_jitter > 0:
        strength = settings.stain_jitter
        clipped = np.clip(out, 1e-3, 1.0)
        density = -np.log(clipped).reshape(3, -1)
        stains = _HED_FROM_RGB.T @ density
        scale = 1.0 + rng.uniform(-strength, strength, (3, 1))
        shift = rng.uniform(-strength, strength, (3, 1))
        stains = stains * scale + shift
        jittered = np.exp(-np.maximum(_RGB_FROM_HED.T @ stains, 0.0)).reshape(out.shape)
        out = (jittered + (out - clipped)).astype(np.float32)
    if settings.channel_gain > 0:
        gains = 1.0 + rng.uniform(-settings.channel_gain, settings.channel_gain, (3, 1, 1))
        out = (out * gains).astype(np.float32)
    return out


GREY_TOLERANCE = 0.02
"""Mean absolute difference between the channels of a normalised crop below which it is grey."""


def is_grey(image: np.ndarray) -> bool:
    """Whether a normalised crop (C, h, w) is grey: one channel, or channels equal within
    :data:`GREY_TOLERANCE` on average (a grey image stored as RGB)."""
    if image.shape[0] < 2:
        return True
    return float(np.abs(np.diff(image, axis=0)).mean()) < GREY_TOLERANCE


def degrade(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Loss of resolution, Gaussian defocus blur and smooth contrast reduction of a normalised crop (C, h, w).

    See :class:`AugmentSettings` (``lowres_probability``, ``blur_probability``,
    ``dim_probability``). Each is drawn independently; with all off the image is returned
    unchanged (no random numbers drawn).
    """
    out = image
    if settings.lowres_probability > 0 and rng.random() < settings.lowres_probability:
        factor = _log_uniform(rng, *settings.lowres_range)
        height, width = out.shape[1:]
        small = linear_to_grid(out, (max(1, round(height / factor)), max(1, round(width / factor))))
        out = linear_to_grid(small, (height, width))
    if settings.blur_probability > 0 and rng.random() < settings.blur_probability:
        sigma = float(rng.uniform(*settings.blur_sigma))
        out = ndimage.gaussian_filter(out, (0.0, sigma, sigma), mode="nearest").astype(np.float32)
    if settings.dim_probability > 0 and rng.random() < settings.dim_probability:
        height, width = out.shape[1:]
        grid = rng.uniform(*settings.dim_range, (4, 4)).astype(np.float32)
        field = ndimage.zoom(grid, (height / 4, width / 4), order=1, mode="nearest", grid_mode=True)
        field = field[:height, :width]
        background = np.median(out.reshape(out.shape[0], -1), axis=1).reshape(-1, 1, 1)
        out = (background + (out - background) * field[np.newaxis]).astype(np.float32)
    return out


def jitter_intensity(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Contrast, brightness, gamma and noise jitter of a normalised float32 image (C, h, w).

    The contrast is scaled about the crop's mean; gamma applies to positive values only
    (the normalised background sits near 0), keeping the sign of the rest.
    """
    contrast = rng.uniform(1 - settings.contrast, 1 + settings.contrast)
    brightness = rng.uniform(-settings.brightness, settings.brightness)
    mean = image.mean()
    out = (image - mean) * contrast + mean + brightness
    gamma = _log_uniform(rng, *settings.gamma_range)
    if gamma != 1.0:
        positive = out > 0
        out[positive] = out[positive] ** gamma
    noise = rng.uniform(0.0, settings.noise_std)
    if noise > 0:
        out += rng.normal(0.0, noise, out.shape).astype(np.float32)
    return out.astype(np.float32, copy=False)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return low if low == high else math.exp(rng.uniform(math.log(low), math.log(high)))

"""Object diameter from the image alone: a scale-space descriptor and a small shift-equivariant regressor.

The automatic object size must not depend on the segmentation model recognising the
objects: a model sees fragments of objects far outside its trained size, and a diameter
measured on them is wrong exactly when a rescale is needed (issue 18). Like cellpose's
size model, this estimator is trained on the training sets under random rescaling, but
it looks at the image through a scale space rather than through the network:

1. The plane (or its central window) becomes one grey channel (mean of the channels of
   the normalised network input) and is described at :data:`N_SCALES` Gaussian scales
   ``sigma_k = SIGMA0 * 2 ** (k / BINS_PER_OCTAVE)`` (pixels) by :data:`FEATURES`
   statistics of the scale-normalised Laplacian of Gaussian (bright and dark blobs) and
   gradient magnitude (:func:`scale_space_descriptor`, shape (F, K)). Large scales are
   computed on a Gaussian pyramid, so a 1024 x 1024 window takes about a second.
2. Enlarging an image by ``s`` moves this descriptor ``log2(s) * BINS_PER_OCTAVE`` bins
   along the scale axis. The regressor (:class:`SizeRegressor`) is a small 1-D
   convolutional network over that axis whose output is a probability per scale bin; the
   estimate is ``2 ** (sum_k p_k * log2(sigma_k) + offset)``: shifted descriptors give
   shifted estimates, so the estimate follows a rescaled image by construction instead of
   by what the training images happened to cover.
3. ``spread`` (standard deviation of log2 diameter under ``p``, octaves) says how sure
   it is; callers keep the native scale when it is too wide (:data:`MAX_SPREAD`).

The weights are a few thousand numbers in ``size_estimator.safetensors`` beside this
module, trained by ``scripts/train_size_estimator.py`` (its provenance in the file's
metadata). Inference is NumPy/SciPy only, so a ``client=`` run's caller never imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

SIGMA0 = 0.5
"""Smallest Gaussian scale (pixels)."""
BINS_PER_OCTAVE = 4
N_SCALES = 32
"""Scales 0.5 ... 0.5 * 2 ** (31 / 4) = 107 px: diameters of about 2 to 300 px."""
FEATURES = ("bright_mean", "dark_mean", "bright_p99", "dark_p99", "gradient_mean", "bright_peaks", "dark_peaks")
WINDOW = 1024
"""Side (pixels) of the central window the estimate looks at (all of a smaller plane)."""
WIDE_FACTOR = 4
"""The wide look at a large plane covers up to this many windows across, shrunk to one window."""
MAX_SPREAD = 0.75
"""Estimates less sure than this (octaves of standard deviation) are not used to rescale."""
MAX_DISAGREEMENT = 1.0
"""Octaves (|log2| of the ratio) by which the central window and the wide look of a large plane may
differ before the estimate counts as unsure, however narrow either look's own spread (issue 18:
Usiigaci set23 enlarged x4, 289 px cells: window 28.7 px with spread 0.52, wide look 99 px)."""
WEIGHTS_FILE = Path(__file__).with_name("size_estimator.safetensors")
_MIN_LEVEL_SIDE = 8


def sigmas() -> np.ndarray:
    """The descriptor's Gaussian scales (pixels of the plane), float64 (K,)."""
    return SIGMA0 * 2.0 ** (np.arange(N_SCALES) / BINS_PER_OCTAVE)


@dataclass(frozen=True)
class SizeEstimate:
    """The estimator's answer for one plane.

    Attributes:
        diameter: median equivalent object diameter (pixels of the plane).
        spread: standard deviation of log2(diameter) under the estimator's distribution
            (octaves); larger means less sure.
        disagreement: octaves between the central window's and the wide look's estimates
            (0 when the plane had one look); above :data:`MAX_DISAGREEMENT` the estimate is unsure.
    """

    diameter: float
    spread: float
    disagreement: float = 0.0

    @property
    def confident(self) -> bool:
        return self.spread <= MAX_SPREAD and self.disagreement <= MAX_DISAGREEMENT

    def doubt(self) -> str:
        """Why the estimate is unsure, for people (empty when it is confident)."""
        reasons = [f"{self.spread:.2f} octaves of spread"] if self.spread > MAX_SPREAD else []
        if self.disagreement > MAX_DISAGREEMENT:
            reasons.append(f"central and wide views {self.disagreement:.1f} octaves apart")
        return ", ".join(reasons)


def grey_window(source, side: int = WINDOW) -> np.ndarray:
    """Central ``side`` x ``side`` window of a ``PlaneSource`` as one float32 (h, w) channel (mean of channels)."""
    height, width = source.shape
    y0, x0 = max(0, (height - side) // 2), max(0, (width - side) // 2)
    pixels = source.read(y0, min(height, y0 + side), x0, min(width, x0 + side))
    return np.asarray(pixels, np.float32).mean(axis=0)


def _inner_window(wide: np.ndarray, shape: tuple[int, int], wide_side: int, side: int) -> np.ndarray:
    """``grey_window(source, side)`` cut from ``wide = grey_window(source, wide_side)`` (plane ``shape``)."""
    (height, width), offsets = shape, []
    for n in (height, width):
        offsets.append(max(0, (n - side) // 2) - max(0, (n - wide_side) // 2))
    return wide[offsets[0]:offsets[0] + side, offsets[1]:offsets[1] + side]


def scale_space_descriptor(grey: np.ndarray) -> np.ndarray:
    """Scale-space statistics of a float (h, w) image, float32 (F, K) with F = len(FEATURES), K = N_SCALES.

    Per scale ``sigma`` (pixels): the mean and 99th percentile of the positive parts of
    ``-sigma**2 * LoG`` (bright blobs) and ``+sigma**2 * LoG`` (dark blobs), the mean of
    ``sigma * |grad G_sigma * image|``, and the mean of the strongest fifth of the bright and
    dark responses' spatial local maxima (blob strength, whatever the objects' density). Scales above 2 px are computed on a Gaussian
    pyramid (blur 1 level pixel, keep every second pixel) with the pyramid's own blur
    subtracted, so each value is that of the full-resolution image at ``sigma``. Each
    feature's curve is returned as ``log(value + eps) - max over scales``: only its shape
    counts, not the image's contrast.
    """
    from scipy.ndimage import gaussian_filter, gaussian_gradient_magnitude, gaussian_laplace

    level = np.asarray(grey, np.float32)
    level = level - float(level.mean())
    factor, blur_var = 1.0, 0.0  # level pixel size; variance (plane pixels^2) of the pyramid's blur so far
    out = np.zeros((len(FEATURES), N_SCALES), np.float64)
    for k, sigma in enumerate(sigmas()):
        while sigma / factor >= 2.0 and min(level.shape) >= 2 * _MIN_LEVEL_SIDE:
            level = gaussian_filter(level, 1.0, mode="reflect")[::2, ::2]
            blur_var += factor**2
            factor *= 2.0
        s = math.sqrt(max(sigma**2 - blur_var, (0.5 * factor) ** 2)) / factor  # in level pixels
        log = gaussian_laplace(level, s, mode="reflect") * (s * s)
        grad = gaussian_gradient_magnitude(level, s, mode="reflect") * s
        bright, dark = np.maximum(-log, 0.0), np.maximum(log, 0.0)
        out[:, k] = (bright.mean(), dark.mean(), _p99(bright), _p99(dark), grad.mean(),
                     _peak_strength(bright), _peak_strength(dark))
    curves = np.log(out + 1e-6)
    return (curves - curves.max(axis=1, keepdims=True)).astype(np.float32)


def _peak_strength(response: np.ndarray) -> float:
    """Mean of the strongest fifth of the response's spatial local maxima (3 x 3): blob strength whatever their density."""
    from scipy.ndimage import maximum_filter

    peaks = response[(response == maximum_filter(response, 3, mode="reflect")) & (response > 0)]
    if peaks.size == 0:
        return 0.0
    top = max(1, peaks.size // 5)
    return float(np.partition(peaks, peaks.size - top)[peaks.size - top:].mean())


def _p99(values: np.ndarray) -> float:
    flat = values.ravel()
    k = int(0.99 * (flat.size - 1))
    return float(np.partition(flat, k)[k])


class SizeRegressor:
    """NumPy forward pass of the trained 1-D network (weights of ``scripts/train_size_estimator.py``).

    Layers: ``conv1d(F -> H, k, same) -> ReLU -> conv1d(H -> H, k, same) -> ReLU ->
    conv1d(H -> 1, k, same)`` gives one logit per scale bin; softmax over bins; the log2
    diameter is the expectation of ``log2(sigma_k)`` plus a learned offset. Zero padding
    at both ends of the scale axis.
    """

    def __init__(self, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
        self.layers = [(tensors[f"conv{i}.weight"].astype(np.float64), tensors[f"conv{i}.bias"].astype(np.float64))
                       for i in range(3)]
        self.offset = float(tensors["offset"].reshape(()))
        self.metadata = dict(metadata or {})

    @classmethod
    def from_file(cls, path: str | Path = WEIGHTS_FILE) -> SizeRegressor:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
            metadata = f.metadata()
        return cls(tensors, metadata)

    def distribution(self, descriptor: np.ndarray) -> np.ndarray:
        """Probabilities (K,) over scale bins of one (F, K) descriptor."""
        x = np.asarray(descriptor, np.float64)
        for i, (weight, bias) in enumerate(self.layers):
            x = _conv1d_same(x, weight, bias)
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        logits = x[0]
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def estimate(self, descriptor: np.ndarray) -> SizeEstimate:
        p = self.distribution(descriptor)
        log_sigma = np.log2(sigmas())
        mean = float((p * log_sigma).sum())
        spread = float(np.sqrt(max((p * (log_sigma - mean) ** 2).sum(), 0.0)))
        return SizeEstimate(float(2.0 ** (mean + self.offset)), spread)


def _conv1d_same(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``torch.nn.functional.conv1d(x, weight, bias, padding=k // 2)`` for x (C_in, K), weight (C_out, C_in, k)."""
    k = weight.shape[2]
    padded = np.pad(x, ((0, 0), (k // 2, k // 2)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=1)  # (C_in, K, k)
    return np.einsum("oik,ink->on", weight, windows) + bias[:, None]


@lru_cache(maxsize=1)
def bundled_regressor() -> SizeRegressor:
    """The regressor shipped with the package (loaded once per process)."""
    if not WEIGHTS_FILE.exists():
        raise FileNotFoundError(
            f"The object-size estimator's weights are missing ({WEIGHTS_FILE}); reinstall the package, "
            "or give the objects' diameter in pixels."
        )
    return SizeRegressor.from_file(WEIGHTS_FILE)


def estimate_diameter(source, regressor: SizeRegressor | None = None) -> SizeEstimate | None:
    """Median object diameter (pixels) of a ``PlaneSource`` estimated from its central window.

    A plane larger than :data:`WINDOW` is also looked at through a wider central square (up
    to :data:`WIDE_FACTOR` windows across) shrunk to one window, where large objects are many
    and of a size the regressor knows well; the estimate with the smaller spread is returned
    (enlarged x4 held-out images: Usiigaci cells of 160-290 px, DSB2018 nuclei of 190 px),
    unsure when the two looks are more than :data:`MAX_DISAGREEMENT` apart.
    Returns None for planes the descriptor cannot describe (smaller than 16 x 16 pixels, or
    constant).
    """
    regressor = regressor or bundled_regressor()
    side = min(*source.shape, WIDE_FACTOR * WINDOW)
    wide = grey_window(source, max(side, WINDOW))  # read once: the central window lies inside it
    grey = _inner_window(wide, source.shape, max(side, WINDOW), WINDOW)
    if min(grey.shape) < 2 * _MIN_LEVEL_SIDE or not np.isfinite(grey).all() or float(grey.std()) == 0.0:
        return None
    found = regressor.estimate(scale_space_descriptor(grey))
    if side <= WINDOW:
        return found
    from skimage.transform import rescale

    factor = side / WINDOW
    wide = rescale(wide, 1.0 / factor, order=1, anti_aliasing=True).astype(np.float32)
    coarse = regressor.estimate(scale_space_descriptor(wide))
    coarse = SizeEstimate(coarse.diameter * factor, coarse.spread)
    sharper = coarse if coarse.spread < found.spread else found
    return SizeEstimate(sharper.diameter, sharper.spread, abs(math.log2(coarse.diameter / found.diameter)))


def provenance(regressor: SizeRegressor | None = None) -> dict:
    """The weights file's recorded provenance (training data, validation figures), {} when none."""
    metadata = (regressor or bundled_regressor()).metadata
    return json.loads(metadata["provenance"]) if "provenance" in metadata else {}

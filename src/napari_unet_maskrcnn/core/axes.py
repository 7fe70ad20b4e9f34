"""Axes of microscopy arrays: guessing, validation, and canonical ``TZYXC`` views.

An image's axes are a string with one letter per dimension: ``T`` time, ``Z`` depth,
``C`` channel (``S``, tifffile's "samples", is accepted for ``C``), ``Y`` rows, ``X``
columns. ``Y`` and ``X`` are required and adjacent in that order; only ``C`` may follow
them (``YX``, ``YXC``, ``ZYX``, ``TZYX``, ``ZCYX``, ``TZCYX``... are all valid).

The core works on one layout, ``TZYXC`` (:data:`CANONICAL`): :func:`to_canonical` makes
that view without copying, and :func:`from_canonical` brings the per-pixel results
(``T, Z, Y, X``) back to the caller's order, which :func:`output_axes` names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CANONICAL = "TZYXC"
LABEL_CANONICAL = "TZYX"
KNOWN = frozenset(CANONICAL)
ALIASES = {"S": "C"}
UNKNOWN = "?"
_NAMES = "T (time), Z (depth), C (channel), Y (rows), X (columns)"


def validate_axes(axes: str, shape: Sequence[int]) -> str:
    """Check ``axes`` against an array ``shape``; return them uppercase, with ``S`` as ``C``.

    Raises:
        ValueError: with the image shape and a suggested fix, when a letter is unknown or
            repeated, Y/X are missing or misplaced, or the length differs from ``len(shape)``.
    """
    letters = _check_letters(axes)
    shape = tuple(shape)
    if len(letters) != len(shape):
        raise ValueError(
            f"axes '{axes}' has {len(letters)} letters but the image has {len(shape)} dimensions "
            f"(shape {shape}); {_suggestion(shape)}"
        )
    return letters


def guess_axes(shape: Sequence[int], rgb: bool | None = None) -> str:
    """Axes for an array of ``shape`` when nothing says what they are.

    Rules (``rgb=True`` forces a colour last axis, ``rgb=False`` forbids it, ``None`` lets
    a last dimension of 3 or 4 mean RGB(A)):

    - 2D: ``YX``.
    - 3D: ``YXC`` when colour-last, else ``ZYX``. A small first dimension is *not* taken
      as channels: napari splits channels into separate layers and multichannel files
      carry their axes, so a bare 3D array is most often a z-stack. Pass ``CYX`` otherwise.
    - 4D: ``ZYXC`` when colour-last; ``ZCYX`` when the second dimension is <= 4
      (ImageJ's hyperstack order); else ``TZYX``.
    - 5D: ``TZYXC`` when colour-last, else ``TZCYX`` (ImageJ order).

    Raises:
        ValueError: for fewer than 2 or more than 5 dimensions.
    """
    shape = tuple(shape)
    ndim = len(shape)
    if not 2 <= ndim <= 5:
        raise ValueError(
            f"cannot guess the axes of an image with {ndim} dimensions (shape {shape}): "
            f"segmentation needs 2 to 5 dimensions out of {_NAMES}."
        )
    colour_last = rgb if rgb is not None else ndim > 2 and shape[-1] in (3, 4)
    if ndim == 2:
        return "YX"
    if ndim == 3:
        return "YXC" if colour_last else "ZYX"
    if ndim == 4:
        if colour_last:
            return "ZYXC"
        return "ZCYX" if shape[1] <= 4 else "TZYX"
    return "TZYXC" if colour_last else "TZCYX"


def resolve_axes(axes: str | None, shape: Sequence[int], rgb: bool | None = None) -> str:
    """Axes from a possibly missing or partly unknown description, e.g. a file's metadata.

    ``None`` gives :func:`guess_axes`. Letters other than TZCYX/S (tifffile's ``Q``
    unknown, ``I`` image sequence, ``A``, ``R``...) are unknown: the guess is used when it
    agrees with the known letters, otherwise unknown positions take the unused letters
    among Z, T, C in that order. When both ``S`` and ``C`` occur (tifffile ``CYXS``), ``S``
    (the colour samples) becomes C and the other C is unknown.
    """
    shape = tuple(shape)
    if axes is None:
        return guess_axes(shape, rgb)
    letters = axes.upper()
    if "S" in letters:
        letters = letters.replace("C", UNKNOWN).replace("S", "C")
    letters = "".join(a if a in KNOWN else UNKNOWN for a in letters)
    if UNKNOWN not in letters:
        return validate_axes(letters, shape)
    try:
        guess = guess_axes(shape, rgb)
    except ValueError:
        guess = ""
    if len(guess) == len(letters) and all(a in (UNKNOWN, g) for a, g in zip(letters, guess)):
        return guess
    spare = [a for a in "ZTC" if a not in letters]
    if letters.count(UNKNOWN) > len(spare):
        raise ValueError(
            f"cannot interpret axes '{axes}' of an image of shape {shape}; {_suggestion(shape)}"
        )
    filled = iter(spare)
    return validate_axes("".join(next(filled) if a == UNKNOWN else a for a in letters), shape)


def output_axes(axes: str) -> str:
    """Axes of per-pixel results (labels, classes): the input ``axes`` without ``C``."""
    return _check_letters(axes).replace("C", "")


def to_canonical(image: np.ndarray, axes: str) -> np.ndarray:
    """View of ``image`` with axes exactly ``TZYXC``; missing axes are inserted with size 1.

    No data is copied (a transposed, strided view of ``image``).
    """
    axes = validate_axes(axes, image.shape)
    order = sorted(range(len(axes)), key=lambda i: CANONICAL.index(axes[i]))
    view = np.transpose(image, order)
    return view[tuple(slice(None) if a in axes else np.newaxis for a in CANONICAL)]


def from_canonical(labels: np.ndarray, axes: str) -> np.ndarray:
    """Bring per-pixel results shaped (T, Z, Y, X) back to ``output_axes(axes)`` order.

    The T and Z axes that :func:`to_canonical` inserted (absent from ``axes``) must have
    size 1 and are removed; the others are reordered as in ``axes``. Returns a view.
    """
    out_axes = output_axes(axes)
    if np.ndim(labels) != len(LABEL_CANONICAL):
        raise ValueError(f"expected results shaped (T, Z, Y, X), got shape {np.shape(labels)}")
    inserted = tuple(i for i, a in enumerate(LABEL_CANONICAL) if a not in out_axes)
    if any(labels.shape[i] != 1 for i in inserted):
        raise ValueError(
            f"results of shape {labels.shape} (T, Z, Y, X) do not fit axes '{axes}': "
            f"axes absent from '{out_axes}' must have size 1"
        )
    kept = [a for a in LABEL_CANONICAL if a in out_axes]
    squeezed = np.squeeze(labels, axis=inserted)
    return np.transpose(squeezed, [kept.index(a) for a in out_axes])


def _check_letters(axes: str) -> str:
    """Uppercase ``axes`` with ``S`` as ``C``; checks letters, repeats and the Y, X placement."""
    letters = "".join(ALIASES.get(a, a) for a in str(axes).upper())
    unknown = sorted(set(letters) - KNOWN)
    if unknown:
        raise ValueError(f"axes '{axes}' has unknown letter(s) {', '.join(unknown)}; use {_NAMES}.")
    repeated = sorted({a for a in letters if letters.count(a) > 1})
    if repeated:
        raise ValueError(f"axes '{axes}' repeats {', '.join(repeated)}; each axis appears once.")
    if "Y" not in letters or "X" not in letters:
        raise ValueError(f"axes '{axes}' needs both Y and X (the image plane), e.g. 'YX' or 'ZYX'.")
    tail = letters[letters.index("Y"):]
    if tail not in ("YX", "YXC"):
        raise ValueError(
            f"axes '{axes}': Y and X must be adjacent in that order and only C may follow them "
            "(e.g. 'ZYX', 'YXC', 'ZCYX'); transpose the image or fix the letters."
        )
    return letters


def _suggestion(shape: tuple[int, ...]) -> str:
    """'give e.g. ...' hint for an image of ``shape``."""
    try:
        example = guess_axes(shape)
    except ValueError:
        return f"give one letter per dimension, at most 5, from {_NAMES}."
    return f"give {len(shape)} letters, e.g. axes '{example}' (--axes {example} on the command line)."

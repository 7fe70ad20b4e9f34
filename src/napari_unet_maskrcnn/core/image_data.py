"""The image data types every reader and writer shares (the bottom of :mod:`.io`,
:mod:`.zarr_io` and :mod:`.arrays`, which import it and not each other's internals)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

UNIT_UM = {  # micrometres per unit
    "um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
    "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "inch": 25400.0, "in": 25400.0,
}


class ImageReadError(ValueError):
    """An image file that is missing, unsupported, empty or unreadable; names the file and the fix."""

    def __init__(self, path: str | os.PathLike, problem: str, fix: str = ""):
        self.path = str(path)
        super().__init__(f"Image '{path}': {problem}" + (f" {fix}" if fix else ""))


@dataclass
class ImageData:
    """An image read from a file.

    Attributes:
        data: the pixels, dimensions ordered as ``axes`` (numpy, or dask when read lazily).
        axes: one letter per dimension of ``data`` (T, Z, C, Y, X).
        pixel_size: micrometres per pixel along ``"X"``, ``"Y"``, ``"Z"``: only those known.
        path: the file it was read from.
    """

    data: np.ndarray
    axes: str
    pixel_size: dict[str, float]
    path: Path


def normal_unit(unit: str | None) -> str:
    """Lowercase unit with the micro signs and ImageJ's escaped \\u00B5 spelled ``u``."""
    text = str(unit or "").strip().lower()
    return text.replace("\\u00b5", "u").replace("\u00b5", "u").replace("\u03bc", "u")


def unit_um(unit: str | None) -> float | None:
    """Micrometres per ``unit`` (um, micron, nm, mm, cm, m, inch); None for pixel or unknown units."""
    return UNIT_UM.get(normal_unit(unit))

"""This package's version, from the installed distribution's metadata.

The core records it (model provenance, zarr result markers) without importing the package root,
which sits above the core.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "napari-unet-maskrcnn"


@lru_cache(maxsize=1)
def package_version() -> str:
    """The installed version, e.g. ``"0.1.0"``; ``"0+unknown"`` in a source tree never installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"

"""U-Net semantic and Mask R-CNN instance segmentation of microscopy images.

Importing the package is cheap: it loads neither torch nor napari. The public functions
of :mod:`napari_unet_maskrcnn.api` are reachable from here and imported on first use::

    import napari_unet_maskrcnn as num
    result = num.segment_semantic(image, "unet-nuclei")
"""

from importlib import import_module

from .core.version import package_version

__version__ = package_version()  # "0+unknown" in a source tree that was never installed

_API_NAMES = (
    "segment_semantic",
    "segment_instances",
    "iter_segment_semantic",
    "iter_segment_instances",
    "list_models",
    "register_model_file",
    "get_model_spec",
)

__all__ = ["__version__", *_API_NAMES]


def __getattr__(name: str):
    """Import :mod:`napari_unet_maskrcnn.api` when one of its functions is first used."""
    if name in _API_NAMES:
        return getattr(import_module(".api", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API_NAMES})

"""Tiny randomly initialised model files, for tests and demos of the machinery (not for use)."""

from __future__ import annotations

import os
from pathlib import Path

from .model_file import ModelSpec, build_network, save_model

TINY_CONFIGS = {
    "unet": {"depth": 2, "base_width": 8},
    "maskrcnn": {"backbone": "resnet18", "fpn_channels": 32, "box_head_size": 64,
                 "mask_head_channels": 32},
}


def make_tiny_model_file(
    path: str | os.PathLike,
    arch: str = "unet",
    in_channels: int = 1,
    class_names: list[str] | None = None,
    seed: int = 0,
    object_diameter_px: float | None = None,
    pixel_size_um: float | None = None,
) -> Path:
    """Write an untrained tiny ``arch`` model to ``path`` and return the path.

    Its outputs are meaningless; it exercises loading, tiling, stacks and the GUI quickly.
    """
    import torch

    if class_names is None:
        class_names = ["background", "object", "boundary"] if arch == "unet" else ["object"]
    spec = ModelSpec(
        arch=arch,
        config=dict(TINY_CONFIGS[arch]),
        class_names=list(class_names),
        in_channels=in_channels,
        name=f"tiny-{arch}",
        object_diameter_px=object_diameter_px,
        pixel_size_um=pixel_size_um,
        provenance={"description": "untrained tiny test model"},
    )
    torch.manual_seed(seed)
    network = build_network(spec)
    return save_model(path, network, spec)


def blob_detections(
    image, threshold: float = 0.5, score: float | None = 0.9, mask_size: int = 28
) -> dict:
    """A stand-in for Mask R-CNN's :func:`~.models.maskrcnn.detect`: each bright blob is a detection.

    Args:
        image: float32 (C, h, w); blobs are connected components of ``image[0] > threshold``.
        score: the score of every detection, or None to score each by its mean intensity.
        mask_size: side of the box-frame masks.

    Returns:
        the ``detect`` dict: boxes (N, 4) x0 y0 x1 y1 (pixel edges), scores (N,), labels (N,)
        all 1, masks (N, mask_size, mask_size).
    """
    import numpy as np
    from skimage.measure import label, regionprops
    from skimage.transform import resize

    boxes, scores, masks = [], [], []
    for region in regionprops(label(image[0] > threshold), intensity_image=image[0]):
        y0, x0, y1, x1 = region.bbox
        boxes.append((x0, y0, x1, y1))
        scores.append(region.intensity_mean if score is None else score)
        masks.append(resize(region.image.astype(np.float32), (mask_size, mask_size), order=1, mode="edge"))
    count = len(boxes)
    return {
        "boxes": np.asarray(boxes, np.float32).reshape(count, 4),
        "scores": np.asarray(scores, np.float32),
        "labels": np.ones(count, np.int32),
        "masks": np.asarray(masks, np.float32).reshape(count, mask_size, mask_size),
    }


class ReadRecorder:
    """Array-like over a numpy ``array`` that records the largest read made of it (elements).

    Wrap it with ``da.from_array(recorder, chunks=array.shape, asarray=True)`` (one chunk: a
    whole read would show). ``largest``: over all threads; ``largest_off_main``: off the main
    thread only (a napari run's worker, not the display).
    """

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        self.largest = self.largest_off_main = 0

    def __getitem__(self, key):
        import threading

        part = self.array[key]
        self.largest = max(self.largest, part.size)
        if threading.current_thread() is not threading.main_thread():
            self.largest_off_main = max(self.largest_off_main, part.size)
        return part

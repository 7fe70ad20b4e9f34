"""Dask-backed and multiscale napari layers are segmented window by window, never loaded whole."""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest

from napari_unet_maskrcnn import api


class WindowsOnly:
    """One-chunk array source that records the largest read made off the main (display) thread."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        self.largest_run_read = 0

    def __getitem__(self, key):
        part = self.array[key]
        if threading.current_thread() is not threading.main_thread():
            self.largest_run_read = max(self.largest_run_read, part.size)
        return part


@pytest.mark.xfail(reason="known bug (issue 10): the widget path reads the whole highest-resolution plane once "
                          "in its worker (the classes are right; the API path reads windows only, "
                          "tests/test_blockwise.py); not yet traced", strict=True)
def test_highest_resolution_of_a_dask_multiscale_layer(viewer, dock, load_model, run_widget, tiny_models):
    image = np.random.default_rng(0).integers(0, 4000, (1100, 1000)).astype(np.uint16)
    source = WindowsOnly(image)
    full = da.from_array(source, chunks=image.shape, asarray=True)  # one chunk: a whole read would show
    viewer.add_image([full, full[::2, ::2]], multiscale=True, name="big")
    widget = dock("U-Net segmentation")
    load_model(widget, tiny_models["unet"])

    run_widget(widget)

    classes = next(layer for layer in viewer.layers if layer.name.startswith("big ·"))
    expected = api.segment_semantic(image, tiny_models["unet"], tile=api.DEFAULT_TILE).classes
    assert np.array_equal(np.asarray(classes.data), expected)
    assert 0 < source.largest_run_read < image.size  # tiles and a strided sample, never the whole plane

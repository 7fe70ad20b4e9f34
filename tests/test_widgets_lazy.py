"""Dask-backed and multiscale napari layers are segmented window by window, never loaded whole."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core.testing import ReadRecorder


def test_highest_resolution_of_a_dask_multiscale_layer(viewer, dock, load_model, run_widget, tiny_models):
    image = np.random.default_rng(0).integers(0, 4000, (1100, 1000)).astype(np.uint16)
    source = ReadRecorder(image)
    full = da.from_array(source, chunks=image.shape, asarray=True)  # one chunk: a whole read would show
    # napari's display reads the full level here (whole, legitimately); the synchronous scheduler keeps
    # those reads on the main thread instead of dask's thread pool, so off-main reads are the run's only
    with dask.config.set(scheduler="synchronous"):
        viewer.add_image([full, full[::2, ::2]], multiscale=True, name="big")
        widget = dock("U-Net segmentation")
        load_model(widget, tiny_models["unet"])

        run_widget(widget)

    classes = next(layer for layer in viewer.layers if layer.name.startswith("big ·"))
    expected = api.segment_semantic(image, tiny_models["unet"], tile=api.DEFAULT_TILE).classes
    assert np.array_equal(np.asarray(classes.data), expected)
    assert 0 < source.largest_off_main < image.size  # tiles and a strided sample, never the whole plane

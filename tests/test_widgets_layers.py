"""The widgets' layer rules without a window: axes of a layer, output geometry, replacement."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Image

from napari_unet_maskrcnn.napari_plugin.layer_inputs import input_image, layer_axes
from napari_unet_maskrcnn.napari_plugin.layer_outputs import MARKER, is_untouched, show_output


@pytest.mark.parametrize(
    "shape, kwargs, axes",
    [
        ((30, 40), {}, "YX"),
        ((5, 30, 40), {}, "ZYX"),
        ((5, 30, 40), {"axis_labels": ("t", "y", "x")}, "TYX"),
        ((2, 5, 30, 40), {}, "TZYX"),
        ((30, 40, 3), {"rgb": True}, "YXC"),
        ((5, 30, 40, 3), {"rgb": True}, "ZYXC"),
        ((4, 30, 40), {"metadata": {"axes": "cyx"}}, "CYX"),
    ],
)
def test_layer_axes(shape, kwargs, axes):
    layer = Image(np.zeros(shape, np.uint8), **kwargs)
    assert layer_axes(layer) == axes


def test_time_axis_from_the_viewer_dims():
    viewer = ViewerModel()
    layer = viewer.add_image(np.zeros((5, 30, 40)))
    viewer.dims.axis_labels = ("time", "y", "x")
    assert layer_axes(layer, viewer) == "TYX"


def test_five_dimensions_need_declared_axes():
    layer = Image(np.zeros((2, 2, 2, 8, 8)))
    with pytest.raises(ValueError, match="metadata\\['axes'\\]"):
        layer_axes(layer)
    layer.metadata["axes"] = "TZCYX"
    assert input_image(layer).output_axes == "TZYX"


def test_outputs_keep_scale_and_translate_without_the_channel_axis():
    multichannel = Image(np.zeros((3, 30, 40)), scale=(1, 0.5, 0.25), translate=(0, 10, 20),
                         metadata={"axes": "CYX"}, name="cells")
    source = input_image(multichannel)
    assert (source.scale, source.translate, source.spacing) == ((0.5, 0.25), (10.0, 20.0), (0.5, 0.25))

    rgb = Image(np.zeros((30, 40, 3), np.uint8), rgb=True, scale=(0.5, 0.25))
    assert input_image(rgb).scale == (0.5, 0.25)


def test_replacement_rule_on_a_viewer_model():
    viewer = ViewerModel()
    source = input_image(viewer.add_image(np.zeros((20, 20)), name="img", scale=(2, 2)))
    first = show_output(viewer, "labels", np.ones((20, 20), np.uint8), source, "classes")
    assert first.name == "img classes" and tuple(first.scale) == (2, 2)
    assert first.metadata[MARKER]["source"] == "img" and is_untouched(first)

    again = show_output(viewer, "labels", np.full((20, 20), 2, np.uint8), source, "classes")
    assert again is first and int(first.data[0, 0]) == 2 and is_untouched(first)

    first.data[0, 0] = 5
    third = show_output(viewer, "labels", np.ones((20, 20), np.uint8), source, "classes")
    assert third is not first and third.name == "img classes [1]"
    assert int(first.data[0, 0]) == 5 and not is_untouched(first)

    other_kind = show_output(viewer, "labels", np.ones((20, 20), np.uint32), source, "instances")
    assert other_kind is not third and other_kind.name == "img instances"


def test_a_layer_the_user_made_is_never_replaced():
    viewer = ViewerModel()
    source = input_image(viewer.add_image(np.zeros((20, 20)), name="img"))
    mine = viewer.add_labels(np.zeros((20, 20), np.uint8), name="img classes")

    result = show_output(viewer, "labels", np.ones((20, 20), np.uint8), source, "classes")

    assert result is not mine and not mine.data.any()

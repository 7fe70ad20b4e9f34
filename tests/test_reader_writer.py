"""Reader and labels writer, called directly and through napari's plugin machinery."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from napari.layers import Labels
from napari.plugins.io import read_data_with_plugins, save_layers
from npe2 import PluginManager
from PIL import Image as PilImage

from napari_unet_maskrcnn.napari_plugin.reader import get_reader
from napari_unet_maskrcnn.napari_plugin.writer import write_labels
from napari_unet_maskrcnn.core.io import read_image

PLUGIN = "napari-unet-maskrcnn"


@pytest.fixture(autouse=True, scope="module")
def installed_plugins():
    """Find the installed plugins, as napari does at start-up."""
    PluginManager.instance().discover()


def read_with_plugin(path) -> list:
    layer_data, _ = read_data_with_plugins([str(path)], plugin=PLUGIN)
    return layer_data


def test_reader_declines_what_it_cannot_read(tmp_path):
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.csv")]) is None
    assert get_reader(str(tmp_path / "a.tif")) is not None


@pytest.mark.parametrize("content", [b"", b"II*\x00 truncated nonsense"])
def test_unreadable_files_give_none_not_an_exception(tmp_path, content):
    path = tmp_path / "broken.tif"
    path.write_bytes(content)
    reader = get_reader(str(path))
    assert reader(str(path)) is None
    assert get_reader(str(tmp_path / "missing.tif"))(str(tmp_path / "missing.tif")) is None


def test_calibrated_z_stack(tmp_path):
    path = tmp_path / "stack.tif"
    data = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})

    ((layer_data, kwargs, layer_type),) = read_with_plugin(path)

    assert layer_type == "image" and kwargs["name"] == "stack"
    np.testing.assert_array_equal(layer_data, data)
    np.testing.assert_allclose(kwargs["scale"], (2.0, 0.25, 0.25))
    assert kwargs["metadata"]["axes"] == "ZYX"


def test_channels_become_one_layer_each(tmp_path):
    path = tmp_path / "two.tif"
    data = np.zeros((4, 2, 16, 16), np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX"})

    ((_, kwargs, _),) = read_with_plugin(path)

    assert kwargs["channel_axis"] == 1
    assert kwargs["name"] == ["two ch0", "two ch1"]
    assert kwargs["metadata"]["axes"] == "ZYX"


def test_rgb_png(tmp_path):
    path = tmp_path / "colour.png"
    PilImage.fromarray(np.full((12, 10, 3), 200, np.uint8)).save(path)

    ((layer_data, kwargs, _),) = read_with_plugin(path)

    assert layer_data.shape == (12, 10, 3) and kwargs["rgb"]
    assert kwargs["metadata"]["axes"] == "YXC"
    assert kwargs["scale"] == [1.0, 1.0]


def test_labels_round_trip_through_napari(tmp_path):
    data = np.zeros((3, 40, 50), np.uint32)
    data[1, 10:20, 10:20] = 70_000  # needs 32 bits
    data[2, 30:35, 5:9] = 3
    layer = Labels(data, scale=(2.0, 0.5, 0.5), metadata={"axes": "ZYX"})
    path = tmp_path / "labels.tif"

    written = save_layers(str(path), [layer], plugin=PLUGIN)

    assert written == [str(path)]
    assert [p.name for p in tmp_path.iterdir()] == ["labels.tif"]  # no temporary leftovers
    image = read_image(path)
    np.testing.assert_array_equal(image.data, data)
    assert image.axes == "ZYX"
    assert image.pixel_size == pytest.approx({"Z": 2.0, "Y": 0.5, "X": 0.5})


def test_uncalibrated_2d_labels_without_axes(tmp_path):
    data = np.arange(20, dtype=np.uint8).reshape(4, 5)
    path = tmp_path / "plain.tiff"

    assert write_labels(str(path), data, {"scale": [1.0, 1.0], "metadata": {}}) == [str(path)]

    image = read_image(path)
    np.testing.assert_array_equal(image.data, data)
    assert image.axes == "YX" and image.pixel_size == {}


def test_labels_with_too_many_dimensions_are_refused_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="dimensions"):
        write_labels(str(tmp_path / "x.tif"), np.zeros((2,) * 5, np.uint8), {"metadata": {}})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name, data, kind", [
    ("nuclei_labels", np.arange(600, dtype=np.uint16).reshape(20, 30), "labels"),  # by name: 600 ids
    ("cells_mask", (np.arange(600).reshape(20, 30) % 2).astype(np.uint8), "labels"),
    ("scan", np.repeat(np.arange(4, dtype=np.uint8), 150).reshape(20, 30), "labels"),  # few values
    ("scan", np.arange(600, dtype=np.uint16).reshape(20, 30), "image"),  # many values
    ("mask_of_intensity", np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30), "image"),  # float
])
def test_label_images_open_as_labels_named_after_the_file(tmp_path, name, data, kind):
    path = tmp_path / f"{name}.tif"
    tifffile.imwrite(path, data)

    ((layer_data, kwargs, layer_type),) = read_with_plugin(path)

    assert layer_type == kind and kwargs["name"] == name
    np.testing.assert_array_equal(layer_data, data)


def test_a_labels_file_opens_as_a_labels_layer_in_the_viewer(make_napari_viewer, tmp_path):
    data = np.zeros((3, 40, 50), np.uint16)
    data[1, 10:20, 10:20] = 7
    path = tmp_path / "embryo_masks.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})

    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin=PLUGIN)

    assert isinstance(layer, Labels) and layer.name == "embryo_masks"
    assert layer.metadata["axes"] == "ZYX"


def _ome_zarr_image(path, image, labels=None, ngff="0.5"):
    """An OME-Zarr image (Z, Y, X; 2 x 0.5 x 0.5 µm; one level) with an optional label image 'nuclei',
    written by ome-zarr-py as NGFF ``ngff`` ("0.4": zarr v2, "0.5": zarr v3)."""
    import inspect

    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    fmt = FormatV04() if ngff == "0.4" else FormatV05()
    group = zarr.open_group(path, mode="w", zarr_format=fmt.zarr_format)
    parameters = inspect.signature(write_image).parameters
    options = dict(fmt=fmt, scaler=None)  # no scaler and no scale factors: one resolution level
    if "scale_factors" in parameters:  # 0.12 has only the scaler
        options["scale_factors"] = []
    if "scale" in parameters:  # ome-zarr >= 0.17: pixel size and units as dicts (0.18 ignores the transformations)
        options.update(axes="zyx", scale={"z": 2.0, "y": 0.5, "x": 0.5}, axes_units=dict.fromkeys("zyx", "micrometer"))
    else:
        options.update(axes=[{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
                       coordinate_transformations=[[{"type": "scale", "scale": [2.0, 0.5, 0.5]}]])
    write_image(image, group, **options)
    if labels is not None:
        write_labels(labels, group, "nuclei", **options)


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
def test_ome_zarr_opens_lazily_as_an_image_with_its_labels(tmp_path, ngff):
    import dask.array as da
    import zarr

    image = np.random.default_rng(0).integers(0, 4000, (2, 40, 50)).astype(np.uint16)
    labels = np.zeros(image.shape, np.uint32)
    labels[1, 5:9, 5:9] = 4
    _ome_zarr_image(tmp_path / "cells.zarr", image, labels, ngff)
    assert (tmp_path / "cells.zarr" / ("zarr.json" if ngff == "0.5" else ".zattrs")).is_file()
    assert get_reader(str(tmp_path / "cells.zarr") + "/") is not None

    (data, kwargs, kind), (label_data, label_kwargs, label_kind) = read_with_plugin(tmp_path / "cells.zarr")

    assert kind == "image" and isinstance(data, da.Array) and kwargs["name"] == "cells"
    assert kwargs["scale"] == [2.0, 0.5, 0.5] and kwargs["metadata"]["axes"] == "ZYX"
    np.testing.assert_array_equal(data.compute(), image)
    assert label_kind == "labels" and isinstance(label_data, zarr.Array) and label_kwargs["name"] == "cells nuclei"
    assert label_kwargs["scale"] == [2.0, 0.5, 0.5] and label_kwargs["metadata"]["axes"] == "ZYX"
    np.testing.assert_array_equal(label_data[:], labels)


@pytest.mark.parametrize("beside_image", [False, True])
def test_zarr_results_are_label_images_to_ome_zarr_py(tmp_path, beside_image):
    """ome-zarr-py's own reader finds a labels_zarr result a label image with its axes, units and pixel size."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    from napari_unet_maskrcnn.core.zarr_io import labels_zarr

    path = tmp_path / "result.zarr"
    with labels_zarr(path, (2, 30, 40), "ZYX", pixel_size={"X": 0.5, "Y": 0.5, "Z": 2.0},
                     beside_image=beside_image) as array:
        array[1, 3:6, 3:6] = 7

    (node,) = Reader(parse_url(str(path / "labels" / "labels" if beside_image else path)))()
    assert any(isinstance(spec, Label) for spec in node.specs)
    assert node.metadata["coordinateTransformations"] == [[{"type": "scale", "scale": [2.0, 0.5, 0.5]}]]
    assert [(a["name"], a["unit"]) for a in node.metadata["axes"]] == [(a, "micrometer") for a in "zyx"]
    assert node.data[0][1, 4, 4].compute() == 7
    if beside_image:
        assert dict(zarr.open_group(path / "labels", mode="r").attrs)["ome"]["labels"] == ["labels"]


def test_plain_zarr_arrays_open_as_images_or_labels(tmp_path):
    import dask.array as da
    import zarr

    intensities = zarr.open_array(tmp_path / "scan.zarr", mode="w", shape=(60, 70), chunks=(32, 32), dtype="uint16")
    intensities[:] = np.arange(60 * 70, dtype=np.uint16).reshape(60, 70)
    masks = zarr.open_array(tmp_path / "scan_masks.zarr", mode="w", shape=(60, 70), chunks=(32, 32), dtype="uint32")
    masks[10:20, 10:20] = 300

    ((data, _, kind),) = read_with_plugin(tmp_path / "scan.zarr")
    ((label_data, _, label_kind),) = read_with_plugin(tmp_path / "scan_masks.zarr")

    assert kind == "image" and isinstance(data, da.Array)
    assert label_kind == "labels" and isinstance(label_data, zarr.Array) and label_data[15, 15] == 300


def test_a_cli_zarr_result_opens_as_labels_with_the_input_scale(tmp_path):
    import zarr

    from napari_unet_maskrcnn import cli
    from napari_unet_maskrcnn.core.testing import make_tiny_model_file

    model = make_tiny_model_file(tmp_path / "unet.safetensors", "unet")
    image = np.random.default_rng(1).integers(0, 4000, (2, 70, 64)).astype(np.uint16)
    _ome_zarr_image(tmp_path / "cells.zarr", image)
    out = tmp_path / "out"
    assert cli.main(["segment", str(tmp_path / "cells.zarr"), "--model", str(model), "--output", str(out),
                     "--tile", "64", "--output-format", "zarr", "--quiet"]) == 0

    ((data, kwargs, kind),) = read_with_plugin(out / "cells.zarr")

    assert kind == "labels" and isinstance(data, zarr.Array) and kwargs["name"] == "cells classes"
    assert kwargs["scale"] == [2.0, 0.5, 0.5] and kwargs["metadata"]["axes"] == "ZYX"


def test_an_api_zarr_result_opens_as_paintable_labels_in_the_viewer(make_napari_viewer, tmp_path):
    import zarr

    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.core.testing import make_tiny_model_file

    model = make_tiny_model_file(tmp_path / "unet.safetensors", "unet")
    image = np.random.default_rng(2).integers(0, 4000, (2, 70, 64)).astype(np.uint16)
    api.segment_semantic(image, model, axes="ZYX", tile=64, out=tmp_path / "result.zarr")

    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(tmp_path / "result.zarr"), plugin=PLUGIN)

    assert isinstance(layer, Labels) and layer.name == "result" and layer.metadata["axes"] == "ZYX"
    assert isinstance(layer.data, zarr.Array)  # backed by the store, not loaded
    before = zarr.open_array(tmp_path / "result.zarr" / "0", mode="r")[:]
    layer.brush_size = 1
    layer.paint((1, 33, 40), 7)
    stored = zarr.open_array(tmp_path / "result.zarr" / "0", mode="r")[:]
    assert stored[1, 33, 40] == 7
    changed = stored != before
    changed[1, 33, 40] = False
    assert not changed.any()  # only the painted pixel changed

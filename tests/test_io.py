"""read_image / write_labels / atomic_path: formats, axes, pixel size, clear errors, no partial files."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_unet_maskrcnn.core import io
from napari_unet_maskrcnn.core.io import ImageReadError, atomic_path, read_image, write_labels


def labels_of(shape, top=50):
    return (np.arange(np.prod(shape)) % (top + 1)).reshape(shape)


@pytest.mark.parametrize(
    "axes, shape, pixel_size",
    [
        ("YX", (30, 40), {"X": 0.325, "Y": 0.325}),
        ("ZYX", (3, 30, 40), {"X": 0.5, "Y": 0.6, "Z": 2.0}),
        ("TZYX", (2, 3, 30, 40), {"X": 0.1, "Y": 0.1, "Z": 0.3}),
        ("TYX", (2, 30, 40), {}),
    ],
)
def test_labels_round_trip_with_axes_and_pixel_size(tmp_path, axes, shape, pixel_size):
    labels = labels_of(shape).astype(np.int32)
    path = write_labels(tmp_path / "labels.tif", labels, axes, pixel_size)
    image = read_image(path)
    assert image.axes == axes and image.path == path
    assert image.data.dtype == np.uint16
    np.testing.assert_array_equal(image.data, labels)
    assert image.pixel_size == pytest.approx(pixel_size, rel=1e-6)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE


def test_large_ids_are_written_as_uint32_without_wrapping(tmp_path):
    labels = labels_of((3, 20, 30)).astype(np.int64) * 2000  # max id 100000
    path = write_labels(tmp_path / "big.tif", labels, "ZYX", {"X": 0.2, "Y": 0.2, "Z": 1.5})
    image = read_image(path)
    assert image.data.dtype == np.uint32 and image.data.max() == 100_000
    np.testing.assert_array_equal(image.data, labels)
    assert image.axes == "ZYX" and image.pixel_size == pytest.approx({"X": 0.2, "Y": 0.2, "Z": 1.5})


def test_labels_beyond_classic_tiff_size_go_to_bigtiff(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "CLASSIC_TIFF_BYTES", 100)
    labels = labels_of((2, 20, 30))
    path = write_labels(tmp_path / "huge.tif", labels, "ZYX", {"X": 0.5, "Y": 0.5})
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff and tif.is_ome
    image = read_image(path)
    assert image.data.dtype == np.uint16 and image.axes == "ZYX" and image.pixel_size == {"X": 0.5, "Y": 0.5}
    np.testing.assert_array_equal(image.data, labels)


def test_unusual_axis_order_is_stored_in_imagej_order(tmp_path):
    labels = labels_of((3, 2, 10, 12))
    image = read_image(write_labels(tmp_path / "zt.tif", labels, "ZTYX"))
    assert image.axes == "TZYX"
    np.testing.assert_array_equal(image.data, labels.transpose(1, 0, 2, 3))


def test_bool_labels_and_lone_pixel_size(tmp_path):
    image = read_image(write_labels(tmp_path / "mask.tif", np.eye(8, dtype=bool), pixel_size={"x": 0.5}))
    assert image.data.dtype == np.uint16 and image.data.sum() == 8
    assert image.pixel_size == pytest.approx({"X": 0.5, "Y": 0.5})


@pytest.mark.parametrize(
    "labels, axes, name, match",
    [
        (np.array([[0, -1]]), "YX", "a.tif", "negative"),
        (np.zeros((4, 4), np.float32), "YX", "a.tif", "integers"),
        (np.array([[0, 2**33]]), "YX", "a.tif", "uint32"),
        (np.zeros((4, 4), np.uint8), "ZYX", "a.tif", "axes"),
        (np.zeros((4, 4), np.uint8), "YX", "a.png", "a.tif"),
    ],
)
def test_bad_labels_are_rejected_before_writing(tmp_path, labels, axes, name, match):
    with pytest.raises(ValueError, match=match):
        write_labels(tmp_path / name, labels, axes)
    assert not list(tmp_path.iterdir())


def _fail_midway(path, *args, **kwargs):
    with open(path, "wb") as handle:
        handle.write(b"II*\x00partial")
    raise OSError("disk full")


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    monkeypatch.setattr(tifffile, "imwrite", _fail_midway)
    with pytest.raises(OSError, match="disk full"):
        write_labels(tmp_path / "new.tif", np.ones((4, 4), np.uint8))
    assert not list(tmp_path.iterdir())

    old = tmp_path / "old.tif"
    old.write_bytes(b"previous result")
    with pytest.raises(OSError, match="disk full"):
        write_labels(old, np.ones((4, 4), np.uint8))
    assert old.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["old.tif"]


def test_atomic_path_for_any_writer(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp.name.startswith(".")
        tmp.write_text("a,b\n")
    assert target.read_text() == "a,b\n"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "a,b\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    with pytest.raises(FileNotFoundError, match="does not exist"), atomic_path(tmp_path / "no" / "x.tif"):
        pass


def test_png_8_and_16_bit_grey_rgb_rgba(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "grey8.png": rng.integers(0, 255, (20, 30), dtype=np.uint8),
        "grey16.png": rng.integers(0, 65535, (20, 30), dtype=np.uint16),
        "rgb.png": rng.integers(0, 255, (20, 30, 3), dtype=np.uint8),
        "rgba.png": rng.integers(0, 255, (20, 30, 4), dtype=np.uint8),
        "rgb.bmp": rng.integers(0, 255, (20, 30, 3), dtype=np.uint8),
    }
    for name, array in arrays.items():
        Image.fromarray(array).save(tmp_path / name)
        image = read_image(tmp_path / name)
        assert image.axes == ("YX" if array.ndim == 2 else "YXC")
        assert image.data.dtype == array.dtype and image.data.flags.writeable
        np.testing.assert_array_equal(image.data, array)
        assert image.pixel_size == {}, "BMP's default 96 dpi is not a microscope calibration"


def test_jpeg_and_png_resolution(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 32), (24, 1)).astype(np.uint8)
    Image.fromarray(np.dstack([smooth] * 3)).save(tmp_path / "photo.jpg", quality=95)
    image = read_image(tmp_path / "photo.jpg")
    assert image.axes == "YXC" and image.data.shape == (24, 32, 3)
    assert np.abs(image.data.astype(int) - smooth[..., None]).max() < 8
    Image.fromarray(smooth).save(tmp_path / "calibrated.png", dpi=(25400 / 0.5, 25400 / 0.5))
    assert read_image(tmp_path / "calibrated.png").pixel_size == pytest.approx({"X": 0.5, "Y": 0.5}, rel=1e-3)


def test_tiff_pixel_size_from_imagej_ome_and_resolution_tags(tmp_path):
    data = np.zeros((4, 16, 16), np.uint16)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "spacing": 3.0, "unit": "micron"})
    assert read_image(tmp_path / "ij.tif").pixel_size == pytest.approx({"X": 0.5, "Y": 0.5, "Z": 3.0})
    tifffile.imwrite(tmp_path / "ome.tif", data, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 250, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 0.25, "PhysicalSizeZ": 1})
    assert read_image(tmp_path / "ome.tif").pixel_size == pytest.approx({"X": 0.25, "Y": 0.25, "Z": 1.0})
    tifffile.imwrite(tmp_path / "cm.tif", data[0], resolution=(40000, 40000), resolutionunit="CENTIMETER")
    assert read_image(tmp_path / "cm.tif").pixel_size == pytest.approx({"X": 0.25, "Y": 0.25})
    tifffile.imwrite(tmp_path / "screen.tif", data[0], resolution=(72, 72), resolutionunit="INCH")
    assert read_image(tmp_path / "screen.tif").pixel_size == {}


def test_tiff_axes_from_tifffile_letters(tmp_path):
    tifffile.imwrite(tmp_path / "rgbstack.tif", np.zeros((5, 16, 16, 3), np.uint8), photometric="rgb")
    assert read_image(tmp_path / "rgbstack.tif").axes == "ZYXC"  # tifffile says QYXS
    tifffile.imwrite(tmp_path / "hyper.tif", np.zeros((2, 4, 2, 16, 16), np.uint16), imagej=True,
                     metadata={"axes": "TZCYX"})
    image = read_image(tmp_path / "hyper.tif")
    assert image.axes == "TZCYX" and image.data.shape == (2, 4, 2, 16, 16)


def test_read_errors_name_the_file_and_the_fix(tmp_path):
    folder = tmp_path / "folder.tif"
    folder.mkdir()
    (tmp_path / "empty.png").touch()
    (tmp_path / "scan.czi").write_bytes(b"CZI")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    cases = {
        "missing.tif": "no such file",
        "folder.tif": "is a folder",
        "empty.png": "empty",
        "scan.czi": r"unsupported extension '\.czi'.*\.tif, \.tiff, \.png, \.jpg, \.jpeg, \.bmp",
        "broken.tif": "could not be read",
        "broken.png": "could not be read",
    }
    for name, match in cases.items():
        with pytest.raises(ImageReadError, match=match) as caught:
            read_image(tmp_path / name)
        assert name in str(caught.value) and isinstance(caught.value, ValueError)


def test_unit_spellings():
    assert io._unit_um("\\u00B5m") == io._unit_um("µm") == io._unit_um("micron") == 1.0
    assert io._unit_um("nm") == 1e-3 and io._unit_um("pixel") is None

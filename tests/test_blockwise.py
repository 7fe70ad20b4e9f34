"""Lazy inputs (dask, zarr, TIFF via zarr, OME-Zarr), results written block by block into zarr,
and a dask.distributed LocalCluster: all equal to the in-memory, single-process results."""

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from skimage.draw import disk

from napari_unet_maskrcnn import api, cli
from napari_unet_maskrcnn.core.io import read_image
from napari_unet_maskrcnn.core.models import maskrcnn
from napari_unet_maskrcnn.core.testing import ReadRecorder, blob_detections, make_tiny_model_file
from napari_unet_maskrcnn.core.zarr_io import label_array_path, labels_zarr

TILE = dict(tile=64, overlap=16)


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory):
    return make_tiny_model_file(tmp_path_factory.mktemp("m") / "unet.safetensors", arch="unet")


@pytest.fixture(scope="module")
def maskrcnn_file(tmp_path_factory):
    return make_tiny_model_file(tmp_path_factory.mktemp("m") / "mrcnn.safetensors", arch="maskrcnn")


@pytest.fixture
def blobs(monkeypatch):
    """Bright discs of several sizes in 3 slices; the detector finds each blob (stand-in for Mask R-CNN)."""
    monkeypatch.setattr(maskrcnn, "detect", lambda network, image, **kw: blob_detections(image, score=None))
    rng = np.random.default_rng(1)
    image = np.zeros((3, 170, 150), np.float32)
    for z in range(3):
        for centre in rng.integers(0, 160, (25, 2)):
            image[z][disk(tuple(centre + z), rng.integers(4, 12), shape=image.shape[1:])] = rng.uniform(0.6, 1.0)
    return image


@pytest.fixture
def grey():
    return np.random.default_rng(0).integers(0, 4000, (2, 150, 130)).astype(np.uint16)


def test_lazy_inputs_equal_numpy(unet_file, grey, tmp_path):
    expected = api.segment_semantic(grey, unet_file, axes="ZYX", **TILE).classes
    stored = zarr.open_array(tmp_path / "in.zarr", mode="w", shape=grey.shape, chunks=(1, 64, 64), dtype=grey.dtype)
    stored[:] = grey
    tifffile.imwrite(tmp_path / "in.tif", grey, tile=(64, 64), metadata={"axes": "ZYX"})
    lazy_tiff = read_image(tmp_path / "in.tif", lazy=True)
    assert type(lazy_tiff.data).__module__.startswith("dask") and lazy_tiff.axes == "ZYX"
    for image in (da.from_array(grey, chunks=(1, 50, 50)), stored, lazy_tiff.data, str(tmp_path / "in.tif")):
        assert np.array_equal(api.segment_semantic(image, unet_file, axes="ZYX", **TILE).classes, expected)


@pytest.mark.parametrize("axes", ["YX", "YXC"])
def test_a_one_chunk_dask_plane_is_read_by_windows(unet_file, axes):
    """A plane stored as one dask chunk (a napari multiscale level, ``da.from_array(memmap)``)
    is never read whole, though the canonical view transposes it and splits its channels."""
    image = np.random.default_rng(0).integers(0, 4000, (1100, 1000)).astype(np.uint16)
    image = image[..., None] if axes == "YXC" else image
    source = ReadRecorder(image)
    lazy = da.from_array(source, chunks=image.shape, asarray=True)
    options = dict(axes=axes, channel=0 if axes == "YXC" else None, tile=256, overlap=32)

    classes = api.segment_semantic(lazy, unet_file, **options).classes

    assert np.array_equal(classes, api.segment_semantic(image, unet_file, **options).classes)
    assert 0 < source.largest <= image.size // 2


def test_tiff_through_zarr_reads_only_what_a_window_needs(tmp_path):
    from napari_unet_maskrcnn.core.arrays import TiffZarrArray

    image = np.arange(256 * 256, dtype=np.uint16).reshape(256, 256)
    tifffile.imwrite(tmp_path / "t.tif", image, tile=(64, 64))
    lazy = TiffZarrArray(tmp_path / "t.tif")
    assert lazy.chunks == (64, 64)
    assert np.array_equal(lazy[70:90, 130:200], image[70:90, 130:200])
    import pickle

    assert np.array_equal(pickle.loads(pickle.dumps(lazy))[:5, :5], image[:5, :5])


@pytest.mark.parametrize("block", [40, 4096])
def test_semantic_to_zarr_equals_in_memory(unet_file, grey, tmp_path, block):
    expected = api.segment_semantic(grey, unet_file, axes="ZYX", **TILE).classes
    result = api.segment_semantic(grey, unet_file, axes="ZYX", out=tmp_path / "o.zarr", block=block, **TILE)
    assert isinstance(result.classes, zarr.Array) and result.axes == "ZYX"
    assert np.array_equal(result.classes[:], expected)
    assert [p.name for p in tmp_path.iterdir()] == ["o.zarr"]  # no temporary folder left


@pytest.mark.parametrize("block", [50, 4096])
def test_instances_to_zarr_equal_in_memory(maskrcnn_file, blobs, tmp_path, block):
    options = dict(axes="ZYX", tile=64, margin=16, min_size=5)
    expected = api.segment_instances(blobs, maskrcnn_file, **options)
    assert expected.labels.max() > 30  # objects cross block and tile seams
    out = zarr.open_array(tmp_path / "o.zarr", mode="w", shape=blobs.shape, chunks=(1, 64, 64), dtype="uint32")
    result = api.segment_instances(blobs, maskrcnn_file, out=out, block=block, **options)
    assert np.array_equal(out[:], expected.labels)
    assert list(result.table) == list(expected.table)
    for column, values in expected.table.items():
        if values.dtype.kind == "f":
            np.testing.assert_allclose(result.table[column], values)
        else:
            assert np.array_equal(result.table[column], values), column


def test_cancel_leaves_no_folder(unet_file, grey, tmp_path):
    with pytest.raises(api.Cancelled):
        api.segment_semantic(grey, unet_file, axes="ZYX", out=tmp_path / "o.zarr", block=40,
                             should_cancel=lambda: True, **TILE)
    assert list(tmp_path.iterdir()) == []


def test_local_cluster_of_two_workers_equals_single_process(unet_file, maskrcnn_file, blobs, grey):
    from dask.distributed import Client, LocalCluster

    semantic = api.segment_semantic(grey, unet_file, axes="ZYX", **TILE).classes
    options = dict(axes="ZYX", tile=64, margin=16, min_size=5)
    instances = api.segment_instances(blobs, maskrcnn_file, **options).labels
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        events = []
        on_cluster = api.segment_semantic(grey, unet_file, axes="ZYX", client=client, block=40,
                                          on_progress=events.append, **TILE)
        assert np.array_equal(on_cluster.classes, semantic)
        assert events[-1].done == events[-1].total > 1
        labels = api.segment_instances(blobs, maskrcnn_file, client=client, block=50, **options).labels
        assert np.array_equal(labels, instances)


def test_cli_zarr_output_beside_an_ome_zarr_image(unet_file, grey, tmp_path):
    image = tmp_path / "cells.zarr"
    with labels_zarr(image, grey.shape, "ZYX", dtype="uint16", pixel_size={"X": 0.5, "Y": 0.5, "Z": 2.0}) as array:
        array[:] = grey  # an OME-Zarr image (labels_zarr writes NGFF multiscales)
    opened = read_image(image)
    assert opened.axes == "ZYX" and opened.pixel_size == {"X": 0.5, "Y": 0.5, "Z": 2.0}
    out = tmp_path / "out"
    code = cli.main(["segment", str(image), "--model", str(unet_file), "--output", str(out), "--tile", "64",
                     "--output-format", "zarr", "--block", "40", "--quiet"])
    assert code == 0
    group = zarr.open_group(out / "cells.zarr", mode="r")
    assert dict(group["labels"].attrs)["ome"]["labels"] == ["classes"]
    labels = read_image(out / "cells.zarr" / "labels" / "classes")
    assert labels.axes == "ZYX" and labels.pixel_size == {"X": 0.5, "Y": 0.5, "Z": 2.0}
    expected = api.segment_semantic(grey, unet_file, axes="ZYX", tile=64).classes
    assert np.array_equal(labels.data.compute(), expected)
    assert sorted(p.name for p in out.iterdir()) == ["cells.zarr"]


def test_block_runs_estimate_the_object_diameter_on_a_central_window(blobs, tmp_path, monkeypatch):
    from napari_unet_maskrcnn.core import size_estimator

    def plane_dependent(source):  # a sure estimate in the trained range that differs from plane to plane
        return size_estimator.SizeEstimate(14.0 + 4.0 * float(size_estimator.grey_window(source).mean()), 0.1)

    monkeypatch.setattr(size_estimator, "estimate_diameter", plane_dependent)
    model = make_tiny_model_file(tmp_path / "m16.safetensors", arch="maskrcnn", object_diameter_px=16.0)
    options = dict(axes="ZYX", tile=64, margin=16, min_size=5)
    expected = api.segment_instances(blobs, model, **options)
    assert expected.scale == 1.0 and expected.diameter  # in the trained range: native scale

    result = api.segment_instances(blobs, model, out=tmp_path / "o.zarr", block=50, **options)

    assert np.array_equal(result.labels[:], expected.labels)
    assert result.object_size["mode"] == "auto" and result.scale == 1.0
    middle_plane = expected.object_size["planes"][1]  # block runs estimate on the middle plane's central window
    assert result.diameter == pytest.approx(middle_plane["diameter"], rel=1e-6)


def test_block_runs_refuse_an_estimated_diameter_that_needs_resizing(blobs, tmp_path, monkeypatch):
    from napari_unet_maskrcnn.core import size_estimator

    monkeypatch.setattr(size_estimator, "estimate_diameter", lambda source: size_estimator.SizeEstimate(16.0, 0.1))
    model = make_tiny_model_file(tmp_path / "m80.safetensors", arch="maskrcnn", object_diameter_px=80.0)
    with pytest.raises(ValueError, match="Resize the image by"):
        api.segment_instances(blobs, model, axes="ZYX", tile=64, margin=16, min_size=5, out=tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()
    result = api.segment_instances(blobs, model, axes="ZYX", tile=64, margin=16, min_size=5, diameter=0,
                                   out=tmp_path / "o.zarr")
    assert result.object_size["mode"] == "off" and result.labels[:].max() > 0


CLIENT_ONLY_SCRIPT = """
import sys, numpy as np
from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core.executor import local_client

if __name__ == "__main__":
    grey = np.load(sys.argv[1])
    with local_client(2) as client:
        preloaded = client.run(lambda: "torch" in sys.modules)  # before any task ran
        result = api.segment_semantic(grey, sys.argv[2], axes="ZYX", tile=64, overlap=16, client=client,
                                      block=40, out=sys.argv[3])
        assert result.object_size["mode"] == "auto", result.object_size
        client.cluster.close()
    print(sorted(preloaded.values()), "torch" in sys.modules)
"""


def test_a_cluster_run_never_loads_torch_in_the_client(unet_file, grey, tmp_path):
    """The client reads only the model's spec; the network (and the automatic diameter's estimate)
    runs on the workers, so the client of a large run stays a few hundred MB. The local workers
    are forked from a server that imported torch once (shared pages), the client never does."""
    import subprocess
    import sys

    model = make_tiny_model_file(tmp_path / "d12.safetensors", arch="unet", object_diameter_px=12.0)
    np.save(tmp_path / "grey.npy", grey)
    script = tmp_path / "client_only.py"  # a file, so the forked workers can import __main__ safely
    script.write_text(CLIENT_ONLY_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "grey.npy"), str(model),
                           str(tmp_path / "out.zarr")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[True, True] False"
    expected = api.segment_semantic(grey, model, axes="ZYX", **TILE)
    written = zarr.open_array(label_array_path(tmp_path / "out.zarr", False), mode="r")
    assert np.array_equal(written[:], expected.classes)


def test_ctrl_c_on_local_workers_cancels_their_work_and_writes_nothing(unet_file, grey, tmp_path, monkeypatch):
    """Ctrl-C during a ``--workers`` run: the pending block tasks are cancelled on the cluster,
    the command exits 130 and the output folder holds no partial zarr."""
    import tqdm
    from dask.distributed import Client

    tifffile.imwrite(tmp_path / "cells.tif", grey, metadata={"axes": "ZYX"})
    cancelled = []
    real_cancel = Client.cancel

    def spy_cancel(self, futures, *args, **kwargs):
        cancelled.extend(futures)
        return real_cancel(self, futures, *args, **kwargs)

    def ctrl_c(self, *args, **kwargs):  # the progress bar's refresh after the first finished block
        if self.n >= 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Client, "cancel", spy_cancel)
    monkeypatch.setattr(tqdm.tqdm, "refresh", ctrl_c)
    out = tmp_path / "out"
    code = cli.main(["segment", str(tmp_path / "cells.tif"), "--model", str(unet_file), "--output", str(out),
                     "--tile", "64", "--output-format", "zarr", "--block", "40", "--workers", "2", "--diameter", "0"])
    assert code == 130
    assert len(cancelled) > 1  # blocks not yet computed were withdrawn from the workers
    assert not out.exists() or list(out.iterdir()) == []

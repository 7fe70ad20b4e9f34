"""Hostile inputs and careless calls: each gives its documented exit code or error, a message that
names the path or option, and leaves every file that existed before byte-identical (issue 19)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_unet_maskrcnn import api, cli
from napari_unet_maskrcnn.cli.errors import EXIT_CLASH, EXIT_FAILED, EXIT_INTERNAL, EXIT_OS, EXIT_USAGE

TILE = ["--tile", "64", "--diameter", "0", "--quiet"]


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path (folders themselves are not files)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_untouched(before: dict[str, str], folder: Path) -> None:
    """Every file of ``before`` is still there with the same bytes."""
    after = snapshot(folder)
    assert {k: after.get(k) for k in before} == before


@pytest.fixture
def work(tmp_path):
    """A user's folder: an image, a previous result and an unrelated zarr folder with their files."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "work"
    folder.mkdir()
    tifffile.imwrite(folder / "img.tif", rng.integers(0, 4000, (64, 72)).astype(np.uint16))
    Image.fromarray(rng.integers(0, 255, (60, 70)).astype(np.uint8)).save(folder / "img.png")
    (folder / "notes.zarr").mkdir()
    (folder / "notes.zarr" / "mine.txt").write_text("my notes")
    return folder


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines and "Traceback" not in err, err
    return lines[0]


# -- outputs never replace what the run did not create ---------------------------------------------------------

def test_an_input_is_never_an_output(tiny_models, work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    before = snapshot(work)
    for extra in ([], ["--overwrite"]):
        code, err = run_cli(capsys, "segment", "img.tif", "--model", tiny_models["unet"], "--output", ".",
                            *TILE, *extra)
        assert code == EXIT_CLASH
        assert "img.tif" in one_line_error(err) and "also an input" in err
    assert snapshot(work) == before


def test_inputs_with_the_same_stem_are_an_error(tiny_models, work, tmp_path, capsys):
    before = snapshot(work)
    code, err = run_cli(capsys, "segment", work / "img.tif", work / "img.png", "--model", tiny_models["unet"],
                        "--output", tmp_path / "out", *TILE)
    assert code == EXIT_CLASH and "would both be written" in one_line_error(err)
    assert snapshot(work) == before and not (tmp_path / "out").exists()


def test_existing_results_are_replaced_only_with_overwrite(tiny_models, work, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["segment", work / "img.tif", "--model", tiny_models["maskrcnn"], "--output", out, *TILE]
    assert run_cli(capsys, *args)[0] == 0
    (out / "img.tif").write_bytes(b"corrected by hand")
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, *args)
    assert code == EXIT_CLASH and "--overwrite" in one_line_error(err) and "img.tif" in err
    assert snapshot(tmp_path) == before
    assert run_cli(capsys, *args, "--overwrite")[0] == 0
    assert tifffile.imread(out / "img.tif").shape == (64, 72)


def test_zarr_output_never_replaces_a_foreign_folder(tiny_models, work, capsys):
    (work / "img.zarr").mkdir()
    (work / "img.zarr" / "data.bin").write_bytes(b"\x00\x01")
    before = snapshot(work)
    for extra in ([], ["--overwrite"]):
        code, err = run_cli(capsys, "segment", work / "img.png", "--model", tiny_models["unet"], "--output", work,
                            "--output-format", "zarr", *TILE, *extra)
        assert code == EXIT_CLASH and "never replaced" in one_line_error(err)
    assert snapshot(work) == before


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
def test_labels_beside_an_ome_zarr_input_add_only_labels(tiny_models, tmp_path, capsys, ngff):
    from test_reader_writer import _ome_zarr_image

    from napari_unet_maskrcnn.core.io import read_image

    image = tmp_path / "cells.zarr"
    _ome_zarr_image(image, np.random.default_rng(1).integers(0, 255, (2, 64, 64)).astype(np.uint8), ngff=ngff)
    before = snapshot(tmp_path)
    args = ["segment", image, "--model", tiny_models["unet"], "--output", tmp_path, "--output-format", "zarr",
            "--block", "64", *TILE]
    code, err = run_cli(capsys, *args)
    assert code == 0, err
    after = snapshot(tmp_path)
    assert {k: after[k] for k in before} == before  # the image's arrays and metadata: unchanged
    assert all(k.startswith("cells.zarr/labels/") for k in set(after) - set(before))
    labels = read_image(image / "labels" / "classes")
    assert labels.data.shape == (2, 64, 64)
    from napari_unet_maskrcnn.core.zarr_io import zarr_contents

    assert [c.name for c in zarr_contents(image)] == ["cells", "cells classes"]
    code, err = run_cli(capsys, *args)  # again: the labels exist now
    assert code == EXIT_CLASH and "cells.zarr/labels/classes" in one_line_error(err)
    assert run_cli(capsys, *args, "--overwrite")[0] == 0
    assert {k: snapshot(tmp_path)[k] for k in before} == before


def test_api_out_refuses_foreign_folders_and_asks_before_replacing(tiny_models, work):
    from napari_unet_maskrcnn.core.output_paths import OutputClash

    image = np.random.default_rng(2).random((64, 64), np.float32)
    before = snapshot(work)
    with pytest.raises(OutputClash, match="never replaced"):
        api.segment_semantic(image, tiny_models["unet"], tile=64, diameter=0, out=work / "notes.zarr",
                             overwrite=True)
    assert snapshot(work) == before
    out = work / "result.zarr"
    api.segment_semantic(image, tiny_models["unet"], tile=64, diameter=0, out=out)
    with pytest.raises(OutputClash, match="overwrite"):
        api.segment_semantic(image, tiny_models["unet"], tile=64, diameter=0, out=out)
    api.segment_semantic(image, tiny_models["unet"], tile=64, diameter=0, out=out, overwrite=True)
    assert snapshot(work)["notes.zarr/mine.txt"] == before["notes.zarr/mine.txt"]


def test_measure_output_may_not_be_an_input_or_the_summary(work, tmp_path, capsys):
    labels = tmp_path / "labels.tif"
    tifffile.imwrite(labels, np.pad(np.ones((8, 8), np.uint16), 10))
    before = snapshot(tmp_path)
    for argv in (["--output", labels], ["--output", tmp_path / "o.csv", "--summary", labels],
                 ["--output", tmp_path / "o.csv", "--summary", tmp_path / "o.csv"]):
        code, err = run_cli(capsys, "measure", "--instances", labels, *argv, "--overwrite")
        assert code == EXIT_CLASH, err
        assert "labels.tif" in one_line_error(err) or "o.csv" in err
    assert snapshot(tmp_path) == before
    assert run_cli(capsys, "measure", "--instances", labels, "--output", tmp_path / "o.csv")[0] == 0
    code, err = run_cli(capsys, "measure", "--instances", labels, "--output", tmp_path / "o.csv")
    assert code == EXIT_CLASH and "--overwrite" in err


def test_train_never_replaces_a_model_file(tiny_models, tmp_path, capsys):
    model = tmp_path / "mine.safetensors"
    model.write_bytes(Path(tiny_models["unet"]).read_bytes())
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, "train", "--arch", "unet", "--images", tmp_path / "none", "--labels",
                        tmp_path / "none", "--output", model, "--epochs", "1")
    assert code == EXIT_CLASH and "mine.safetensors" in one_line_error(err)
    assert snapshot(tmp_path) == before


def test_output_under_a_file_is_refused(tiny_models, work, capsys):
    before = snapshot(work)
    code, err = run_cli(capsys, "segment", work / "img.png", "--model", tiny_models["unet"], "--output",
                        work / "img.tif" / "sub", *TILE)
    assert code in (EXIT_USAGE, EXIT_CLASH) and "img.tif" in one_line_error(err)
    assert snapshot(work) == before


def test_napari_writer_never_replaces_an_image(work):
    from napari_unet_maskrcnn.core.output_paths import OutputClash
    from napari_unet_maskrcnn.napari_plugin.writer import write_labels

    tifffile.imwrite(work / "raw.tif", np.random.default_rng(3).random((16, 16), np.float32))
    before = snapshot(work)
    with pytest.raises(OutputClash, match="not a label image"):
        write_labels(str(work / "raw.tif"), np.ones((16, 16), np.uint16), {})
    assert snapshot(work) == before
    write_labels(str(work / "labels.tif"), np.ones((16, 16), np.uint16), {})
    write_labels(str(work / "labels.tif"), np.zeros((16, 16), np.uint16), {})  # a label image: saved again
    assert tifffile.imread(work / "labels.tif").max() == 0


# -- options are checked by name before any work ------------------------------------------------------------

@pytest.mark.parametrize("option", [
    ["--min-size", "-10"], ["--z-link-iou", "7"], ["--block", "0"], ["--tile", "3"], ["--channel", "-1"],
    ["--workers", "-1"], ["--workers", "100000"], ["--score-threshold", "0.5"], ["--z-link-iou", "nan"],
])
def test_bad_options_are_named_before_the_model_loads(tiny_models, work, tmp_path, capsys, monkeypatch, option):
    from napari_unet_maskrcnn.core import blockwise

    monkeypatch.setattr(blockwise.NetworkRun, "load", lambda self: pytest.fail("the model was loaded"))
    before = snapshot(work)
    code, err = run_cli(capsys, "segment", work / "img.png", "--model", tiny_models["unet"],
                        "--output", tmp_path / "out", *TILE, *option)
    assert code == EXIT_USAGE and option[0] in one_line_error(err)
    assert snapshot(work) == before and not (tmp_path / "out").exists()


def test_a_diameter_outside_the_models_range_is_refused(tmp_path, work, capsys):
    from napari_unet_maskrcnn.core.testing import make_tiny_model_file

    model = make_tiny_model_file(tmp_path / "d20.safetensors", "unet", object_diameter_px=20.0)
    code, err = run_cli(capsys, "segment", work / "img.png", "--model", model, "--output", tmp_path / "out",
                        *TILE, "--diameter", "1e9")
    assert code == EXIT_USAGE and "between 2 and 200" in one_line_error(err)


def test_u_net_options_with_a_mask_rcnn_are_an_error(tiny_models, work, tmp_path, capsys):
    code, err = run_cli(capsys, "segment", work / "img.png", "--model", tiny_models["maskrcnn"], "--output",
                        tmp_path / "out", "--probabilities", *TILE)
    assert code == EXIT_USAGE and "--return-probabilities" in one_line_error(err)  # the deprecated spelling still works


def test_an_unreachable_scheduler_is_one_line_within_ten_seconds(tiny_models, work, tmp_path):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "napari_unet_maskrcnn.cli", "segment", str(work / "img.png"), "--model",
         str(tiny_models["unet"]), "--output", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9",
         *TILE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "tcp://127.0.0.1:9" in one_line_error(done.stderr)
    assert time.monotonic() - started < 40  # 10 s of connection attempts + interpreter start
    assert not (tmp_path / "out").exists()


# -- bad files: one message, no traceback -------------------------------------------------------------------

def _huge_header_tiff(path: Path) -> Path:
    tifffile.imwrite(path, np.zeros((100, 100), np.uint8))
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(100000)
        tif.pages[0].tags["ImageLength"].overwrite(100000)
    return path


def test_a_tiff_header_claiming_huge_planes_is_refused(tiny_models, tmp_path, capsys):
    from napari_unet_maskrcnn.core.io import ImageReadError, read_image

    image = _huge_header_tiff(tmp_path / "huge.tif")
    for lazy in (False, True):
        with pytest.raises(ImageReadError, match="100000 x 100000"):
            read_image(image, lazy=lazy)
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, "segment", image, "--model", tiny_models["unet"], "--output", tmp_path / "out",
                        *TILE)
    assert code == EXIT_FAILED and "huge.tif" in one_line_error(err) and "corrupt" in err
    assert snapshot(tmp_path) == before


def test_ome_zarr_metadata_without_datasets(tiny_models, tmp_path, capsys):
    import zarr

    group = zarr.open_group(tmp_path / "bad.zarr", mode="w", zarr_format=2)
    group.attrs["multiscales"] = [{"version": "0.4", "axes": ["y", "x"]}]
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, "segment", tmp_path / "bad.zarr", "--model", tiny_models["unet"],
                        "--output", tmp_path / "out", *TILE)
    assert code == EXIT_FAILED and "malformed OME-Zarr" in one_line_error(err)
    assert snapshot(tmp_path) == before


def test_fractional_label_values_are_refused(tmp_path, capsys):
    labels = tmp_path / "labels.tif"
    tifffile.imwrite(labels, np.full((20, 20), 0.5, np.float32))
    code, err = run_cli(capsys, "measure", "--instances", labels, "--output", tmp_path / "o.csv")
    assert code == EXIT_USAGE and "fractional" in one_line_error(err)
    (tmp_path / "gt").mkdir(), (tmp_path / "pred").mkdir()
    tifffile.imwrite(tmp_path / "gt" / "a.tif", np.ones((20, 20), np.uint16))
    tifffile.imwrite(tmp_path / "pred" / "a.tif", np.full((20, 20), 1.5, np.float32))
    code, err = run_cli(capsys, "evaluate", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred")
    assert code == EXIT_USAGE and "fractional" in one_line_error(err)


@pytest.mark.parametrize("errno_name, words", [("ENOSPC", "disk is full"), ("EROFS", "read-only"),
                                               ("EACCES", "permissions")])
def test_os_errors_while_writing_are_one_line(tiny_models, work, tmp_path, capsys, monkeypatch, errno_name, words):
    import errno
    import os

    from napari_unet_maskrcnn.core import io

    def refuse(src, dst):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), str(dst))

    monkeypatch.setattr(io.os, "replace", refuse)
    code, err = run_cli(capsys, "segment", work / "img.png", "--model", tiny_models["unet"], "--output",
                        tmp_path / "out", *TILE)
    assert code == EXIT_FAILED and words in one_line_error(err) and "img.tif" in err
    assert not (tmp_path / "out").exists()  # the folder it created is removed again


def test_an_os_error_outside_an_input_is_exit_4(tmp_path, capsys, monkeypatch):
    import errno

    import importlib

    cli_main = importlib.import_module("napari_unet_maskrcnn.cli.main")

    def fail(args):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(cli_main, "run_evaluate", fail)
    code, err = run_cli(capsys, "evaluate", "--gt", tmp_path, "--pred", tmp_path)
    assert code == EXIT_OS and str(tmp_path / "x") in one_line_error(err)


def test_an_unexpected_error_is_one_line_with_exit_5(tmp_path, capsys, monkeypatch):
    import importlib

    cli_main = importlib.import_module("napari_unet_maskrcnn.cli.main")

    monkeypatch.setattr(cli_main, "run_evaluate", lambda args: {}["missing"])
    code, err = run_cli(capsys, "evaluate", "--gt", tmp_path, "--pred", tmp_path)
    assert code == EXIT_INTERNAL and "UNET_MASKRCNN_TRACEBACK" in one_line_error(err)


# -- API parameters -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, words", [
    (dict(tile="abc"), "tile must be a whole number"),
    (dict(diameter="big"), "diameter must be a number"),
    (dict(min_size=-10), "min_size"),
    (dict(z_link_iou=7), "z_link_iou"),
    (dict(block=0), "block"),
    (dict(precision="fp64"), "precision"),
    (dict(channel=1.5), "channel"),
])
def test_api_parameters_are_named(tiny_models, call, words):
    image = np.zeros((64, 64), np.float32)
    with pytest.raises((ValueError, TypeError), match=words):
        api.segment_semantic(image, tiny_models["unet"], **call)


def test_api_image_kinds(tiny_models):
    import torch

    with pytest.raises(TypeError, match="torch.Tensor.*numpy"):
        api.segment_semantic(torch.zeros(64, 64), tiny_models["unet"])
    with pytest.raises(ValueError, match="axes='YXC'"):
        api.segment_semantic(np.zeros((64, 64, 2), np.float32), tiny_models["unet"])
    result = api.segment_semantic(np.zeros((64, 64, 2), np.float32), tiny_models["unet"], axes="YXC",
                                  channel=0, tile=64)
    assert result.classes.shape == (64, 64)


def test_api_refuses_results_larger_than_memory(tiny_models, monkeypatch):
    import dask.array as da

    from napari_unet_maskrcnn.core import io

    monkeypatch.setattr(io, "available_memory", lambda: 2**30)
    huge = da.zeros((100_000, 100_000), np.uint8, chunks=4096)
    with pytest.raises(ValueError, match="GiB.*out="):
        api.segment_instances(huge, tiny_models["maskrcnn"])


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

_BAD_NUMBERS = st.one_of(st.text(max_size=4), st.just(float("nan")), st.just(float("inf")), st.booleans(),
                         st.floats(max_value=-1e-3), st.lists(st.integers(), max_size=2))


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["tile", "overlap", "score_threshold", "mask_threshold", "nms_iou", "min_size",
                             "z_link_iou", "block", "pixel_size_um", "channel"]),
       value=_BAD_NUMBERS)
def test_any_bad_number_is_named_before_the_model_loads(tiny_models, name, value):
    """Property: whatever wrong value a numeric parameter gets, the error names it and no model is loaded."""
    from napari_unet_maskrcnn.core.blockwise import NetworkRun

    original = NetworkRun.load
    NetworkRun.load = lambda self: (_ for _ in ()).throw(AssertionError("the model was loaded"))
    try:
        call = api.segment_instances if name in ("score_threshold", "mask_threshold", "nms_iou") else \
            api.segment_semantic
        model = tiny_models["maskrcnn" if call is api.segment_instances else "unet"]
        with pytest.raises((ValueError, TypeError)) as raised:
            call(np.zeros((64, 64), np.float32), model, **{name: value})
        assert name in str(raised.value)
    finally:
        NetworkRun.load = original


@settings(max_examples=25, deadline=None)
@given(data=st.binary(min_size=1, max_size=400), suffix=st.sampled_from([".tif", ".png", ".jpg"]))
def test_garbage_files_give_one_message_and_change_nothing(tiny_models, tmp_path_factory, data, suffix):
    """Property: random bytes named like an image end in one error line (exit 1) and nothing is written."""
    folder = tmp_path_factory.mktemp("garbage")
    path = folder / f"junk{suffix}"
    path.write_bytes(data)
    before = snapshot(folder)
    done = _run_main(["segment", str(path), "--model", str(tiny_models["unet"]), "--output", str(folder / "out"),
                      *TILE])
    assert done[0] == EXIT_FAILED and "junk" in one_line_error(done[1])
    assert snapshot(folder) == before and not (folder / "out").exists()


def _run_main(argv):
    """``(exit code, stderr)`` of cli.main without pytest's capsys (usable inside hypothesis tests)."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, err.getvalue()


def test_train_refuses_tiny_pairs_and_fractional_labels(tmp_path, capsys):
    for name, image, labels, words in (("dot", np.ones((1, 1), np.uint16), np.ones((1, 1), np.uint16), "1 x 1"),
                                       ("frac", np.ones((32, 32), np.uint16), np.full((32, 32), 0.5, np.float32),
                                        "fractional")):
        images, label_dir = tmp_path / name / "images", tmp_path / name / "labels"
        images.mkdir(parents=True), label_dir.mkdir()
        tifffile.imwrite(images / "a.tif", image)
        tifffile.imwrite(label_dir / "a.tif", labels)
        before = snapshot(tmp_path)
        code, err = run_cli(capsys, "train", "--arch", "unet", "--images", images, "--labels", label_dir,
                            "--output", tmp_path / name / "m.safetensors", "--epochs", "1")
        assert code == EXIT_USAGE and words in one_line_error(err)
        assert snapshot(tmp_path) == before


def test_api_measure_refuses_fractional_labels():
    with pytest.raises(ValueError, match="labels has fractional values"):
        api.measure_objects(np.full((8, 8), 0.25))

"""The unet-maskrcnn command line: listing, batch segmentation, bad input without partial files."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_unet_maskrcnn import cli
from napari_unet_maskrcnn.core.testing import make_tiny_model_file


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "unet": make_tiny_model_file(folder / "unet.safetensors", arch="unet"),
        "maskrcnn": make_tiny_model_file(folder / "mrcnn.safetensors", arch="maskrcnn"),
    }


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "stack.tif", rng.integers(0, 4000, (3, 64, 72)).astype(np.uint16),
                     imagej=True, metadata={"axes": "ZYX"})
    Image.fromarray(rng.integers(0, 255, (60, 70, 3)).astype(np.uint8)).save(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 255, (60, 70)).astype(np.uint8)).save(folder / "grey.jpg")
    return folder


def test_models_lists_bundled_and_given(models, capsys):
    assert cli.main(["models", "--model", str(models["maskrcnn"])]) == 0
    out = capsys.readouterr().out
    for name in ("maskrcnn-nuclei", "unet-nuclei", "maskrcnn-phasecells", "unet-phasecells"):
        assert name in out
    assert "mrcnn" in out and "instances" in out and "background, nucleus, boundary" in out


def test_segment_writes_one_label_file_per_input(models, inputs, tmp_path):
    out = tmp_path / "out"
    files = [str(inputs / name) for name in ("stack.tif", "rgb.png", "grey.jpg")]
    code = cli.main(["segment", *files, "--model", str(models["unet"]), "--output", str(out),
                     "--tile", "64", "--channel", "0", "--quiet"])
    assert code == 0
    assert tifffile.imread(out / "stack.tif").shape == (3, 64, 72)
    assert tifffile.imread(out / "rgb.tif").shape == (60, 70)
    assert tifffile.imread(out / "grey.tif").dtype == np.uint16


def test_instances_write_labels_and_table(models, inputs, tmp_path):
    out = tmp_path / "out"
    code = cli.main(["segment", str(inputs / "stack.tif"), "--model", str(models["maskrcnn"]),
                     "--output", str(out), "--tile", "64", "--score-threshold", "0", "--quiet"])
    assert code == 0
    labels = tifffile.imread(out / "stack.tif")
    assert labels.shape == (3, 64, 72) and labels.dtype == np.uint16
    header = (out / "stack.csv").read_text().splitlines()[0]
    assert header.startswith("label,class_id,class_name,score,area")


def test_bad_inputs_fail_cleanly_without_partial_files(models, inputs, tmp_path, capsys):
    (inputs / "broken.tif").write_bytes(b"II*\x00garbage")
    out = tmp_path / "out"
    code = cli.main(["segment", str(inputs / "broken.tif"), str(inputs / "missing.tif"),
                     str(inputs / "grey.jpg"), "--model", str(models["unet"]), "--output", str(out),
                     "--tile", "64", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0
    assert "broken.tif" in err and "missing.tif" in err
    assert sorted(p.name for p in out.iterdir()) == ["grey.tif"]


def test_bad_model_and_axes_give_clear_errors(models, inputs, tmp_path, capsys):
    assert cli.main(["segment", str(inputs / "grey.jpg"), "--model", "no-such-model",
                     "--output", str(tmp_path / "o")]) != 0
    assert "Unknown model 'no-such-model'" in capsys.readouterr().err
    assert cli.main(["segment", str(inputs / "stack.tif"), "--model", str(models["unet"]),
                     "--output", str(tmp_path / "o"), "--axes", "YX", "--quiet"]) != 0
    assert "axes" in capsys.readouterr().err
    assert not list((tmp_path / "o").glob("*.tif"))


def test_console_script_runs(models):
    done = subprocess.run([sys.executable, "-m", "napari_unet_maskrcnn.cli", "models"],
                          capture_output=True, text=True, check=True)
    assert "unet-nuclei" in done.stdout


def test_evaluate_matches_files_by_stem_and_sums_counts(tmp_path, capsys):
    import json

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    a = np.zeros((8, 8), np.uint16)
    a[0:4, 0:4] = 1
    a[5:8, 5:8] = 2
    tifffile.imwrite(gt / "a.tif", a)
    tifffile.imwrite(pred / "a.tif", a)              # 2 TP
    b = np.zeros((8, 8), np.uint16)
    b[0:2, 0:2] = 1
    tifffile.imwrite(gt / "b.tif", b)
    tifffile.imwrite(pred / "b.tif", np.zeros_like(b))  # 1 FN
    assert cli.main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    first = report["thresholds"][0]
    assert report["images"] == 2 and first["thresh"] == 0.5
    assert (first["tp"], first["fp"], first["fn"]) == (2, 0, 1)
    assert first["accuracy"] == pytest.approx(2 / 3)

    (gt / "c.tif").write_bytes((gt / "b.tif").read_bytes())
    assert cli.main(["evaluate", "--gt", str(gt), "--pred", str(pred)]) == 2
    assert "no prediction" in capsys.readouterr().err


def test_evaluate_semantic(tmp_path, capsys):
    import json

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    tifffile.imwrite(gt / "x.tif", np.array([[1, 1], [2, 2]], np.uint8))
    tifffile.imwrite(pred / "x.tif", np.array([[1, 2], [2, 2]], np.uint8))
    assert cli.main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--semantic",
                     "--ignore-label", "0", "--json"]) == 0
    rows = {row["class"]: row for row in json.loads(capsys.readouterr().out)["classes"]}
    assert rows[1]["iou"] == pytest.approx(0.5) and rows[2]["iou"] == pytest.approx(2 / 3)


def test_split_instances_from_a_semantic_model(models, inputs, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["segment", str(inputs / "stack.tif"), "--model", str(models["unet"]),
                     "--output", str(out), "--tile", "64", "--split-instances", "--quiet"]) == 0
    labels = tifffile.imread(out / "stack.tif")
    assert labels.shape == (3, 64, 72) and labels.dtype == np.uint16


def test_inputs_that_cannot_give_objects_are_warned_about(models, tmp_path, capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    tifffile.imwrite(folder / "dot.tif", np.ones((1, 1), np.uint16))
    tifffile.imwrite(folder / "nan.tif", np.full((32, 32), np.nan, np.float32))
    tifffile.imwrite(folder / "five.tif", np.zeros((2, 2, 2, 32, 32), np.uint8))  # no axes stated
    out = tmp_path / "out"
    for name in ("dot.tif", "nan.tif", "five.tif"):
        cli.main(["segment", str(folder / name), "--model", str(models["unet"]), "--output", str(out),
                  "--tile", "64", "--quiet"])
    err = capsys.readouterr().err
    assert "dot.tif: the image is only 1 x 1 pixels" in err
    assert "nan.tif: every pixel is NaN" in err
    assert "five.tif: the file does not say which dimension is which; guessed TZCYX" in err


def test_a_failed_run_leaves_no_empty_output_folder(models, inputs, tmp_path, capsys):
    (inputs / "broken.tif").write_bytes(b"II*\x00garbage")
    out = tmp_path / "new" / "out"
    code = cli.main(["segment", str(inputs / "broken.tif"), "--model", str(models["unet"]),
                     "--output", str(out), "--quiet"])
    assert code != 0 and not (tmp_path / "new").exists()


def test_evaluate_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    for i in range(3):
        labels = np.zeros((16, 16), np.uint16)
        labels[2:8, 2:8] = 1
        tifffile.imwrite(gt / f"{i}.tif", labels)
        tifffile.imwrite(pred / f"{i}.tif", labels)
    command = (f"{sys.executable} -m napari_unet_maskrcnn.cli evaluate --gt {gt} --pred {pred} --json"
               " | true")  # the reader exits before the first line, as `head` does after its last
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def test_segment_prints_the_object_size_per_input(inputs, tmp_path, capsys):
    sized = make_tiny_model_file(tmp_path / "sized.safetensors", arch="unet", object_diameter_px=12)
    out = tmp_path / "out"
    base = ["segment", str(inputs / "grey.jpg"), "--model", str(sized), "--output", str(out), "--tile", "64"]
    assert cli.main([*base, "--diameter", "24"]) == 0
    err = capsys.readouterr().err
    assert "grey.jpg: Object diameter 24.0 px (given), model trained on 12.0 px, image resized x0.5" in err
    assert tifffile.imread(out / "grey.tif").shape == (60, 70)
    assert cli.main([*base, "--overwrite"]) == 0  # automatic: the estimate (or why there is none) is printed
    assert "grey.jpg: Object diameter" in capsys.readouterr().err
    assert cli.main([*base, "--diameter", "0", "--overwrite"]) == 0
    assert "grey.jpg: Object diameter off, model trained on 12.0 px, native scale" in capsys.readouterr().err

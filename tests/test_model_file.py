"""The self-describing model file: round trips, fp16 storage, clear errors, atomic writes."""

import json

import pytest
import torch

from napari_unet_maskrcnn.core import model_file
from napari_unet_maskrcnn.core.model_file import (
    ModelFileError,
    ModelSpec,
    build_network,
    load_model_file,
    read_spec,
    save_model,
)


def tiny_spec(**changes):
    values = dict(
        arch="unet",
        config={"depth": 2, "base_width": 8},
        class_names=["background", "nucleus", "boundary"],
        in_channels=1,
        pixel_size_um=0.65,
        provenance={"training_data": "synthetic", "metrics": {"iou": 0.5}},
        defaults={"tile": 256},
    )
    values.update(changes)
    return ModelSpec(**values)


def test_round_trip_keeps_spec_and_weights(tmp_path):
    spec = tiny_spec()
    torch.manual_seed(0)
    network = build_network(spec)
    path = save_model(tmp_path / "m.safetensors", network, spec)

    loaded_spec, loaded = load_model_file(path)

    assert loaded_spec == spec
    assert loaded_spec.task == "semantic"
    assert not loaded.training
    for key, value in network.state_dict().items():
        restored = loaded.state_dict()[key]
        assert restored.dtype == value.dtype
        if value.is_floating_point():
            torch.testing.assert_close(restored, value, atol=1e-3, rtol=1e-3)
        else:
            assert torch.equal(restored, value)


def test_half_storage_halves_the_file(tmp_path):
    spec = tiny_spec()
    network = build_network(spec)
    half = save_model(tmp_path / "half.safetensors", network, spec, half=True).stat().st_size
    full = save_model(tmp_path / "full.safetensors", network, spec, half=False).stat().st_size
    assert half < 0.6 * full


def test_read_spec_does_not_need_weights(tmp_path):
    spec = tiny_spec()
    path = save_model(tmp_path / "m.safetensors", build_network(spec), spec)
    assert read_spec(path).class_names == spec.class_names


@pytest.mark.parametrize(
    "make_file, expected",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "folder"),
        (lambda p: p.write_text("hello, not a model"), "not a readable model file"),
        (lambda p: torch.save({"weights": torch.zeros(3)}, p), "not a readable model file"),
    ],
    ids=["missing", "folder", "text", "pickle"],
)
def test_bad_files_name_the_file(tmp_path, make_file, expected):
    path = tmp_path / "bad.safetensors"
    make_file(path)
    with pytest.raises(ModelFileError, match=expected) as info:
        load_model_file(path)
    assert str(path) in str(info.value)


def test_truncated_file_is_reported(tmp_path):
    spec = tiny_spec()
    path = save_model(tmp_path / "m.safetensors", build_network(spec), spec)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated") as info:
        load_model_file(path)
    assert "m.safetensors" in str(info.value)


def test_foreign_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match="not written by napari-unet-maskrcnn"):
        read_spec(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    from safetensors.torch import save_file

    small = build_network(tiny_spec())
    wrong = tiny_spec(config={"depth": 3, "base_width": 8})
    path = tmp_path / "mismatch.safetensors"
    save_file(dict(small.state_dict()), str(path), metadata={model_file.SPEC_KEY: wrong.to_json()})
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model_file(path)


def test_newer_format_and_unknown_arch(tmp_path):
    data = json.loads(tiny_spec().to_json())
    with pytest.raises(ModelFileError, match="newer"):
        ModelSpec.from_json(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ModelFileError, match="unknown architecture"):
        ModelSpec.from_json(json.dumps({**data, "arch": "vit"}))
    with pytest.raises(ModelFileError, match="lacks"):
        ModelSpec.from_json(json.dumps({"arch": "unet"}))


def test_save_is_atomic(tmp_path, monkeypatch):
    spec = tiny_spec()
    network = build_network(spec)
    path = save_model(tmp_path / "m.safetensors", network, spec)
    before = path.read_bytes()

    import safetensors.torch

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, network, spec)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_maskrcnn_spec_builds_with_background_class(tmp_path):
    spec = ModelSpec(arch="maskrcnn", config={"backbone": "resnet18", "fpn_channels": 32},
                     class_names=["nucleus"], in_channels=1)
    network = build_network(spec)
    assert spec.task == "instances"
    assert network.roi_heads.box_predictor.cls_score.out_features == 2


def test_saved_file_follows_the_umask(tmp_path):
    import os

    spec = tiny_spec()
    old = os.umask(0o022)
    try:
        path = save_model(tmp_path / "m.safetensors", build_network(spec), spec)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644

"""Model registry: bundled names, the user folder, registered files, the load cache."""

import os

import pytest

from napari_unet_maskrcnn.core import registry
from napari_unet_maskrcnn.core.model_file import ModelFileError
from napari_unet_maskrcnn.core.testing import make_tiny_model_file


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user_models"
    monkeypatch.setenv("NAPARI_UNET_MASKRCNN_MODELS", str(folder))
    monkeypatch.setattr(registry, "_registered", {})
    registry.clear_cache()
    return folder


def test_bundled_names_are_listed_with_task_and_classes():
    infos = {info.name: info for info in registry.list_models()}
    assert {"maskrcnn-nuclei", "unet-nuclei", "maskrcnn-phasecells", "unet-phasecells"} <= set(infos)
    assert infos["unet-nuclei"].task == "semantic"
    assert infos["unet-nuclei"].class_names == ("background", "nucleus", "boundary")
    assert infos["maskrcnn-phasecells"].task == "instances"
    assert all(info.bundled for name, info in infos.items() if name in registry.BUNDLED)


def test_models_in_the_user_folder_appear_at_once(user_dir):
    assert not any(info.name == "mine" for info in registry.list_models())
    make_tiny_model_file(user_dir / "mine.safetensors", arch="maskrcnn")
    (user_dir / "broken.safetensors").write_text("junk")
    infos = {info.name: info for info in registry.list_models()}
    assert infos["mine"].task == "instances" and infos["mine"].available
    assert "broken" not in infos
    assert registry.resolve_model("mine") == user_dir / "mine.safetensors"


def test_register_model_file(tmp_path):
    path = make_tiny_model_file(tmp_path / "elsewhere.safetensors")
    info = registry.register_model_file(path)
    assert info.path == path.resolve() and info.task == "semantic"
    assert any(i.path == path.resolve() for i in registry.list_models())
    with pytest.raises(ModelFileError):
        registry.register_model_file(tmp_path / "missing.safetensors")


def test_unknown_name_lists_the_choices(tmp_path):
    make_tiny_model_file(tmp_path / "user_models" / "known.safetensors")
    with pytest.raises(ValueError, match="Unknown model 'nope'.*known"):
        registry.resolve_model("nope")


def test_uninstalled_bundled_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path / "empty")
    with pytest.raises(ModelFileError, match="not installed"):
        registry.resolve_model("unet-nuclei")


def test_load_is_cached_and_reloads_a_changed_file(tmp_path):
    path = make_tiny_model_file(tmp_path / "m.safetensors")
    first = registry.load_model(path, "cpu")
    assert registry.load_model(str(path), "cpu")[1] is first[1]
    make_tiny_model_file(path, seed=1)
    os.utime(path, ns=(1, 10**18))
    assert registry.load_model(path, "cpu")[1] is not first[1]

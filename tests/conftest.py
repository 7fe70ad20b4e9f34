"""Shared test set-up: tiny model files, an isolated user model folder, a display check.

Widget tests need a real X display with OpenGL (napari's canvas does not work on Qt's
``offscreen`` platform): run them with ``scripts/setup_and_test.sh``, which starts Xvfb.
"""

from __future__ import annotations

import os
import sys

import pytest

GUI_FIXTURES = {"make_napari_viewer", "qtbot", "qapp"}

if sys.platform.startswith("linux"):
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail GUI tests early, with the fix, when there is no display (Qt would abort)."""
    needs_display = GUI_FIXTURES & set(getattr(item, "fixturenames", ()))
    if needs_display and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        pytest.fail(
            "No X display: run the tests with scripts/setup_and_test.sh "
            "(or `xvfb-run -a python -m pytest`).",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Tiny untrained model files: ``unet`` and ``maskrcnn`` (1 channel), ``unet-rgb``."""
    from napari_unet_maskrcnn.core.testing import make_tiny_model_file

    folder = tmp_path_factory.mktemp("models")
    return {
        "unet": make_tiny_model_file(folder / "tiny-unet.safetensors", "unet"),
        "maskrcnn": make_tiny_model_file(folder / "tiny-maskrcnn.safetensors", "maskrcnn"),
        "unet-rgb": make_tiny_model_file(folder / "tiny-unet-rgb.safetensors", "unet", in_channels=3),
    }


@pytest.fixture
def user_model_folder(tmp_path, monkeypatch):
    """An empty user model folder, so the models installed on this machine do not leak in."""
    folder = tmp_path / "user-models"
    monkeypatch.setenv("NAPARI_UNET_MASKRCNN_MODELS", str(folder))
    return folder


@pytest.fixture
def viewer(make_napari_viewer, user_model_folder):
    """A napari viewer (shown, so its OpenGL canvas really draws) and no user models."""
    return make_napari_viewer(show=True)


@pytest.fixture
def dock(viewer):
    """Dock one of the plugin's widgets, by display name, through the installed manifest."""

    def dock_widget(display_name: str):
        _, widget = viewer.window.add_plugin_dock_widget("napari-unet-maskrcnn", display_name)
        return widget

    return dock_widget


@pytest.fixture
def load_model(monkeypatch):
    """Click a widget's "Load model file…" and answer the file dialog with ``path``."""
    from napari_unet_maskrcnn.napari_plugin import model_chooser as _model_chooser

    def load(widget, path) -> None:
        monkeypatch.setattr(_model_chooser, "ask_model_file", lambda parent=None: str(path))
        widget.model.load_button.native.click()

    return load


@pytest.fixture
def run_widget(qtbot):
    """Click a widget's Run (Evaluate, Measure) button and wait until its worker has finished."""

    def run(widget, timeout_ms: int = 120_000) -> None:
        widget.runner.run_button.native.click()
        qtbot.waitUntil(lambda: not widget.runner.running, timeout=timeout_ms)

    return run


@pytest.fixture
def new_notifications():
    """A function returning the messages napari showed since the test started."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [record.message for record in notification_manager.records[start:]]


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from more threads and lose much to thread contention on a busy CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def slow_calls(monkeypatch):
    """Make ``module.name`` (e.g. the per-plane step of a core generator) take 50 ms; returns its call log.

    A run over many planes then lasts long enough to be cancelled in the middle.
    """
    import time

    def slow_down(module, name: str, seconds: float = 0.05) -> list:
        calls = []
        original = getattr(module, name)

        def slow(*args, **kwargs):
            calls.append(1)
            time.sleep(seconds)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, slow)
        return calls

    return slow_down

"""How runs behave in napari: cancel, responsiveness, errors, and never losing manual edits."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
from qtpy.QtCore import QTimer

WIDGET = "U-Net segmentation"


def large_image(side: int = 2048) -> np.ndarray:
    """A noisy uint16 image that takes the tiny U-Net many tiles (a long run)."""
    return np.random.default_rng(0).integers(100, 4000, (side, side), dtype=np.uint16)


def start_long_run(viewer, dock, load_model, tiny_models, qtbot):
    """Add a large image, start the U-Net on it with small tiles, wait for the first tile."""
    viewer.add_image(large_image(), name="large")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    widget._options["tile"].value = 192
    widget.run_button.native.click()
    assert widget.running and not widget.run_button.enabled and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: widget.status.value.startswith("tile"), timeout=60_000)
    return widget


def test_cancel_stops_the_run_and_adds_nothing(viewer, dock, load_model, tiny_models, qtbot):
    widget = start_long_run(viewer, dock, load_model, tiny_models, qtbot)

    widget.cancel_button.native.click()
    cancelled_at = time.monotonic()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)

    assert time.monotonic() - cancelled_at < 10  # within a tile or so, not the 256-tile run
    assert [layer.name for layer in viewer.layers] == ["large"]
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.status.value.startswith("Cancelled")


def test_the_viewer_stays_responsive_during_a_run(viewer, dock, load_model, tiny_models, qtbot):
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    widget = start_long_run(viewer, dock, load_model, tiny_models, qtbot)
    ticks.clear()

    qtbot.wait(3000)
    timer.stop()
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)

    gaps = np.diff(ticks)
    assert len(ticks) > 30
    assert gaps.max() < 0.5, f"the event loop stalled for {gaps.max():.2f} s"


def test_rerun_replaces_an_untouched_result(viewer, dock, load_model, run_widget, tiny_models):
    (image,) = viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    run_widget(widget)
    first = viewer.layers["nuclei 2D · tiny-unet"]

    run_widget(widget)

    assert [layer.name for layer in viewer.layers] == ["nuclei 2D", "nuclei 2D · tiny-unet"]
    assert viewer.layers["nuclei 2D · tiny-unet"] is first


def test_rerun_never_overwrites_painted_labels(viewer, dock, load_model, run_widget, tiny_models):
    viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    run_widget(widget)
    edited = viewer.layers["nuclei 2D · tiny-unet"]
    edited.paint((100, 100), 7)  # the tiny model has classes 0-2 only: surely a change
    corrected = edited.data.copy()

    run_widget(widget)

    assert [layer.name for layer in viewer.layers] == [
        "nuclei 2D", "nuclei 2D · tiny-unet", "nuclei 2D · tiny-unet [1]"
    ]
    np.testing.assert_array_equal(edited.data, corrected)

    run_widget(widget)  # the new, untouched result is the one replaced from now on
    assert len(viewer.layers) == 3
    np.testing.assert_array_equal(edited.data, corrected)


def test_rerun_never_overwrites_labels_changed_in_place(viewer, dock, load_model, run_widget, tiny_models):
    viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    run_widget(widget)
    edited = viewer.layers["nuclei 2D · tiny-unet"]
    edited.data[:10, :10] = 7  # e.g. from the console or another plugin: no paint event
    corrected = edited.data.copy()

    run_widget(widget)

    assert len(viewer.layers) == 3
    np.testing.assert_array_equal(edited.data, corrected)


def test_a_broken_model_file_is_reported(viewer, dock, load_model, tmp_path, new_notifications):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"this is not a model")
    widget = dock(WIDGET)
    before = widget.model.combo.choices

    load_model(widget, broken)

    assert widget.model.combo.choices == before
    assert any("broken.safetensors" in message for message in new_notifications())


def test_a_failing_run_is_reported_and_adds_nothing(
    viewer, dock, load_model, run_widget, tiny_models, new_notifications
):
    five_channels = np.random.default_rng(1).random((5, 64, 64)).astype(np.float32)
    viewer.add_image(five_channels, name="stack", metadata={"axes": "CYX"})
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    assert not widget.channel.native.isHidden() and widget.channel.value is None

    run_widget(widget)  # a 1-channel model cannot take 5 channels at once

    assert [layer.name for layer in viewer.layers] == ["stack"]
    (message,) = new_notifications()  # exactly one notification, saying what to do
    assert "choose which one to segment" in message
    assert widget.run_button.enabled and widget.status.value.startswith("Failed")

    widget.channel.value = 3
    run_widget(widget)
    assert viewer.layers["stack · tiny-unet"].data.shape == (64, 64)


def test_running_without_a_model_explains_what_to_do(viewer, dock, new_notifications, monkeypatch):
    from napari_unet_maskrcnn import api

    monkeypatch.setattr(api, "list_models", lambda: [])
    viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    widget = dock(WIDGET)
    assert widget.model.value is None

    widget.run_button.native.click()

    assert not widget.running
    assert any("Load model file" in message for message in new_notifications())


def test_closing_napari_during_a_run_stops_it(viewer, dock, load_model, tiny_models, qtbot):
    widget = start_long_run(viewer, dock, load_model, tiny_models, qtbot)
    worker = widget.runner._worker

    viewer.close()

    qtbot.waitUntil(lambda: not worker.is_running, timeout=30_000)


def test_torchvision_loads_after_napari_opened_its_opengl_canvas():
    """Mesa's LLVM (OpenGL canvas) and triton's LLVM (torchvision -> torch._dynamo) can clash.

    Runs in a fresh process, the order a user meets: canvas first, widget, then the run's
    torchvision import; a crash would be a segmentation fault, so it cannot be in-process.
    """
    assert os.environ.get("DISPLAY"), "run under Xvfb: scripts/setup_and_test.sh"
    script = (
        "import napari\n"
        "viewer = napari.Viewer(show=True)\n"
        "viewer.window.add_plugin_dock_widget('napari-unet-maskrcnn', 'Mask R-CNN instances')\n"
        "import torchvision.ops\n"
        "viewer.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_different_model_never_replaces_another_models_result(viewer, dock, load_model, run_widget,
                                                                 tiny_models, tmp_path):
    """Layer names carry the model; a second model's run adds its own layer beside the first."""
    import shutil

    viewer.open_sample("napari-unet-maskrcnn", "nuclei-2d")
    widget = dock(WIDGET)
    load_model(widget, tiny_models["unet"])
    run_widget(widget)
    first = viewer.layers["nuclei 2D · tiny-unet"]
    other = shutil.copy(tiny_models["unet"], tmp_path / "other-unet.safetensors")
    load_model(widget, other)
    assert widget.model.value == "other-unet"

    run_widget(widget)

    assert [layer.name for layer in viewer.layers] == ["nuclei 2D", "nuclei 2D · tiny-unet", "nuclei 2D · other-unet"]
    assert viewer.layers["nuclei 2D · tiny-unet"] is first

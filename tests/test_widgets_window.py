"""The napari window as a user meets it: current Qt binding, all five docks fit the screen."""

from __future__ import annotations

import subprocess
import sys

import pytest

PLUGIN = "napari-unet-maskrcnn"
WIDGETS = ("U-Net segmentation", "Mask R-CNN instances", "Evaluate segmentation", "Measure objects",
           "Train model")


def test_napari_starts_on_a_current_qt_without_a_deprecation_warning():
    """A fresh process opens a shown viewer; napari notifies nothing about the Qt binding."""
    code = (
        "import napari, qtpy\n"
        "from napari.utils.notifications import notification_manager\n"
        "viewer = napari.Viewer(show=True)\n"
        "from qtpy.QtWidgets import QApplication\n"
        "QApplication.processEvents()\n"
        "print('API', qtpy.API_NAME)\n"
        "for record in notification_manager.records:\n"
        "    print('NOTE', record.message)\n"
        "viewer.close()\n"
    )
    result = subprocess.run([sys.executable, "-W", "error::DeprecationWarning:napari", "-c", code],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "API PyQt6" in result.stdout or "API PySide6" in result.stdout, result.stdout
    notes = [line for line in result.stdout.splitlines() if line.startswith("NOTE")]
    assert not [note for note in notes if "deprecat" in note.lower()], notes


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_all_five_docks_fit_the_screen(viewer, qtbot, size):
    """All five widgets docked (as the Plugins menu docks them): the window keeps the screen's size."""
    window = viewer.window._qt_window
    for name in WIDGETS:
        viewer.window.add_plugin_dock_widget(PLUGIN, name)
    width, height = size
    window.resize(width, height)
    qtbot.wait(50)
    assert window.minimumSizeHint().height() <= height
    assert window.frameGeometry().height() <= height, window.frameGeometry()
    assert window.frameGeometry().width() <= width, window.frameGeometry()


def test_the_launch_script_docks_all_five_as_tabs(viewer, qtbot):
    """scripts/launch_napari.py's docking: five tabs in one area, the window fits 1366x768."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "launch_napari.py"
    spec = importlib.util.spec_from_file_location("launch_napari", path)
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    viewer.open_sample(PLUGIN, "nuclei-2d")
    docks = launch.dock_all(viewer)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    qtbot.wait(50)
    assert len(docks) == len(WIDGETS)
    assert all(window.tabifiedDockWidgets(docks[0]).count(dock) == 1 for dock in docks[1:])
    assert window.frameGeometry().height() <= 768


def test_wrapped_status_lines_are_never_squeezed(viewer, qtbot):
    """A long status line in a short dock keeps the height its wrapped text needs (the dock scrolls)."""
    from qtpy.QtWidgets import QLabel

    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, name)[1] for name in ("Measure objects", "Train model")]
    window = viewer.window._qt_window
    window.resize(1366, 500)
    message = ("Measured 1234 objects in 'a layer with a rather long name'; 3 regions: stroma, epithelium "
               "and lumen. Export the tables as CSV with the buttons below.")
    import pandas as pd

    docks[0].summary.show_frame(pd.DataFrame({"region": ["stroma", "epithelium", "lumen"], "count": [1, 2, 3],
                                              "density": [1e-3, 2e-3, 3e-4]}))
    for widget in docks:
        widget.runner.status.value = message
    qtbot.wait(100)
    checked = 0
    for widget in docks:
        for label in widget.native.findChildren(QLabel):
            if label.wordWrap() and label.isVisible() and label.text():
                assert label.height() >= label.heightForWidth(label.width()), (label.text(), label.height())
                checked += 1
    assert checked >= len(docks)

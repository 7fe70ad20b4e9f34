"""The napari window as a user meets it: a current Qt binding."""

from __future__ import annotations

import subprocess
import sys

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

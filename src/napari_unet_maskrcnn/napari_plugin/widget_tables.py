"""Result tables of the "Evaluate segmentation" and "Measure objects" widgets, and CSV export."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from magicgui.application import use_app
from magicgui.widgets import Container, PushButton, Table
from napari.layers import Layer
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QHeaderView

from ..core.io import atomic_path


def ask_csv_path(parent=None, caption: str = "Export CSV") -> str | None:
    """Ask where to save a CSV file; returns the path (with ``.csv`` added), or None when cancelled."""
    show_file_dialog = use_app().get_obj("show_file_dialog")
    path = show_file_dialog(mode="w", caption=caption, filter="CSV files (*.csv);;All files (*)", parent=parent)
    if not path:
        return None
    return path if Path(path).suffix else f"{path}.csv"


def export_csv(frame: pd.DataFrame, parent=None, caption: str = "Export CSV") -> Path | None:
    """Ask for a path and write ``frame`` there as CSV, atomically; tells the user the outcome."""
    path = ask_csv_path(parent, caption)
    if path is None:
        return None
    try:
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    except OSError as err:
        show_error(f"Could not save the table: {err}")
        return None
    show_info(f"Saved {len(frame)} rows to '{path}'.")
    return Path(path)


def display_value(value) -> str:
    """A table cell as text: 3 decimals (``0.085``), 3 significant digits below 0.01 (``0.00292``),
    whole numbers from 10⁴, blank for None / NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if abs(value) >= 1e4:
            return f"{value:.0f}"
        if 0 < abs(value) < 0.01:
            return f"{value:.{2 - math.floor(math.log10(abs(value)))}f}"
        return f"{value:.3f}"
    return str(value)


def display_column(column: pd.Series) -> pd.Series:
    """A table column as text: whole numbers without decimals when every number in it is whole
    (ids, counts, pixel areas), else :func:`display_value` per cell."""
    numbers = pd.to_numeric(column, errors="coerce")
    present = numbers.notna() | column.isna()
    whole = numbers.dropna()
    if present.all() and len(whole) and column.dtype != bool and (whole % 1 == 0).all():
        return numbers.map(lambda v: "" if math.isnan(v) else f"{v:.0f}")
    return column.map(display_value)


def class_names_of(layer: Layer | None) -> list[str] | None:
    """Class names from a class map layer's ``features`` (``class_name`` by ``index``), or None."""
    features = getattr(layer, "features", None)
    if features is None or "class_name" not in features:
        return None
    values = features["index"] if "index" in features else range(len(features))
    by_value = {int(v): str(name) for v, name in zip(values, features["class_name"])}
    return [by_value.get(k, f"class {k}") for k in range(max(by_value, default=-1) + 1)]


class ResultTable(Container):
    """A read-only table and an export button that saves it as CSV.

    ``frame`` holds the full-precision values (what the CSV gets); the table shows them rounded.
    """

    def __init__(self, export_text: str = "Export CSV…"):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.frame = pd.DataFrame()
        self.table = Table()
        self.table.read_only = True
        self.table.min_height = 180
        self.table.native.verticalHeader().setVisible(False)
        header = self.table.native.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)  # the user drags column edges
        header.setStretchLastSection(True)
        self.export_button = PushButton(text=export_text, enabled=False)
        self.extend([self.table, self.export_button])
        self.export_button.changed.connect(self.export)

    def show_frame(self, frame: pd.DataFrame) -> None:
        """Show ``frame`` (and keep it for export)."""
        self.frame = frame
        self.table.value = frame.apply(display_column)
        self.table.native.resizeColumnsToContents()
        self.export_button.enabled = True

    def clear(self) -> None:
        """Show nothing (e.g. after a failed run: no stale table under "Failed"); nothing to export."""
        self.frame = pd.DataFrame()
        self.table.clear()
        self.export_button.enabled = False

    def export(self) -> None:
        export_csv(self.frame, self.native, caption=self.export_button.text.rstrip("…"))

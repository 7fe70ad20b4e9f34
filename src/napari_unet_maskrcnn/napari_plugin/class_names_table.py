"""The Train widget's editable table of class names for painted class strokes: value -> name."""

from __future__ import annotations

from magicgui.widgets import Table


class ClassNamesTable(Table):
    """One row per painted value 1..K and an editable ``name`` column.

    Rows are refilled with :meth:`show_values`; names the user typed are kept while their
    value stays, the others come from the labels layers' ``features`` or are "class k".
    """

    def __init__(self, **kwargs):
        super().__init__(value={"data": [], "index": [], "columns": ["name"]}, **kwargs)
        self.min_height = 90
        self._offered: dict[int, str] = {}

    def show_values(self, count: int, suggested: dict[int, str]) -> None:
        """Rows for values 1..``count``, named by the user's edits, else ``suggested``, else "class k"."""
        edited = {value: name for value, name in self.names().items() if self._offered.get(value) != name}
        self._offered = {value: suggested.get(value, f"class {value}") for value in range(1, count + 1)}
        names = {**self._offered, **{v: n for v, n in edited.items() if v in self._offered}}
        self.value = {"data": [[names[v]] for v in self._offered], "index": [str(v) for v in self._offered],
                      "columns": ["name"]}

    def names(self) -> dict[int, str]:
        """Value -> name as shown (blank names left out)."""
        rows = self.data.to_list()
        return {int(value): str(row[0]).strip() for value, row in zip(self.row_headers, rows)
                if str(row[0]).strip()}

"""A DataTable that, given all its rows again, only rewrites the cells that changed."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text


class SteadyTable(DataTable):
    """Rows are set as a whole with ``set_rows``; unchanged cells are not repainted."""

    def __init__(self, *columns: str, id: str | None = None, classes: str | None = None,
                 cursor_type: str = "row") -> None:
        super().__init__(id=id, classes=classes, cursor_type=cursor_type)
        self._column_names = columns
        self._rows: dict[str, tuple[Cell, ...]] = {}

    def on_mount(self) -> None:
        self.add_columns(*self._column_names)

    def set_rows(self, rows: Sequence[tuple[str, tuple[Cell, ...]]]) -> None:
        """Show ``rows`` (key, cells), in order; rebuild only when the set of keys changed."""
        if [key for key, _ in rows] != list(self._rows):
            self.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
        else:
            for key, cells in rows:
                for column, old, new in zip(self.columns, self._rows[key], cells):
                    if old != new:
                        self.update_cell(key, column, new)
        self._rows = dict(rows)

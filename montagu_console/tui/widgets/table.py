"""A DataTable that, given all its rows again, only rewrites the cells that changed.

Every cell is shown as ``rich.text.Text``, never parsed as markup: a ``str`` cell (which
Textual's DataTable would read as console markup, so ``[/]`` in a barman hint raised and
``[link=...]`` made a link) is wrapped in ``Text`` here. Row keys are the rows' positions,
never data, so two rows that read the same (two barman checks whose names collide, a target
listed twice) are two rows, not a DuplicateKey crash.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CursorType

Cell = str | Text


def as_text(cell: Cell) -> Text:
    """``cell`` as plain ``Text`` (a ``str`` is never read as markup)."""
    return cell if isinstance(cell, Text) else Text(cell)


class SteadyTable(DataTable):
    """Rows are set as a whole with ``set_rows``; unchanged cells are not repainted."""

    def __init__(
        self, *columns: str, id: str | None = None, classes: str | None = None, cursor_type: CursorType = "row"
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type=cursor_type)
        self._column_names = columns
        self._rows: list[tuple[Text, ...]] = []

    def on_mount(self) -> None:
        self.add_columns(*(Text(name) for name in self._column_names))

    def set_rows(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Show ``rows`` (their cells), in order; rebuild only when the number of rows changed."""
        new = [tuple(as_text(cell) for cell in row) for row in rows]
        if len(new) != len(self._rows):
            self.clear()
            for index, cells in enumerate(new):
                self.add_row(*cells, key=str(index))
        else:
            for index, (old_cells, cells) in enumerate(zip(self._rows, new, strict=True)):
                for column, old, cell in zip(self.columns, old_cells, cells, strict=False):
                    if old != cell:
                        self.update_cell(str(index), column, cell)
        self._rows = new

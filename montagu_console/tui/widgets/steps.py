"""The steps of a run, one line each: icon and state word, elapsed time, number and name."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import ProgressBar, Static

from ..present_runs import StepRow, step_line
from .text import Line, show_if

STYLES = {"failed": "bold", "interrupted": "bold", "cancelled": "bold", "pending": "dim", "skipped": "dim"}


class StepList(Static):
    """Step lines (never markup); the current step in reverse video. Repaints only when a line changes."""

    DEFAULT_CSS = "StepList { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", markup=False, id=id, classes=classes)
        self._rows: list[StepRow] = []

    @property
    def rows(self) -> list[StepRow]:
        return self._rows

    def set(self, rows: list[StepRow]) -> None:
        """Show ``rows``; a no-op when they are what is shown."""
        if rows == self._rows:
            return
        layout = len(rows) != len(self._rows)
        self._rows = rows
        text = Text()
        for i, row in enumerate(rows):
            if i:
                text.append("\n")
            text.append(step_line(row), style="bold reverse" if row.current else STYLES.get(row.state, ""))
        self.update(text, layout=layout)


def show_progress(screen, progress) -> None:
    """Show a run's progress (a ProgressBar and a ``.progress-text`` line) on ``screen``."""
    bar = screen.query_one(ProgressBar)
    show_if(bar, progress.percent is not None)
    if progress.percent is not None and bar.progress != progress.percent:
        bar.update(progress=progress.percent)
    screen.query_one(".progress-text", Line).set(progress.text)
    show_if(screen.query_one(".run-progress"), bool(progress.text))

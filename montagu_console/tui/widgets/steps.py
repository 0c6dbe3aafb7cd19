"""The steps of a run, one line each: icon and state word, elapsed time, number and name."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from ..present_runs import ProgressView, StepRow, step_line
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


class ProgressRow(Horizontal):
    """A run's progress: a bar (hidden without a percentage) and a line of text beside it; the row
    hides when there is no text. It keeps the latest view and draws it once its parts are
    mounted, so a screen may show progress from its own ``on_mount``."""

    def __init__(self) -> None:
        super().__init__(classes="run-progress")
        self._view: ProgressView | None = None
        self._bar = ProgressBar(total=100, show_eta=False, show_percentage=False)
        self._text = Line("", classes="progress-text")

    def compose(self) -> ComposeResult:
        yield self._bar
        yield self._text

    def on_mount(self) -> None:
        self._draw()

    def show(self, view: ProgressView) -> None:
        self._view = view
        self._draw()

    def _draw(self) -> None:
        view = self._view
        if view is None:
            return
        show_if(self, bool(view.text))
        if not (self._bar.is_mounted and self._text.is_mounted):
            return  # its parts are still being mounted: on_mount draws the view
        show_if(self._bar, view.percent is not None)
        if view.percent is not None and self._bar.progress != view.percent:
            self._bar.update(progress=view.percent)
        self._text.set(view.text)

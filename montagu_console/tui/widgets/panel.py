"""One live panel of the main screen: status word and summary, facts, a trend, the data's age."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from ..present import PanelView
from .rows import InstanceRows
from .text import Line, StatusWord, word_class
from .trend import Trend


class PanelWidget(Vertical, can_focus=True):
    """A focusable panel; ``show`` repaints only the parts of the view that changed.

    The age of the data sits in the bottom border, the title (naming the host) in the top one.
    """

    def __init__(self, panel: str, title: str) -> None:
        super().__init__(id=f"panel-{panel}", classes="-unknown")
        self.panel = panel
        self.border_title = Text(title)  # a str would be read as markup; the title names a host
        self._view: PanelView | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="status-row"):
            yield StatusWord()
            yield Line("", classes="summary")
        yield InstanceRows()
        yield Line("", classes="facts")
        yield Line("", classes="more")
        with Horizontal(classes="trend-row"):
            yield Line("", classes="trend-label")
            yield Trend()

    def show(self, view: PanelView) -> None:
        """Bring the panel up to ``view``, touching only what differs from what it shows."""
        old = self._view
        if view == old:
            return
        self._view = view
        if old is None or old.word != view.word:
            self.remove_class(word_class(old.word) if old else "-unknown")
            self.add_class(word_class(view.word))
            self.query_one(StatusWord).set(view.word)
        if old is None or old.age != view.age:
            self.border_subtitle = Text(view.age)
        self.query_one(".summary", Line).set(view.summary)
        self.query_one(InstanceRows).set(view.rows)
        self.set_class(bool(view.rows), "-estate")
        self.query_one(".facts", Line).set("\n".join(view.lines))
        self.query_one(".more", Line).set("\n".join(view.more))
        row = self.query_one(".trend-row")
        if row.display != bool(view.trend):
            row.display = bool(view.trend)
        if view.trend:
            self.query_one(".trend-label", Line).set(view.trend_label)
            self.query_one(Trend).set(view.trend, view.trend_top)

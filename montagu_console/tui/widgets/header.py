"""The one-line header: overall status as a word, what this console watches, refresh time and period."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from .text import Line, StatusWord


class StatusHeader(Horizontal):
    """Status word, a title that is cut first when narrow, the refresh state and a READ-ONLY badge."""

    def compose(self) -> ComposeResult:
        yield StatusWord()
        yield Line("", classes="header-title")
        yield Line("", classes="header-when")
        yield Line("READ-ONLY", classes="header-badge")

    def show(self, word: str, title: str, when: str = "", *, read_only: bool = False) -> None:
        """Show ``word`` (OK, WARNING, ...), ``title`` and ``when``; repaint only what changed."""
        self.query_one(StatusWord).set(word)
        self.query_one(".header-title", Line).set(title)
        self.query_one(".header-when", Line).set(when)
        badge = self.query_one(".header-badge")
        if badge.display != read_only:
            badge.display = read_only

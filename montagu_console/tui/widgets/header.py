"""The one-line header: overall status as a word, what this console watches, refresh time and period."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from .text import Line, StatusWord


class StatusHeader(Horizontal):
    """Status word, a title that is cut first when narrow, the refresh state and a READ-ONLY badge."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._pending: tuple[str, str, str, bool] | None = None

    def compose(self) -> ComposeResult:
        yield StatusWord()
        yield Line("", classes="header-title")
        yield Line("", classes="header-when")
        yield Line("READ-ONLY", classes="header-badge")

    def on_mount(self) -> None:
        if self._pending is not None:
            word, title, when, read_only = self._pending
            self.show(word, title, when, read_only=read_only)

    def show(self, word: str, title: str, when: str = "", *, read_only: bool = False) -> None:
        """Show ``word`` (OK, WARNING, ...), ``title`` and ``when``; repaint only what changed.

        Called before the header has composed its parts (a screen's first show), it shows them on mount.
        """
        if not self.children:
            self._pending = (word, title, when, read_only)
            return
        self.query_one(StatusWord).set(word)
        self.query_one(".header-title", Line).set(title)
        self.query_one(".header-when", Line).set(when)
        badge = self.query_one(".header-badge")
        if badge.display != read_only:
            badge.display = read_only

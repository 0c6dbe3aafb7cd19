"""Text widgets that repaint only when what they show changes."""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Static


class Line(Static):
    """Plain text (never markup: it may hold remote output) that skips identical updates."""

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(text, markup=False, id=id, classes=classes)
        self._text = text

    @property
    def text(self) -> str:
        """The text shown."""
        return self._text

    def set(self, text: str) -> None:
        """Show ``text``; a no-op when it is already shown.

        A one-line text replaced by one of the same length keeps the widget's size, so only that
        line is repainted (a layout pass would repaint more of the screen, e.g. scrollbars).
        """
        if text != self._text:
            same_size = len(text) == len(self._text) <= self.content_region.width and "\n" not in text
            self._text = text
            self.update(text, layout=not same_size)


class StatusWord(Static):
    """A status as a WORD ("OK", "CRITICAL", "STALE"), coloured by the CSS class ``-<word>``."""

    def __init__(self, word: str = "UNKNOWN", *, id: str | None = None) -> None:
        super().__init__(word, markup=False, id=id, classes=f"-{word.lower()}")
        self._word = word

    @property
    def word(self) -> str:
        return self._word

    def set(self, word: str) -> None:
        """Show ``word``; a no-op when it is already shown."""
        if word != self._word:
            self.remove_class(f"-{self._word.lower()}")
            self._word = word
            self.add_class(f"-{word.lower()}")
            self.update(word)


def show_if(widget: Widget, shown: bool) -> None:
    """Show or hide ``widget``, touching it only when that changes (a change re-lays the screen out)."""
    if widget.display != shown:
        widget.display = shown

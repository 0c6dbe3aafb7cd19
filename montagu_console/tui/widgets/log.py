"""Log panes that take only ``rich.text.Text`` (remote text: never markup, never a raw string).

Text reaches them already clean (``montagu_console.text.clean`` at the boundary where it was
read: the transports, the probes, the run-log tailer); taking ``Text`` alone means no caller
can hand them a markup string, and a wrong type fails loudly in the tests instead of
rendering something the operator's terminal would interpret.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Log, RichLog


def _only_text(line: object) -> Text:
    if not isinstance(line, Text):
        raise TypeError(f"log panes take rich.text.Text, not {type(line).__name__}")
    return line


class TextLog(RichLog):
    """RichLog for plain lines, wrapped at the pane's current width."""

    def __init__(self, *, id: str | None = None, max_lines: int = 1000) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, max_lines=max_lines, min_width=20)

    def write_line(self, line: Text) -> None:
        """Append ``line``."""
        self.write(_only_text(line), width=self.scrollable_content_region.width or None)

    def replace_lines(self, lines: Iterable[Text]) -> None:
        """Show exactly ``lines``."""
        self.clear()
        for line in lines:
            self.write_line(line)


class RunLog(Log):
    """A run's live log: thousands of lines a second, so Textual's fast ``Log`` (which never reads
    markup), fed ``Text`` lines only; it shows their plain text."""

    def write_texts(self, lines: Iterable[Text]) -> None:
        """Append ``lines``."""
        self.write_lines([_only_text(line).plain for line in lines])

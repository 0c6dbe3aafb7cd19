"""A plain-text log pane that wraps long lines to its width (remote text: never markup)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog


class TextLog(RichLog):
    """RichLog for plain lines, wrapped at the pane's current width."""

    def __init__(self, *, id: str | None = None, max_lines: int = 1000) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, max_lines=max_lines, min_width=20)

    def write_line(self, line: str) -> None:
        """Append ``line``."""
        self.write(Text(line), width=self.scrollable_content_region.width or None)

    def replace_lines(self, lines: tuple[str, ...]) -> None:
        """Show exactly ``lines``."""
        self.clear()
        for line in lines:
            self.write_line(line)

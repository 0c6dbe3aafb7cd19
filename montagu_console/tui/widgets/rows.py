"""The barman instances of a panel, one row each: name, status word (coloured by the theme), what matters."""

from __future__ import annotations

import textwrap

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from ..present import InstanceRow
from .text import show_if, word_class

WORDS = ("ok", "warning", "critical", "unknown", "other")
WRAPPED_LINES = 2  # a row that is not OK may take this many lines: its reason matters


class InstanceRows(Widget):
    """Rows as ``rich.text.Text`` (instance summaries are host text: never markup). The word's colour
    comes from the theme through component classes, so a theme change repaints it; the word itself
    carries the meaning. A row that is not OK wraps its reason onto a second line, under itself.
    Hidden when there are no rows (one barman instance: the panel as before)."""

    COMPONENT_CLASSES = {f"instance-rows--{w}" for w in WORDS}  # noqa: RUF012 - typed so by Textual
    DEFAULT_CSS = "InstanceRows { height: auto; text-wrap: nowrap; text-overflow: ellipsis; display: none; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._rows: tuple[InstanceRow, ...] = ()

    @property
    def rows(self) -> tuple[InstanceRow, ...]:
        return self._rows

    @property
    def text(self) -> str:
        """The rows as plain text, one a line (unwrapped)."""
        return self.rows_text(10_000, styled=False).plain

    def set(self, rows: tuple[InstanceRow, ...]) -> None:
        """Show ``rows``; a no-op when they are what is shown."""
        if rows == self._rows:
            return
        layout = len(rows) != len(self._rows) or any(
            (a.word == "OK") != (b.word == "OK") or a.text != b.text for a, b in zip(rows, self._rows, strict=False)
        )
        self._rows = rows
        show_if(self, bool(rows))
        self.refresh(layout=layout)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.rows_text(width, styled=False).plain.splitlines())

    def render(self) -> Text:
        return self.rows_text(self.content_region.width or self.size.width, styled=True)

    def rows_text(self, width: int, *, styled: bool) -> Text:
        """The rows laid out for ``width`` columns."""
        name_width = max((len(r.name) for r in self._rows), default=0)
        word_width = max((len(r.word) for r in self._rows), default=0)
        indent = name_width + word_width + 2
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, row in enumerate(self._rows):
            if i:
                text.append("\n")
            text.append(f"{row.name:<{name_width}} ")
            component = f"instance-rows-{word_class(row.word)}"
            style = self.get_component_rich_style(component, partial=True, default=Style()) if styled else ""
            text.append(row.word, style=style)
            text.append(" " * (word_width - len(row.word) + 1))
            text.append("\n".join(self._wrapped(row, width - indent, indent)))
        return text

    @staticmethod
    def _wrapped(row: InstanceRow, room: int, indent: int) -> list[str]:
        if row.word == "OK" or room < 10 or len(row.text) <= room:
            return [row.text]
        lines = textwrap.wrap(row.text, room, break_on_hyphens=False) or [row.text]
        if len(lines) > WRAPPED_LINES:
            rest = " ".join(lines[WRAPPED_LINES - 1 :])
            lines = lines[: WRAPPED_LINES - 1] + [rest]  # the last line ends in an ellipsis
        return [lines[0]] + [" " * indent + line for line in lines[1:]]

"""A one-line trend of block characters scaled against a fixed reference (a threshold).

Textual's Sparkline scales between the data's own min and max, so a steady 16 kB lag fills every
bar; scaled against the WARNING threshold instead, the bars say how close the value came to it.
"""

from __future__ import annotations

from textual.widget import Widget

BLOCKS = "▁▂▃▄▅▆▇█"


def trend_text(values: tuple[float, ...], width: int, top: float) -> str:
    """The newest ``width`` values as blocks, ``top`` (or the largest value) being a full block."""
    values = values[-width:] if width > 0 else ()
    scale = max([top, *values]) or 1.0
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(max(v, 0) / scale * len(BLOCKS)))] for v in values)


class Trend(Widget):
    """Block-character trend; repaints only when the blocks it shows would change."""

    DEFAULT_CSS = "Trend { height: 1; color: $primary; }"

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._values: tuple[float, ...] = ()
        self._top = 1.0

    def set(self, values: tuple[float, ...], top: float) -> None:
        """Show ``values`` against ``top``; a no-op when the visible blocks stay the same."""
        width = self.size.width
        before = trend_text(self._values, width, self._top)
        self._values, self._top = values, top
        if trend_text(values, width, top) != before or not width:
            self.refresh()

    def render(self) -> str:
        return trend_text(self._values, self.size.width, self._top)

"""Text widgets that repaint only when what they show changes.

What they show is ``rich.text.Text``, never markup: a ``str`` given to them is wrapped in
``Text`` as it is, so remote text (a barman hint, a run's error) can neither break the
markup parser nor make a link or an action.
"""

from __future__ import annotations

import re
import textwrap

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Static


class Line(Static):
    """Plain text (never markup: it may hold remote output) that skips identical updates."""

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Text(text), markup=False, id=id, classes=classes)
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
            self.update(Text(text), layout=not same_size)


def word_class(word: str) -> str:
    """The CSS class colouring ``word``: ``-ok``, ``-critical``; a word read from a file that is no
    CSS identifier (a report's outcome) gets ``-other`` instead of making ``add_class`` raise."""
    name = word.lower()
    return f"-{name}" if re.fullmatch(r"[a-z][a-z0-9_-]*", name) else "-other"


class StatusWord(Static):
    """A status as a WORD ("OK", "CRITICAL", "STALE"), coloured by the CSS class ``-<word>``."""

    def __init__(self, word: str = "UNKNOWN", *, id: str | None = None) -> None:
        super().__init__(Text(word), markup=False, id=id, classes=word_class(word))
        self._word = word

    @property
    def word(self) -> str:
        return self._word

    def set(self, word: str) -> None:
        """Show ``word``; a no-op when it is already shown."""
        if word != self._word:
            self.remove_class(word_class(self._word))
            self._word = word
            self.add_class(word_class(word))
            self.update(Text(word))


def show_if(widget: Widget, shown: bool) -> None:
    """Show or hide ``widget``, touching it only when that changes (a change re-lays the screen out)."""
    if widget.display != shown:
        widget.display = shown


_HANG = re.compile(r"^(\s*(?:[✓✗⚠•·-] )?)(.*)$")


def hanging(lines: list[str], width: int) -> list[str]:
    """``lines`` wrapped to ``width`` with a hanging indent: a wrapped "  ✓ fact" continues under
    its text, not under the check mark."""
    out: list[str] = []
    for line in lines:
        match = _HANG.match(line)
        prefix, rest = match.groups() if match else ("", line)
        room = width - len(prefix)
        if len(line) <= width or room < 20:
            out.append(line)
            continue
        wrapped = textwrap.wrap(rest, room, break_on_hyphens=False) or [""]
        out += [prefix + wrapped[0]] + [" " * len(prefix) + part for part in wrapped[1:]]
    return out


class HangingText(Widget):
    """Plain lines (never markup) wrapped with hanging indents; ``text`` is what it was given."""

    DEFAULT_CSS = "HangingText { height: auto; }"

    def __init__(self, text: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = text

    @property
    def text(self) -> str:
        return self._text

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(hanging(self._text.split("\n"), width))

    def render(self) -> Text:
        return Text("\n".join(hanging(self._text.split("\n"), self.content_region.width or self.size.width)))

"""The main screen: header, the four live panels in a 2x2 grid, the output pane and the footer."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Footer

from ...snapshot import PANELS
from ..host import ConsoleScreen
from ..keys import bindings
from ..widgets.header import StatusHeader
from ..widgets.log import TextLog
from ..widgets.panel import PanelWidget

COLUMNS = 2


class MainScreen(ConsoleScreen[None]):
    """Panels are focusable; Enter opens the focused one's detail view."""

    SCOPES = ("main",)
    BINDINGS = bindings(*SCOPES)

    def __init__(self, titles: dict[str, str]) -> None:
        super().__init__(id="main")
        self._titles = titles

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        with Grid(id="panels"):
            for name in PANELS:
                yield PanelWidget(name, self._titles[name])
        output = TextLog(id="output")
        output.border_title = "output"
        output.can_focus = False
        yield output
        yield Footer()

    def on_mount(self) -> None:
        self.panel(PANELS[0]).focus()

    def panel(self, name: str) -> PanelWidget:
        """The panel widget for ``name``."""
        return self.query_one(f"#panel-{name}", PanelWidget)

    def write(self, line: Text) -> None:
        """Append one line to the output pane."""
        self.query_one("#output", TextLog).write_line(line)

    def action_details(self) -> None:
        focused = self.focused
        name = focused.panel if isinstance(focused, PanelWidget) else PANELS[0]
        self.host.open_details(name)

    def action_move(self, rows: int, cols: int) -> None:
        focused = self.focused
        index = PANELS.index(focused.panel) if isinstance(focused, PanelWidget) else 0
        row, col = divmod(index, COLUMNS)
        row = (row + rows) % (len(PANELS) // COLUMNS)
        col = (col + cols) % COLUMNS
        self.panel(PANELS[row * COLUMNS + col]).focus()

    def action_focus_panel(self, name: str) -> None:
        self.panel(name).focus()

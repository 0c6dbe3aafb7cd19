"""The ``?`` help screen: every key, what it does, and the binding id to remap it by."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen

from ..keys import KEYS, bindings, display_keys
from ..widgets.table import SteadyTable
from ..widgets.text import Line


class HelpScreen(ModalScreen[None]):
    """A modal table of all bindings with the operator's keymap applied."""

    BINDINGS = bindings("help")

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__(id="help")
        self._keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = "montagu-console keys"
            box.border_subtitle = "esc closes"
            yield SteadyTable("key", "binding id", "what it does", id="help-keys", cursor_type="none")
            yield Line(
                "Remap a key in the config: keys: {binding-id: key}. Ctrl+P lists the same commands.",
                classes="help-note",
            )

    def on_mount(self) -> None:
        table = self.query_one(SteadyTable)
        table.set_rows([(display_keys(s, self._keymap), s.id, s.help) for s in KEYS])
        table.focus()

    def action_close(self) -> None:
        self.dismiss()

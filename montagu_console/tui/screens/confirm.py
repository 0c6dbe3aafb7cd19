"""The question asked before anything that changes the estate (or leaves a run behind).

Two forms: y/n buttons with the focus on No, or a text the operator must type exactly (the
volume or host about to be overwritten). Escape always cancels. The answer is the screen's
result: ``"y"``, the typed text (checked by the action layer, which refuses a mismatch), or None.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input

from ..keys import bindings
from ..widgets.text import HangingText, Line


class QuestionScreen(ModalScreen[str | None]):
    """A modal question: the Start and Cancel buttons (ids ``yes`` and ``no``), Enter in its input
    as Start, Escape or Cancel as None. A subclass answers in :meth:`action_yes`."""

    BINDINGS = bindings("confirm")

    def action_yes(self) -> None:
        raise NotImplementedError

    def action_no(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.action_yes()

    @on(Button.Pressed, "#no")
    def _no(self) -> None:
        self.action_no()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_yes()


class ConfirmScreen(QuestionScreen):
    """``lines`` say what will happen; ``typed`` is the text to type, or None for a y/n question."""

    def __init__(
        self, title: str, lines: list[str], *, typed: str | None = None, yes: str = "Start", no: str = "Cancel"
    ) -> None:
        super().__init__(id="confirm")
        self.title_text = title
        self.lines = lines
        self.typed = typed
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = Text(self.title_text)  # names a run or a host: never markup
            yield HangingText("\n".join(self.lines), classes="confirm-text")
            if self.typed is not None:
                yield Line(f"Type {self.typed} to confirm:", classes="confirm-ask")
                yield Input(placeholder=self.typed, id="confirm-input")
                yield Line("", classes="confirm-match")
            with Horizontal(classes="confirm-buttons"):
                yield Button(Text(self.yes_label), id="yes", variant="error")
                yield Button(Text(self.no_label), id="no", variant="primary")
            hint = "enter confirms · esc cancels" if self.typed is not None else "y confirms · n or esc cancels"
            yield Line(hint, classes="confirm-hint")

    def on_mount(self) -> None:
        self.query_one("#confirm-input" if self.typed is not None else "#no").focus()

    def action_yes(self) -> None:
        if self.typed is None:
            self.dismiss("y")
        else:
            self.dismiss(self.query_one("#confirm-input", Input).value.strip())

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        text = event.value.strip()
        self.query_one(".confirm-match", Line).set(
            "" if not text else "✓ matches" if text == self.typed else f"✗ does not match {self.typed}"
        )

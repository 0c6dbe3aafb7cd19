"""The point-in-time recovery's first question: the time to recover to.

A modal with the target time already typed (a minute ago, in UTC) for the operator to edit.
Enter accepts a time the action layer can read (:func:`montagu_console.actions.pitr.parse_target`)
and hands it on (the preflight and the y/n confirmation follow); a text that is no time stays
on screen with a one-line reason. Escape cancels. The result is the typed text, or None.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input

from ...actions.pitr import parse_target, target_text
from ..widgets.text import HangingText, Line
from .confirm import QuestionScreen

EXAMPLE = "2026-12-01 14:02:00+00"


def default_target(now: datetime) -> str:
    """A minute before ``now`` (aware), to the second, in UTC: what the input starts with."""
    return f"{(now - timedelta(minutes=1)).astimezone(UTC):%Y-%m-%d %H:%M:%S}+00"


class PitrScreen(QuestionScreen):
    """``lines`` say what a PITR does; ``now`` (UTC) gives the default target."""

    def __init__(self, lines: list[str], now: datetime) -> None:
        super().__init__(id="pitr")
        self.lines = lines
        self.default = default_target(now)

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = Text("Point-in-time recovery")
            yield HangingText("\n".join(self.lines), classes="confirm-text")
            yield Line(f"Recover to (UTC unless a zone is given, e.g. {EXAMPLE}):", classes="confirm-ask")
            yield Input(value=self.default, id="pitr-target")
            yield Line("", classes="confirm-match")
            with Horizontal(classes="confirm-buttons"):
                yield Button(Text("Check"), id="yes", variant="error")
                yield Button(Text("Cancel"), id="no", variant="primary")
            yield Line("enter checks the time, then asks before it starts · esc cancels", classes="confirm-hint")

    def on_mount(self) -> None:
        self.query_one("#pitr-target", Input).focus()

    def action_yes(self) -> None:
        text = self.query_one("#pitr-target", Input).value.strip()
        target = parse_target(text)
        if target is None:
            self.query_one(".confirm-match", Line).set(f"✗ {text[:40]!r} is not a time (e.g. {EXAMPLE})")
            return
        self.dismiss(text)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        target = parse_target(event.value.strip())
        self.query_one(".confirm-match", Line).set(f"= {target_text(target)}" if target else "")

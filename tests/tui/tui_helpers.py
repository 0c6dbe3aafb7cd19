"""Helpers for the TUI Pilot tests: waiting, and reading what the screens show."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual import events

from montagu_console.tui.app import MontaguApp
from montagu_console.tui.screens.main import MainScreen
from montagu_console.tui.widgets.panel import PanelWidget
from montagu_console.tui.widgets.rows import InstanceRows
from montagu_console.tui.widgets.text import Line, StatusWord


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 2.0) -> float:
    """Pause until ``predicate()`` holds; return how long that took. Fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.005)
    return time.monotonic() - start


async def ready(pilot) -> None:
    """Wait until every panel has its first result."""
    app = pilot.app
    await wait_for(pilot, lambda: len(app.results) == 4 and not any(app.poller.polling_since(n) for n in app.results))
    await pilot.pause()


def main_screen(app: MontaguApp) -> MainScreen:
    return app.get_default_screen()


def panel_text(app: MontaguApp, name: str) -> str:
    """Everything panel ``name`` shows, as text: status word, summary, instance rows, facts, age."""
    panel = main_screen(app).query_one(f"#panel-{name}", PanelWidget)
    parts = [panel.query_one(StatusWord).word, panel.query_one(InstanceRows).text]
    parts += [line.text for line in panel.query(Line)]
    return "\n".join(parts + [str(panel.border_subtitle or "")])


def panel_word(app: MontaguApp, name: str) -> str:
    return main_screen(app).query_one(f"#panel-{name}", PanelWidget).query_one(StatusWord).word


def header_word(app: MontaguApp) -> str:
    return main_screen(app).query_one("#header").query_one(StatusWord).word


def header_text(app: MontaguApp) -> str:
    return " ".join(line.text for line in main_screen(app).query_one("#header").query(Line) if line.display)


def output_joined(app: MontaguApp) -> str:
    """The output pane as one string, wrapping undone, for substring checks."""
    log = main_screen(app).query_one("#output")
    return "".join(strip.text.rstrip() + " " for strip in log.lines)


async def answer_time(
    app: MontaguApp, key: str, character: str | None, done: Callable[[], bool], timeout: float = 2.0
) -> float:
    """Seconds from a key reaching the app (as from the terminal) until ``done()`` holds.

    Unlike ``pilot.press``, which also waits for the whole screen to settle, this measures how
    soon the app reacts to the key.
    """
    start = time.monotonic()
    app._driver.send_message(events.Key(key, character))
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{key}: no answer within {timeout} s")
        await asyncio.sleep(0.001)
    return time.monotonic() - start

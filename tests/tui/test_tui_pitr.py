"""The TUI's `p`: the target-time screen, a bad time refused in one line, read-only refused."""

from __future__ import annotations

import json

from textual.widgets import Input
from tui_helpers import output_joined, ready, wait_for

from montagu_console.actions.pitr import parse_target
from montagu_console.tui.screens.pitr import PitrScreen
from montagu_console.tui.widgets.text import Line


async def test_p_opens_the_screen_with_a_minute_ago_in_utc(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PitrScreen))
        typed = app.screen.query_one("#pitr-target", Input).value
        minute_ago = app.clock().timestamp() - 60
        assert typed.endswith("+00")
        assert parse_target(typed).timestamp() == int(minute_ago)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PitrScreen))
        assert "point-in-time recovery: not started" in output_joined(app)


async def test_a_bad_time_is_refused_with_a_one_line_reason(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PitrScreen))
        field = app.screen.query_one("#pitr-target", Input)
        field.value = "half past nine"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PitrScreen)  # still asking: nothing was checked or started
        reason = app.screen.query_one(".confirm-match", Line).text
        assert reason.startswith("✗") and "'half past nine' is not a time" in reason and "\n" not in reason
        assert "checking" not in output_joined(app)


async def test_read_only_refuses_p_with_the_reason_shown(action_app):
    app = action_app(read_only=True)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: "pitr refused: read-only mode" in output_joined(app), timeout=10)
        assert not isinstance(app.screen, PitrScreen)
        reports = list((action_app.config.state_dir / "pitr").glob("*/report.json"))
        assert [json.loads(r.read_text())["outcome"] for r in reports] == ["refused"]

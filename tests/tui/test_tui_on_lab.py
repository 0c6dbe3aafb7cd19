"""The console on the real lab: live data, and a real failure shown within one refresh."""

from __future__ import annotations

import pytest
import tui_fakes
from tui_helpers import panel_text, panel_word, ready, wait_for

from montagu_console.collect import Collector
from montagu_console.config import load_config
from montagu_console.snapshot import PANELS
from montagu_console.tui.app import MontaguApp

pytestmark = pytest.mark.lab

REFRESH = 2.0


def lab_app(lab_config) -> MontaguApp:
    config = tui_fakes.with_fields(load_config(lab_config), refresh_seconds=REFRESH)
    return MontaguApp(config, Collector(config))


async def test_console_shows_the_live_lab(lab_config):
    app = lab_app(lab_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: len(app.results) == 4, timeout=60)
        await ready(pilot)
        assert [panel_word(app, n) for n in PANELS] == ["OK"] * 4, [app.results[n].summary for n in PANELS]
        assert "receive-wal running" in panel_text(app, "wal")
        assert "barman_to_starport" in panel_text(app, "starport")


async def test_receive_wal_stopped_turns_wal_critical_within_one_refresh(lab, lab_config):
    app = lab_app(lab_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: panel_word(app, "wal") == "OK", timeout=60)
        lab.stop_receive_wal()
        try:
            # one refresh period, plus the poll itself (a handful of barman calls): a bound, not a speed figure
            await wait_for(pilot, lambda: panel_word(app, "wal") == "CRITICAL", timeout=REFRESH + 15)
            assert "receive-wal not running" in panel_text(app, "wal")
            assert panel_word(app, "barman") in ("OK", "CRITICAL")  # barman's own check sees it too
            await pilot.press("question_mark")  # keys keep answering
            await pilot.press("escape")
        finally:
            lab.start_receive_wal()
        await wait_for(pilot, lambda: panel_word(app, "wal") == "OK", timeout=90)

"""Screen snapshots (pytest-textual-snapshot) from the deterministic fake data and a frozen clock.

Update after a deliberate change with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` and
look at the SVGs (``snapshot_report.html`` shows the differences when a comparison fails).
"""

from __future__ import annotations

import pytest
import tui_fakes
from tui_helpers import ready

from montagu_console.tui.app import MontaguApp

THEMES = ["montagu-dark", "montagu-light", "montagu-high-contrast"]
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


def app_on(results, theme: str = "montagu-dark", *, estate: bool = False, **config_fields) -> MontaguApp:
    config = (tui_fakes.make_estate_config if estate else tui_fakes.make_config)(**config_fields)
    return MontaguApp(config, tui_fakes.FakeCollector(results), theme=theme, clock=tui_fakes.frozen())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("theme", THEMES)
def test_main_screen(snap_compare, theme, size):
    assert snap_compare(app_on(tui_fakes.troubled(), theme), terminal_size=SIZES[size], run_before=ready)


def test_main_screen_healthy_read_only(snap_compare):
    assert snap_compare(app_on(tui_fakes.healthy(), read_only=True), terminal_size=(80, 24), run_before=ready)


@pytest.mark.parametrize("panel_key", ["1", "2", "3", "4"], ids=["barman", "wal", "starport", "restore"])
def test_detail_view(snap_compare, panel_key):
    async def open_detail(pilot):
        await ready(pilot)
        await pilot.press(panel_key, "enter")
        await pilot.pause()

    assert snap_compare(app_on(tui_fakes.troubled()), terminal_size=(80, 24), run_before=open_detail)


def test_help_screen(snap_compare):
    async def open_help(pilot):
        await ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app_on(tui_fakes.healthy()), terminal_size=(80, 24), run_before=open_help)


@pytest.mark.parametrize("theme", THEMES)
def test_main_screen_two_barmans_at_80x24(snap_compare, theme):
    """annex OK and taking a base backup, aws CRITICAL, its slot and an orphaned one inactive."""
    results = tui_fakes.estate_troubled()
    assert snap_compare(app_on(results, theme, estate=True), terminal_size=(80, 24), run_before=ready)


def test_main_screen_two_barmans_healthy_at_160x48(snap_compare):
    assert snap_compare(app_on(tui_fakes.estate(), estate=True), terminal_size=(160, 48), run_before=ready)


@pytest.mark.parametrize("panel_key", ["1", "2"], ids=["barman", "wal"])
def test_detail_view_two_barmans(snap_compare, panel_key):
    async def open_detail(pilot):
        await ready(pilot)
        await pilot.press(panel_key, "enter")
        await pilot.pause()

    app = app_on(tui_fakes.estate_troubled(), estate=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_detail)

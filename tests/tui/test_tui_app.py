"""Pilot tests of the main screen, detail views, refresh and keys on the fake collector (actions: test_tui_actions)."""

from __future__ import annotations

import pytest
import tui_fakes
from textual.command import CommandPalette
from tui_helpers import (
    answer_time,
    header_text,
    header_word,
    main_screen,
    output_joined,
    panel_text,
    panel_word,
    ready,
    wait_for,
)

from montagu_console.errors import ConsoleError
from montagu_console.snapshot import PANELS
from montagu_console.tui.keys import KEYS
from montagu_console.tui.screens.detail import DETAIL_SCREENS, DetailScreen
from montagu_console.tui.screens.help import HelpScreen
from montagu_console.tui.screens.main import MainScreen
from montagu_console.tui.widgets.table import SteadyTable
from montagu_console.tui.widgets.text import StatusWord

ANSWER_BOUND = 10.0  # a key unanswered this long means the console hangs (a bound, not a speed figure)


async def test_panels_show_words_reasons_and_facts(make_app):
    app = make_app(tui_fakes.troubled())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert header_word(app) == "CRITICAL"
        # the rules' words: a restore in progress is a WARNING, never OK
        assert [panel_word(app, n) for n in PANELS] == ["WARNING", "CRITICAL", "WARNING", "WARNING"]
        wal = panel_text(app, "wal")
        assert "receive-wal not running" in wal
        assert "receive-wal STOPPED · slot INACTIVE" in wal
        assert "last WAL archived 47 minutes ago" in wal
        assert "data just now" in wal
        barman = panel_text(app, "barman")
        assert "last backup 3 days ago" in barman and "data 174.2 MiB" in barman
        assert "redo 42% ████░░░░░░ ETA 15 minutes" in panel_text(app, "restore")
        assert "restore in progress: redo 42%, about 15 minutes left" in panel_text(app, "restore")
        assert "barman_to_starport: 31 hours ago" in panel_text(app, "starport")
        assert "refreshed 07:09:05 · every 10 s" in header_text(app)
        assert "montagu on annex · config.yml" in header_text(app)
        assert "wal: CRITICAL: receive-wal not running" in output_joined(app)


async def test_before_the_first_answer_panels_say_unknown_and_wait(make_app):
    app = make_app(collector=tui_fakes.FakeCollector(hang=PANELS))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert header_word(app) == "UNKNOWN"
        assert all(panel_word(app, n) == "UNKNOWN" for n in PANELS)
        assert "waiting for the first answer from science" in panel_text(app, "restore")
        assert "first poll running" in header_text(app)


@pytest.mark.parametrize("name", PANELS)
async def test_enter_opens_each_detail_view_and_escape_returns(make_app, name):
    app = make_app(tui_fakes.troubled())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(str(PANELS.index(name) + 1), "enter")
        await pilot.pause()
        assert type(app.screen) is DETAIL_SCREENS[name]
        assert app.screen.query_one(".detail-summary").text == app.results[name].summary
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.screen.focused.panel == name


async def test_arrows_and_tab_move_focus_between_panels(make_app):
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        focus = lambda: app.screen.focused.panel  # noqa: E731
        assert focus() == "barman"
        for key, expected in (
            ("right", "wal"),
            ("down", "restore"),
            ("left", "starport"),
            ("up", "barman"),
            ("tab", "wal"),
            ("shift+tab", "barman"),
            ("4", "restore"),
        ):
            await pilot.press(key)
            assert focus() == expected, key


async def test_barman_detail_lists_checks_and_backups_with_failed_rows(make_app):
    results = tui_fakes.troubled()
    results["barman"] = tui_fakes.barman_result(failed_checks=("replication slot",), failed_backup=True)
    app = make_app(results)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("enter")
        await pilot.pause()
        checks = app.screen.query_one("#checks", SteadyTable)
        first = [str(c) for c in checks.get_row_at(0)]
        assert first == ["replication slot", "FAILED", "see barman docs"]  # FAILED sorts first
        backups = app.screen.query_one("#backups", SteadyTable)
        rows = [[str(c) for c in backups.get_row_at(i)] for i in range(backups.row_count)]
        assert rows[0][0] == "20261123T020004" and rows[0][-2] == "FAILED"
        assert rows[1] == ["20261121T020003", "2026-11-21 02:09", "3 days", "174.2 MiB", "DONE", "—"]
        failed_cell = backups.get_row_at(0)[-2]
        assert "reverse" in str(failed_cell.style)  # stands out without colour, too


async def test_wal_starport_restore_details(make_app):
    app = make_app(tui_fakes.troubled())
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2", "enter")
        await pilot.pause()
        facts = app.screen.query_one(".facts").text
        assert "receive-wal        NOT RUNNING" in facts
        assert "replication slot   barman: INACTIVE" in facts
        assert "last archived WAL  000000010000000000000029" in facts
        await pilot.press("escape", "3", "enter")
        await pilot.pause()
        targets = app.screen.query_one("#targets", SteadyTable)
        assert [str(c) for c in targets.get_row_at(0)][:3] == ["barman_to_starport", "2026-11-23 00:09", "31 hours ago"]
        await pilot.press("escape", "4", "enter")
        await pilot.pause()
        facts = app.screen.query_one(".facts").text
        assert "redo LSN → target      0/2533D0A8 → 0/3A000000" in facts
        assert "42%, ETA 15 minutes" in facts
        log_tail = app.screen.query_one("#log-tail")
        assert log_tail.lines[-1].text.rstrip().endswith("current LSN: 0/2533D0A8")


async def test_status_changes_are_shown_with_the_reason(make_app):
    collector = tui_fakes.FakeCollector(tui_fakes.healthy())
    app = make_app(collector=collector)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        assert panel_word(app, "wal") == "OK" and header_word(app) == "OK"
        collector.results["wal"] = tui_fakes.wal_result(receiving=False)
        await pilot.press("R")
        await wait_for(pilot, lambda: panel_word(app, "wal") == "CRITICAL")
        assert "receive-wal not running" in panel_text(app, "wal")
        assert header_word(app) == "CRITICAL"
        assert "wal: OK -> CRITICAL: receive-wal not running" in output_joined(app)
        collector.results["wal"] = tui_fakes.wal_result()
        await pilot.press("R")
        await wait_for(pilot, lambda: panel_word(app, "wal") == "OK")
        assert header_word(app) == "OK"
        assert "wal: CRITICAL -> OK: streaming" in output_joined(app)


async def test_detail_view_follows_new_results(make_app):
    collector = tui_fakes.FakeCollector(tui_fakes.healthy())
    app = make_app(collector=collector)
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("2", "enter")
        await pilot.pause()
        collector.results["wal"] = tui_fakes.wal_result(receiving=False)
        await pilot.press("R")
        await wait_for(pilot, lambda: "NOT RUNNING" in app.screen.query_one(".facts").text)
        assert "receive-wal not running" in app.screen.query_one(".detail-summary").text


async def test_refresh_never_overlaps_a_poll_in_flight(make_app):
    collector = tui_fakes.FakeCollector(hang=PANELS)  # every host is slow to answer
    app = make_app(collector=collector)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("R", "R", "R")
        await pilot.pause()
        assert all(collector.calls[n] == 1 for n in PANELS)
        assert "still polling: not starting another" in output_joined(app)
        collector.release()
        await ready(pilot)
        await pilot.press("R")
        await wait_for(pilot, lambda: all(collector.calls[n] == 2 for n in PANELS))
        assert max(collector.max_concurrent.values()) == 1


async def test_plus_and_minus_change_the_period_live(make_app):
    collector = tui_fakes.FakeCollector()
    app = make_app(collector=collector, refresh_seconds=600)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        assert "every 10 min" in header_text(app)
        await pilot.press("minus")
        assert "every 10 min" in header_text(app)
        assert "refresh period stays 10 min" in output_joined(app)
        await pilot.press("plus")
        assert app.poller.period == 300 and "every 5 min" in header_text(app)
        assert "refresh every 5 min (was 10 min)" in output_joined(app)
        await pilot.press(*["plus"] * 10)
        assert app.poller.period == 1 and "every 1 s" in header_text(app)
        assert "refresh period stays 1 s" in output_joined(app)  # the floor
        # the timers armed for 600 s were re-armed: polls now come about every second
        await wait_for(pilot, lambda: all(collector.calls[n] >= 2 for n in PANELS), timeout=3)
        await pilot.press("minus")
        assert app.poller.period == 2


async def test_a_dead_host_leaves_other_panels_and_keys_alive(make_app):
    clock = tui_fakes.MutableClock()
    collector = tui_fakes.FakeCollector(tui_fakes.healthy(), clock=clock)
    app = make_app(collector=collector, clock=clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        collector.hang.add("starport")  # its host stops answering: the next poll never returns
        await pilot.press("R")
        await pilot.pause()
        clock.advance(seconds=40)  # more than three 10 s periods without an answer
        collector.results["wal"] = tui_fakes.wal_result(receiving=False)
        await pilot.press("R")
        await wait_for(pilot, lambda: panel_word(app, "wal") == "CRITICAL")
        await wait_for(pilot, lambda: panel_word(app, "starport") == "STALE")
        assert panel_word(app, "barman") == "OK" and panel_word(app, "restore") == "OK"
        starport = panel_text(app, "starport")
        assert "no fresh answer from annex for 40 s; it last said OK" in starport
        assert "polling 40 s" in starport
        assert collector.max_concurrent["starport"] == 1
        assert "starport still polling: not starting another" in output_joined(app)
        assert "starport: STALE" in output_joined(app)
        # keys answer while starport's poll hangs (answer_time fails if one does not, within its bound;
        # how fast keys answer is a figure of bench/tui_stream.py, not an assertion)
        calls = collector.calls["wal"]
        await answer_time(app, "R", "R", lambda: collector.calls["wal"] > calls, timeout=ANSWER_BOUND)
        await answer_time(app, "question_mark", "?", lambda: isinstance(app.screen, HelpScreen), timeout=ANSWER_BOUND)
        await pilot.press("escape", "3")
        await answer_time(app, "enter", "\r", lambda: isinstance(app.screen, DetailScreen), timeout=ANSWER_BOUND)
        await pilot.pause()
        assert app.screen.query_one(StatusWord).word == "STALE"


async def test_a_failed_probe_shows_unknown_with_the_last_known_facts(make_app):
    collector = tui_fakes.FakeCollector(tui_fakes.healthy())
    app = make_app(collector=collector)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        collector.results["barman"] = tui_fakes.failed_result("barman")
        await pilot.press("R")
        await wait_for(pilot, lambda: panel_word(app, "barman") == "UNKNOWN")
        text = panel_text(app, "barman")
        assert "annex: `barman -f json status montagu` timed out after 30 s" in text
        assert "last known, from 07:09:03:" in text and "last backup 3 days ago" in text
        await pilot.press("enter")
        await pilot.pause()
        summary = app.screen.query_one(".detail-summary").text
        assert "annex: `barman -f json status montagu` timed out after 30 s" in summary
        assert "below: the last known facts, from 07:09:03" in summary


async def test_help_lists_every_binding_with_remapped_keys(make_app):
    app = make_app(keys={"refresh": "f5"})
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(SteadyTable)
        rows = {str(table.get_row_at(i)[1]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert set(rows) == {spec.id for spec in KEYS}
        assert rows["refresh"][0] == "f5"
        assert rows["help"][0] == "?" and rows["faster"][0] == "+ ="
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_command_palette_offers_every_binding(make_app):
    collector = tui_fakes.FakeCollector()
    app = make_app(collector=collector)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        titles = " | ".join(c.title + " " + c.help for c in app.get_system_commands(app.screen))
        for spec in KEYS:
            if spec.scope in ("app", "main"):
                assert f"binding id {spec.id}" in titles
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"Poll every panel now")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: all(collector.calls[n] == 2 for n in PANELS))


async def test_keymap_from_config_remaps(make_app):
    collector = tui_fakes.FakeCollector()
    app = make_app(collector=collector, keys={"refresh": "f5", "base-backup": "B"}, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("R")
        await pilot.pause()
        assert collector.calls["wal"] == 1
        await pilot.press("f5")
        await wait_for(pilot, lambda: collector.calls["wal"] == 2)
        await pilot.press("B")
        assert "B: base backup of montagu on annex: checking…" in output_joined(app)
        await wait_for(pilot, lambda: "base-backup refused: read-only" in output_joined(app))


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"refrseh": "f5"}, "keys.refrseh: unknown binding id"),
        ({"refresh": "b"}, "keys: 'b' is bound to both refresh and base-backup"),
    ],
)
def test_bad_keymap_is_one_clear_error(make_app, keys, message):
    with pytest.raises(ConsoleError) as e:
        make_app(keys=keys)
    assert message in str(e.value)
    assert "binding ids: back, base-backup" in str(e.value)


async def test_q_quits_and_closes_the_collector(make_app):
    collector = tui_fakes.FakeCollector()
    app = make_app(collector=collector)
    async with app.run_test() as pilot:
        await ready(pilot)
        assert app.attached_runs == []
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert collector.closed
    assert app.return_code == 0


async def test_no_repaint_when_nothing_changed(make_app, monkeypatch):
    collector = tui_fakes.FakeCollector(tui_fakes.troubled())
    app = make_app(collector=collector)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        repaints = []
        for widget in main_screen(app).query("*"):
            monkeypatch.setattr(widget, "refresh", lambda *a, w=widget, **k: repaints.append(w) or w)
        for name in PANELS:  # as the timers do: R would also write a line in the output pane
            app.poller.poll(name)
        await ready(pilot)
        app.update_views()
        await pilot.pause()
        assert collector.calls["wal"] == 2
        # only the lag trend repaints: it gained a bar for the new sample
        assert [type(w).__name__ for w in repaints] == ["Trend"]

"""The whole estate on screen: a row per barman instance, the primary's slots, retention, backup progress.

Every fixture is built through the health rules (``tui_fakes.estate*``: ``judge_barman``,
``judge_wal``, ``judge_slots`` and ``combine`` on typed facts).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import tui_fakes
import tui_runs
from tui_helpers import panel_text, ready, wait_for

from montagu_console import health
from montagu_console.snapshot import InstanceResult, Status
from montagu_console.tui.app import MontaguApp
from montagu_console.tui.present import InstanceRow, panel_titles, panel_view
from montagu_console.tui.present_runs import progress_view
from montagu_console.tui.screens.confirm import ConfirmScreen
from montagu_console.tui.screens.detail import DetailScreen
from montagu_console.tui.screens.run import RunScreen
from montagu_console.tui.widgets.rows import InstanceRows
from montagu_console.tui.widgets.table import SteadyTable
from montagu_console.tui.widgets.text import HangingText, hanging

NOW = tui_fakes.NOW


def view(name, result):
    return panel_view(name, result, None, now=NOW, period=10, host="annex, aws", polling_for=None)


def estate_app(results, theme=None) -> MontaguApp:
    return MontaguApp(
        tui_fakes.make_estate_config(), tui_fakes.FakeCollector(results), theme=theme, clock=tui_fakes.frozen()
    )


# -- what the panels say -----------------------------------------------------------------------


def test_aws_critical_is_its_own_row_and_annex_stays_ok():
    v = view("barman", tui_fakes.estate_barman(aws_down=True))
    assert v.word == "CRITICAL" and v.summary.startswith("aws: barman check FAILED: receive-wal running")
    assert [(r.name, r.word) for r in v.rows] == [("annex", "OK"), ("aws", "CRITICAL")]
    assert v.rows[0].text.startswith("last 3 days ago · 3 backups")
    assert v.rows[1].text == "barman check FAILED: receive-wal running"

    wal = view("wal", tui_fakes.estate_wal(aws_down=True))
    assert [(r.name, r.word) for r in wal.rows] == [("annex", "OK"), ("aws", "CRITICAL")]
    assert wal.rows[0].text == "lag 16.0 KiB · receive-wal running · WAL 2 min ago"
    assert wal.rows[1].text.startswith("receive-wal not running; replication slot barman_aws inactive")


def test_an_unreachable_off_site_host_makes_only_its_own_row_unknown():
    v = view("barman", tui_fakes.estate_barman(aws_unreachable=True))
    assert v.word == "UNKNOWN"
    assert v.rows[0] == InstanceRow("annex", "OK", v.rows[0].text) and v.rows[0].text.startswith("last 3 days")
    assert v.rows[1].word == "UNKNOWN" and "aws: `barman -f json status montagu` timed out" in v.rows[1].text


def test_every_slot_on_the_primary_and_an_inactive_one_named_by_a_word():
    v = view("wal", tui_fakes.estate_wal(aws_down=True, orphan=True))
    assert v.lines == (
        "INACTIVE slot barman_aws: 1.5 GiB",
        f"INACTIVE slot {tui_fakes.ORPHAN_SLOT}: 50.0 MiB",
        "slot active: barman",
    )
    assert "  barman_aws            INACTIVE    1.5 GiB" in v.more  # the tall list: inactive first
    healthy = view("wal", tui_fakes.estate_wal())
    assert healthy.word == "OK" and healthy.lines == ("slots active: barman, barman_aws",)
    assert view("wal", tui_fakes.estate_wal(slots=False)).lines == ()  # no primary configured: no slot lines


def test_retention_policy_and_a_running_backups_progress():
    v = view("barman", tui_fakes.estate_barman())
    assert v.lines == (
        "annex: backup 43% ███░░░ ETA 2 h",
        "  1.2 GiB of 2.8 GiB",
        "retains RECOVERY WINDOW OF 3 MONTHS",
    )
    assert "backup RUNNING" in v.rows[0].text
    assert any("(20261124T020001, from the primary)" in line for line in v.more)
    assert "  20261121T020003  2026-11-21 02:09  174.2 MiB  DONE VALID" in v.more


def test_one_instance_keeps_the_single_barman_panel():
    """A config with one barman gives one instance: the panel reads as it did, no rows; the slots
    and the retention policy are lines under it."""
    alone = tui_fakes.barman_result(retention_policy=tui_fakes.POLICY, progress=tui_fakes.PROGRESS)
    combined = health.combine("barman", [InstanceResult("annex", "annex", alone)], tui_fakes.TAKEN)
    v = view("barman", combined)
    assert v.rows == ()
    assert v.lines == (
        "last backup 3 days ago",
        "backup 43% ███░░░ ETA 2 h",
        "  1.2 GiB of 2.8 GiB",
        "3 backups · data 174.2 MiB",
        "barman check: all OK",
        "retains RECOVERY WINDOW OF 3 MONTHS",
    )
    assert view("barman", tui_fakes.barman_result()).lines == (
        "last backup 3 days ago",
        "3 backups · data 174.2 MiB",
        "barman check: all OK",
    )


def test_titles_name_every_barman_host():
    titles = panel_titles(tui_fakes.make_estate_config())
    assert titles["barman"] == "barman · annex, aws" and titles["wal"] == "WAL backlog · annex, aws"
    assert panel_titles(tui_fakes.make_config())["barman"] == "barman · annex"


def test_base_backup_run_shows_the_barman_panels_progress():
    record = {"action": "base-backup", "progress": {"percent": 0.0, "eta_seconds": None, "label": "barman backup"}}
    facts = tui_fakes.estate_barman().facts
    v = progress_view(record, "running", {}, facts)
    assert (v.percent, v.text) == (42.9, "43% · 1.2 GiB of 2.8 GiB (barman panel) · ETA 2 h 02 min")
    directory = facts | {"backup_progress": facts["backup_progress"] | {"source": "directory"}}
    assert "1.2 GiB of about 2.8 GiB" in progress_view(record, "running", {}, directory).text
    assert progress_view(record, "running", {}, {"backup_progress": None}).percent == 0.0
    assert progress_view(record | {"action": "restore"}, "running", {}, facts).text == "0% · barman backup"


def test_hanging_indent_keeps_a_wrapped_fact_under_its_text():
    line = "  ✓ once done, retention REDUNDANCY 2 makes 20261024T020002, 20260926T020001 obsolete"
    assert hanging([line, "short"], 60) == [
        "  ✓ once done, retention REDUNDANCY 2 makes 20261024T020002,",
        "    20260926T020001 obsolete",
        "short",
    ]


# -- on screen ---------------------------------------------------------------------------------


async def test_rows_on_screen_are_literal_and_their_words_stand_out():
    app = estate_app(tui_fakes.estate_troubled())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        wal = panel_text(app, "wal")
        assert f"INACTIVE slot {tui_fakes.ORPHAN_SLOT}" in wal  # markup from the primary shown as text
        rows = app.get_default_screen().query_one("#panel-barman").query_one(InstanceRows)
        assert rows.display and [r.word for r in rows.rows] == ["OK", "CRITICAL"]
        rendered = rows.render()
        assert rendered.plain.splitlines()[0].startswith("annex OK       last 3 days ago")
        spans = {rendered.plain[s.start : s.end]: str(s.style) for s in rendered.spans}
        assert "reverse" in spans["CRITICAL"] and "bold" in spans["OK"]  # not colour alone
        svg = app.export_screenshot()
        assert "[bold]old_standby[/]" in svg.replace("&#160;", " ")


@pytest.mark.parametrize("aws_unreachable", [False, True])
async def test_barman_detail_has_a_section_per_instance(aws_unreachable):
    results = tui_fakes.estate() | {"barman": tui_fakes.estate_barman(aws_down=True, aws_unreachable=aws_unreachable)}
    app = estate_app(results)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("1", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#instance").text == "annex: OK"
        assert "retention policy  RECOVERY WINDOW OF 3 MONTHS" in screen.query_one("#facts").text
        assert "progress          backup 43%" in screen.query_one("#facts").text
        backups = screen.query_one("#backups", SteadyTable)
        assert [str(c) for c in backups.get_row_at(0)][-1] == "VALID"
        checks_2 = screen.query_one("#checks-2", SteadyTable)
        if aws_unreachable:
            assert screen.query_one("#instance-2").text == "aws: UNKNOWN"
            assert "timed out after 30 s" in screen.query_one("#summary-2").text
            assert checks_2.row_count == 0 and screen.query_one("#facts-2").text == ""
        else:
            assert screen.query_one("#instance-2").text == "aws: CRITICAL"
            assert [str(c) for c in checks_2.get_row_at(0)][:2] == ["receive-wal running", "FAILED"]
        await pilot.press("pagedown")  # the body scrolls to the second section
        await pilot.pause()
        assert screen.query_one(".detail-estate").scroll_y > 0


async def test_wal_detail_lists_the_primarys_slots_inactive_first():
    app = estate_app(tui_fakes.estate_troubled())
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.pause()
        screen = app.screen
        assert "replication slot   barman_aws: INACTIVE" in screen.query_one("#facts-2").text
        slots = screen.query_one("#slots", SteadyTable)
        rows = [[str(c) for c in slots.get_row_at(i)] for i in range(slots.row_count)]
        assert rows == [
            ["barman_aws", "INACTIVE", "1.5 GiB"],
            [tui_fakes.ORPHAN_SLOT, "INACTIVE", "50.0 MiB"],
            ["barman", "active", "16.0 KiB"],
        ]
        assert screen.query_one(".slots-note").text == "3 slots, 2 INACTIVE"
        assert "reverse" in str(slots.get_row_at(0)[1].style)


async def test_a_dead_instance_recovers_on_the_next_refresh():
    collector = tui_fakes.FakeCollector(tui_fakes.estate() | {"barman": tui_fakes.estate_barman(aws_unreachable=True)})
    app = MontaguApp(tui_fakes.make_estate_config(), collector, clock=tui_fakes.frozen())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        rows = app.get_default_screen().query_one("#panel-barman").query_one(InstanceRows)
        assert [r.word for r in rows.rows] == ["OK", "UNKNOWN"]
        collector.results["barman"] = tui_fakes.estate_barman()
        await pilot.press("R")
        await wait_for(pilot, lambda: [r.word for r in rows.rows] == ["OK", "OK"])


async def test_run_view_of_a_base_backup_follows_the_barman_panels_progress(action_app, fake_supervisor):
    collector = tui_fakes.FakeCollector(tui_fakes.healthy() | {"barman": tui_fakes.estate_barman()})
    app = action_app(collector=collector)
    run = tui_runs.create_run(action_app.config, "base-backup")
    fake_supervisor(run, rate=5)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.attached_runs == [run], timeout=5)
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        text = app.screen.query_one(".progress-text")
        await wait_for(pilot, lambda: text.text.startswith("43% · 1.2 GiB of 2.8 GiB (barman panel)"))
        moved = replace(tui_fakes.PROGRESS, bytes_done=2_147_483_648, percent=71.4, eta_seconds=3000)
        annex = tui_fakes.barman_result(retention_policy=tui_fakes.POLICY, progress=moved)
        collector.results["barman"] = health.combine(
            "barman", [InstanceResult("annex", "annex", annex)], tui_fakes.TAKEN
        )
        await pilot.press("R")  # the next refresh
        await wait_for(pilot, lambda: text.text.startswith("71% · 2.0 GiB of 2.8 GiB"), timeout=5)
        assert app.screen.query_one("ProgressBar").progress == pytest.approx(71.4)


async def test_the_confirmation_names_what_retention_makes_obsolete(action_app):
    obsolete = (
        "once done, retention REDUNDANCY 2 makes 20261024T020002, 20260926T020001 obsolete "
        "(barman cron then deletes them)"
    )

    async def preflight(service_, pool):
        return ["no backup running", obsolete]

    app = action_app(preflight=preflight)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=10)
        await pilot.pause()
        box = app.screen.query_one(".confirm-text", HangingText)
        assert f"  ✓ {obsolete}" in box.text.splitlines()
        shown = box.render().plain.splitlines()
        at = next(i for i, line in enumerate(shown) if "once done" in line)
        assert shown[at + 1].startswith("    ") and "obsolete" in " ".join(shown[at : at + 3])
        await pilot.press("escape")


def test_instance_results_are_what_the_rules_give():
    """The fixtures are the rules' output: aws's own status is CRITICAL, the panel's the worst."""
    r = tui_fakes.estate_barman(aws_down=True)
    assert [i.result.status for i in r.instances] == [Status.OK, Status.CRITICAL] and r.status is Status.CRITICAL


async def test_row_words_take_their_colour_from_the_theme_when_it_changes():
    app = estate_app(tui_fakes.estate_troubled())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        rows = app.get_default_screen().query_one("#panel-barman").query_one(InstanceRows)

        def style_of(word: str) -> str:
            rendered = rows.render()
            return next(str(s.style) for s in rendered.spans if rendered.plain[s.start : s.end] == word)

        dark = style_of("CRITICAL")
        app.theme = "montagu-light"
        await pilot.pause()
        light = style_of("CRITICAL")
        assert light != dark and "reverse" in light  # repainted in the new theme, still a badge

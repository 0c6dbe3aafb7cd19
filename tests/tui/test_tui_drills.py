"""The drill wizard and the drill history, on drill directories made here and on real supervisors
running drill plans of shell steps (see :mod:`tui_runs`)."""

from __future__ import annotations

import tui_fakes
import tui_runs
from textual.widgets import Markdown
from tui_helpers import output_joined, panel_text, ready, wait_for

from montagu_console.actions import audit
from montagu_console.actions.runs import RunStore
from montagu_console.tui.present import last_drill_line
from montagu_console.tui.screens.confirm import ConfirmScreen
from montagu_console.tui.screens.drill import DrillScreen
from montagu_console.tui.screens.history import HistoryScreen, ReportScreen
from montagu_console.tui.widgets.steps import StepList
from montagu_console.tui.widgets.table import SteadyTable
from montagu_console.tui.widgets.text import StatusWord
from montagu_console.tui.widgets.trend import Trend


def shown(screen) -> dict[str, str]:
    """The wizard's texts by part."""
    return {name: screen.query_one(f".drill-{name}").text for name in ("intro", "now", "summary", "hint")}


def verify_table(screen) -> list[list[str]]:
    table = screen.query_one("#drill-verify", SteadyTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def open_wizard(pilot, screen=None) -> DrillScreen:
    if screen is None:
        await pilot.press("d")
    else:
        pilot.app.push_screen(screen)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, DrillScreen) and pilot.app.screen.state != "loading")
    await pilot.pause()
    return pilot.app.screen


async def test_wizard_shows_a_finished_drill_with_its_steps_verification_and_summary(action_app):
    app = action_app()
    run = tui_runs.finished_drill(action_app.config, rto=45.0)
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot)
        screen = await open_wizard(pilot, DrillScreen(run=run))
        assert screen.query_one(StatusWord).word == "PASSED"
        rows = screen.query_one(StepList).rows
        assert [r.name.split(":")[0] for r in rows] == [
            "preflight",
            "stop",
            "restore",
            "start",
            "redo",
            "verify",
            "report",
        ]
        assert {r.state for r in rows} == {"done"} and not any(r.current for r in rows)
        assert verify_table(screen) == [
            ["api_access_log has rows", "1204", "> 0", "PASS"],
            ["newest api_access_log entry", "2026-11-21T01:58:30+00:00", "not null", "PASS"],
        ]
        text = shown(screen)
        assert text["summary"].splitlines() == [
            "PASSED · RTO 45 s · RPO 1 min 30 s",
            f"report: {run.path / 'report.md'}",
        ]
        assert "overwrote the database of montagu-db on science" in text["intro"]
        assert "s starts another drill (you will type science)" in text["hint"]


async def test_wizard_shows_a_failed_verification(action_app):
    app = action_app()
    run = tui_runs.finished_drill(action_app.config, outcome="failed", failed_verify=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot)
        screen = await open_wizard(pilot, DrillScreen(run=run))
        assert screen.query_one(StatusWord).word == "FAILED"
        assert [r.state for r in screen.query_one(StepList).rows][-2:] == ["failed", "skipped"]
        assert verify_table(screen)[0] == ["api_access_log has rows", "0", "> 0", "FAIL"]
        assert shown(screen)["summary"].splitlines()[:2] == [
            "FAILED · RTO not measured · RPO 1 min 30 s",
            "failure: verification failed: api_access_log has rows",
        ]


async def test_wizard_starts_a_drill_after_the_typed_host_name_and_follows_it(action_app):
    app = action_app()
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await ready(pilot)
        screen = await open_wizard(pilot)
        assert screen.query_one(StatusWord).word == "READY"
        assert [r.state for r in screen.query_one(StepList).rows] == ["pending"] * 7
        assert "overwrites science's database (volume" in shown(screen)["intro"]
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert app.screen.typed == "science"
        await pilot.press(*"science", "enter")
        await wait_for(pilot, lambda: screen.attachment is not None, timeout=15)
        assert app.screen is screen
        run = screen.attachment.run
        await wait_for(pilot, lambda: screen.attachment.ended, timeout=15)
        await pilot.pause(0.1)
        assert screen.query_one(StatusWord).word == "PASSED"
        assert [r.state for r in screen.query_one(StepList).rows] == ["done"] * 7
        summary = shown(screen)["summary"].splitlines()
        assert summary[0].startswith("PASSED · RTO not measured")  # the test plan verifies nothing
        assert summary[-1] == f"report: {run.path / 'report.md'}"
        assert f"drill {run.id}: PASSED" in output_joined(app)
        assert any("PASSED" in n.message for n in app._notifications)


async def test_wizard_typed_mismatch_is_refused_and_recorded(action_app):
    app = action_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot)
        await open_wizard(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press(*"scince", "enter")
        await wait_for(pilot, lambda: "drill refused" in output_joined(app), timeout=10)
        assert "confirmation did not match: type 'science' to confirm" in output_joined(app)
        assert isinstance(app.screen, DrillScreen) and app.screen.attachment is None
    drills = RunStore(action_app.config.state_dir, "drills").all()
    assert [d.state for d in drills] == ["refused"]  # recorded, never started


async def test_read_only_wizard_dims_start_and_says_why(action_app):
    app = action_app(read_only=True)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await ready(pilot)
        screen = await open_wizard(pilot)
        assert not screen.active_bindings["s"].enabled
        assert "read-only: no drill can start from this console" in shown(screen)["hint"]
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, DrillScreen)
        assert any("drill refused: read-only mode" in n.message for n in app._notifications)
    assert RunStore(action_app.config.state_dir, "drills").all() == []


async def test_an_interrupted_drill_offers_resume_and_resumes(action_app):
    app = action_app()
    run = tui_runs.create_run(action_app.config, "drill", tui_runs.DRILL, kind="drills")
    steps = run.record()["steps"]
    for step in steps[:2]:
        step |= {"state": "done", "started_at": "2026-11-25T05:00:00+00:00", "finished_at": "2026-11-25T05:00:01+00:00"}
    steps[2] |= {"state": "running", "started_at": "2026-11-25T05:00:01+00:00"}
    run.update(
        state="running",
        pid=2**22 + 7,
        current_step=2,
        steps=steps,  # its supervisor died
        started_at="2026-11-25T05:00:00+00:00",
        last_activity="2026-11-25T05:00:02+00:00",
    )
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot)
        assert (
            f"drill {run.id} was interrupted at step 3/7: restore: test step: d, then u, resumes it"
            in output_joined(app)
        )
        screen = await open_wizard(pilot)
        assert screen.run.id == run.id and screen.query_one(StatusWord).word == "INTERRUPTED"
        assert [r.state for r in screen.query_one(StepList).rows][:4] == ["done", "done", "interrupted", "pending"]
        assert "u resumes at step 3/7: restore: test step" in shown(screen)["hint"]
        assert screen.active_bindings["u"].enabled
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.attachment is not None, timeout=15)
        await wait_for(pilot, lambda: screen.attachment.ended, timeout=15)
        await pilot.pause(0.1)
        assert screen.query_one(StatusWord).word == "PASSED"
        assert f"drill {run.id} resumed at" in output_joined(app)
    assert "resumed" in [r["event"] for r in audit.read(action_app.config.state_dir)]


async def test_history_lists_drills_with_the_rto_trend_and_opens_a_report(action_app):
    app = action_app()
    config = action_app.config
    tui_runs.finished_drill(config, rto=40.0, started="2026-11-01T02:00:00+00:00")
    tui_runs.finished_drill(config, outcome="failed", failed_verify=True, started="2026-11-08T02:00:00+00:00")
    newest = tui_runs.finished_drill(config, rto=52.5, started="2026-11-15T02:00:00+00:00")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.reports)
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(SteadyTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[:4] for r in rows] == [
            ["2026-11-15 02:00", "PASSED", "52 s", "1 min 30 s"],
            ["2026-11-08 02:00", "FAILED", "—", "1 min 30 s"],
            ["2026-11-01 02:00", "PASSED", "40 s", "1 min 30 s"],
        ]
        assert rows[0][4] == newest.id
        assert screen.query_one(".detail-summary").text == "3 drills on record, 2 passed"
        assert screen.query_one(Trend)._values == (40.0, 52.5)
        assert "oldest → newest: the last 52 s, a full block 52 s" in screen.query_one(".trend-label").text
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen))
        markdown = app.screen.query_one(Markdown)
        await wait_for(pilot, lambda: f"Restore drill {newest.id}: PASSED" in markdown.source)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)


async def test_history_with_no_drill(action_app):
    app = action_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("h")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, HistoryScreen)
                and "no drill on record" in app.screen.query_one(".detail-summary").text
            ),
        )
        assert not app.screen.query_one(Trend).display


def test_last_drill_line():
    assert last_drill_line(None) == "no drill on record"
    drill = {"drill_id": "x", "outcome": "passed", "age_seconds": 3 * 86400 + 60, "rto_seconds": 45.2}
    assert last_drill_line(drill) == "last drill passed 3 days ago (RTO 45 s)"
    assert (
        last_drill_line(drill | {"outcome": "failed", "rto_seconds": None, "age_seconds": 7200})
        == "last drill failed 2 hours ago"
    )


async def test_restore_panel_shows_the_last_drill(make_app):
    app = make_app(tui_fakes.healthy())
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        assert "last drill passed 3 days ago (RTO 45 s)" in panel_text(app, "restore")
    app = make_app(tui_fakes.troubled())
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        assert "no drill on record" in panel_text(app, "restore")

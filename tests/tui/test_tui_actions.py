"""The action keys with a real ActionService on a temporary state_dir: preflight, confirmation,
detached runs followed live, refusals, cancel, re-attach and quitting while attached.

Plans are ``sh -c`` steps on a local host (see :mod:`tui_runs`); the supervisors are real.
"""

from __future__ import annotations

import tui_runs
from textual.widgets import Button, Input
from tui_helpers import answer_time, header_text, output_joined, ready, wait_for

from montagu_console.actions import audit
from montagu_console.actions.runs import RunStore
from montagu_console.actions.service import ActionRefused
from montagu_console.tui.messages import RunUpdated
from montagu_console.tui.runs import LOG_LINES
from montagu_console.tui.screens.confirm import ConfirmScreen
from montagu_console.tui.screens.detail import DetailScreen
from montagu_console.tui.screens.help import HelpScreen
from montagu_console.tui.screens.main import MainScreen
from montagu_console.tui.screens.run import RunScreen
from montagu_console.tui.widgets.log import RunLog
from montagu_console.tui.widgets.steps import StepList

ANSWER_BOUND = 10.0  # a key unanswered this long means the console hangs (a bound, not a speed figure)
LONG = [("prepare", "echo preparing"), ("copy", "for i in $(seq 1 600); do echo copied part $i; sleep 0.05; done")]
# a line wider than the log (a horizontal scrollbar must not stop the log following its end), then 40 lines
WIDE = [
    ("prepare", "echo preparing"),
    ("copy", f"echo {'x' * 150}; for i in $(seq 1 40); do echo copied part $i; done"),
    ("finish", "echo finished"),
]


def runs(app) -> list:
    return RunStore(app.config.state_dir).all()


async def confirm_shown(pilot) -> ConfirmScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), timeout=10)
    await pilot.pause()
    return pilot.app.screen


async def test_read_only_dims_the_action_keys_and_the_service_refuses(action_app):
    app = action_app(read_only=True)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(pilot)
        assert "READ-ONLY" in header_text(app)
        active = app.screen.active_bindings
        assert [active[k].enabled for k in "bnrc"] == [False] * 4  # dimmed in the footer
        for key in "bnr":
            await pilot.press(key)
        await wait_for(pilot, lambda: output_joined(app).count("refused: read-only mode") == 3)
        await pilot.press("c")
        out = output_joined(app)
        for action in ("base-backup", "nightly-recover", "restore"):
            assert f"{action} refused: read-only mode (--read-only or read_only: true in the config)" in out
        assert "c: cancel refused: read-only mode" in out
        assert "Traceback" not in out
        assert sum("refused: read-only" in n.message for n in app._notifications) == 4
        assert not isinstance(app.screen, ConfirmScreen)
    assert runs(app) == []
    refused = [r for r in audit.read(app.config.state_dir) if r["event"] == "refused"]
    assert sorted(r["action"] for r in refused) == ["base-backup", "nightly-recover", "restore"]


async def test_yes_no_question_shows_the_preflight_and_defaults_to_no(action_app):
    app = action_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("b")
        assert "b: base backup of montagu on annex: checking…" in output_joined(app)
        modal = await confirm_shown(pilot)
        text = modal.query_one(".confirm-text").text
        assert "barman backup montagu --wait on annex" in text
        assert all(f"✓ {fact}" in text for fact in tui_runs.PREFLIGHT_FACTS)
        assert isinstance(app.focused, Button) and app.focused.id == "no"
        await pilot.press("enter")  # on the focused button: No
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert "b: base backup of montagu: not started (cancelled at the confirmation)" in output_joined(app)
    assert runs(app) == []


async def test_escape_cancels_a_typed_confirmation(action_app):
    app = action_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("r")
        modal = await confirm_shown(pilot)
        assert "Type science to confirm:" in modal.query_one(".confirm-ask").text
        assert isinstance(app.focused, Input)
        await pilot.press(*"scien", "escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert "not started (cancelled at the confirmation)" in output_joined(app)
    assert runs(app) == []


async def test_a_typed_confirmation_that_does_not_match_is_refused(action_app):
    app = action_app()
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("n")
        modal = await confirm_shown(pilot)
        await pilot.press(*"montagu_db_volumx")
        assert modal.query_one(".confirm-match").text == "✗ does not match montagu_db_volume"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "confirmation did not match" in output_joined(app), timeout=10)
        assert (
            "nightly-recover refused: confirmation did not match: type 'montagu_db_volume' to confirm"
            in output_joined(app)
        )
        assert any("confirmation did not match" in n.message for n in app._notifications)
    assert runs(app) == []
    assert [r["event"] for r in audit.read(app.config.state_dir)] == ["refused"]


async def test_a_refusal_or_a_failed_preflight_is_one_line(action_app):
    async def busy(service_, pool):
        raise ActionRefused("nightly-recover refused: container barman-replay-wal is running on annex")

    app = action_app(preflight=busy)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: "barman-replay-wal is running" in output_joined(app), timeout=10)
        assert isinstance(app.screen, MainScreen)

    async def broken(service_, pool):
        raise OSError("annex: connection refused")

    app = action_app(preflight=broken)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: "the preflight failed" in output_joined(app), timeout=10)
        out = output_joined(app)
        assert "base-backup: the preflight failed: OSError: annex: connection refused" in out
        assert "Traceback" not in out


async def test_a_confirmed_action_runs_detached_and_the_run_view_follows_it(action_app):
    app = action_app(steps={"nightly-recover": WIDE})
    collector = app.collector
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await ready(pilot)
        polls = collector.calls["starport"]
        await pilot.press("n")
        await confirm_shown(pilot)
        await pilot.press(*"montagu_db_volume")
        assert app.screen.query_one(".confirm-match").text == "✓ matches"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), timeout=15)
        run = runs(app)[0]
        assert app.attached_runs == [run] or run.state == "succeeded"
        await wait_for(pilot, lambda: not app.attached_runs, timeout=15)
        await pilot.pause(0.1)
        rows = app.screen.query_one(StepList).rows
        assert [(r.name, r.state) for r in rows] == [("prepare", "done"), ("copy", "done"), ("finish", "done")]
        log = app.screen.query_one(RunLog)
        assert "copied part 40" in log.lines and "$ sh -c 'echo preparing'" in log.lines
        assert 0 < log.max_scroll_y == log.scroll_y  # it follows the end
        assert f"run {run.id} (nightly-recover): SUCCEEDED after" in output_joined(app)
        assert any("SUCCEEDED" in n.message for n in app._notifications)
        await wait_for(pilot, lambda: collector.calls["starport"] > polls)  # the affected panel polled at once
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert run.state == "succeeded"
    assert next(r["event"] for r in audit.read(app.config.state_dir)) == "started"


async def test_a_failed_step_is_named_with_its_error(action_app):
    app = action_app(steps={"base-backup": [("check", "echo ok"), ("backup", "echo disk full >&2; exit 3")]})
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("b")
        await confirm_shown(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: "FAILED" in output_joined(app), timeout=15)
        out = output_joined(app)
        assert "(base-backup): FAILED after" in out and "at step 'backup': `sh -c" in out and "exited 3" in out
        await pilot.pause(0.1)
        assert [r.state for r in app.screen.query_one(StepList).rows] == ["done", "failed"]
        assert "disk full" in app.screen.query_one(RunLog).lines


async def test_a_refusal_on_a_detail_view_also_toasts(action_app):
    app = action_app(read_only=True)
    async with app.run_test(notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("enter", "b")
        await wait_for(pilot, lambda: any("read-only" in n.message for n in app._notifications), timeout=10)
        assert isinstance(app.screen, DetailScreen)


async def test_re_attach_shows_a_run_started_before(action_app, fake_supervisor):
    app = action_app()
    run = tui_runs.create_run(action_app.config, "nightly-recover")
    fake_supervisor(run, rate=50, step=2)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.attached_runs == [run], timeout=5)
        assert f"re-attached to run {run.id} (nightly-recover, step 3/6: step 3)" in output_joined(app)
        assert app.screen.active_bindings["v"].enabled and app.screen.active_bindings["c"].enabled
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        rows = app.screen.query_one(StepList).rows
        assert [r.state for r in rows] == ["done", "done", "running", "pending", "pending", "pending"]
        assert rows[2].current
        log = app.screen.query_one(RunLog)
        await wait_for(pilot, lambda: any(line.startswith("line ") for line in log.lines), timeout=5)


async def test_cancel_stops_a_real_supervisor(action_app):
    app = action_app(steps={"nightly-recover": LONG})
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("n")
        await confirm_shown(pilot)
        await pilot.press(*"montagu_db_volume", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), timeout=15)
        run = app.screen.attachment.run
        await wait_for(pilot, lambda: "copied part 2" in app.screen.query_one(RunLog).lines, timeout=10)
        await pilot.press("c")
        modal = await confirm_shown(pilot)
        assert modal.title_text == f"Cancel run {run.id}?"
        assert "now at step 2/2: copy" in modal.query_one(".confirm-text").text
        assert app.focused.id == "no"
        await pilot.press("y")
        await wait_for(pilot, lambda: run.state == "cancelled", timeout=10)
        await wait_for(pilot, lambda: "CANCELLED" in output_joined(app), timeout=5)
        assert f"run {run.id}: cancel sent" in output_joined(app)
        await pilot.pause(0.1)
        assert [r.state for r in app.screen.query_one(StepList).rows] == ["done", "cancelled"]
        assert not app.screen.active_bindings["c"].enabled
    events = [(r["event"], r.get("action")) for r in audit.read(app.config.state_dir) if r.get("run_id") == run.id]
    assert ("cancel requested", "nightly-recover") in events
    assert events[-1] == ("finished", "nightly-recover")


async def test_quit_asks_while_a_run_is_attached(action_app, fake_supervisor):
    app = action_app()
    run = tui_runs.create_run(action_app.config, "base-backup", [("barman backup", "true")])
    fake_supervisor(run)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.attached_runs == [run], timeout=5)
        await pilot.press("q")
        modal = await confirm_shown(pilot)
        text = modal.query_one(".confirm-text").text
        assert f"run {run.id}: base-backup, step 1/1: barman backup" in text
        assert "It continues detached; the next console re-attaches to it." in text
        assert app.focused.id == "no"
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, MainScreen)
        await pilot.press("q")
        await confirm_shown(pilot)
        await pilot.press("y")
        await pilot.pause()
        assert not app.is_running
    assert run.state == "running"  # it goes on, detached


async def test_log_streaming_at_10000_lines_a_second_keeps_answering_keys(action_app, fake_supervisor):
    """While a run's log grows at 10,000 lines/s the run view scrolls, opens and closes the help, and
    ends with the whole log followed: the newest lines, bounded to LOG_LINES, in batches.

    How fast the keys answer is a figure for ``bench/tui_stream.py`` (it depends on the machine's
    load); here a key is only required to be answered within a generous bound."""
    app = action_app()
    run = tui_runs.create_run(action_app.config, "nightly-recover")
    fake_supervisor(run, rate=10_000, seconds=4, step=1)
    batches: list[int] = []

    def hook(message):
        if isinstance(message, RunUpdated):
            batches.append(len(message.lines))

    async with app.run_test(size=(120, 36), message_hook=hook) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.attached_runs == [run], timeout=5)
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        rounds = 0
        while app.attached_runs and rounds < 40:
            await pilot.press("up", "down")  # scroll the log being written
            await answer_time(
                app, "question_mark", "?", lambda: isinstance(app.screen, HelpScreen), timeout=ANSWER_BOUND
            )
            await pilot.pause()
            await answer_time(app, "escape", None, lambda: isinstance(app.screen, RunScreen), timeout=ANSWER_BOUND)
            await pilot.pause()
            rounds += 1
        assert rounds >= 1  # the keys were pressed while the log was streaming
        await wait_for(pilot, lambda: not app.attached_runs, timeout=10)
        log = app.screen.query_one(RunLog)
        assert log.line_count == LOG_LINES and log.lines[-1].startswith("fake supervisor: ")
    lines = sum(batches)
    assert lines >= 35_000
    assert len(batches) < lines / 500  # one message per batch of lines, never one per line

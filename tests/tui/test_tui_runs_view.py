"""The tailer and the pure run/drill presentation, without an app."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

import tui_runs

from montagu_console.tui.present_runs import fmt_elapsed, outcome_line, progress_view, rto_trend, step_line, step_rows
from montagu_console.tui.tailer import LogTail, as_shown, follow

NOW = datetime(2026, 11, 25, 6, 0, 30, tzinfo=UTC)


def plain(lines) -> list[str]:
    return [line.plain for line in lines]


def test_log_tail_returns_complete_lines_and_what_a_terminal_shows(tmp_path):
    log = tmp_path / "log"
    tail = LogTail(log)
    assert tail.read() == []  # no file yet
    log.write_bytes(b"first\nsecond, still being writ")
    assert plain(tail.read()) == ["first"]
    with open(log, "ab") as f:
        f.write(b"ten\n  1,000  10%  1.00MB/s  0:00:09\r  5,000  50%  1.00MB/s  0:00:05\r\n\xc3")
    assert plain(tail.read()) == ["second, still being written", "  5,000  50%  1.00MB/s  0:00:05"]
    with open(log, "ab") as f:
        f.write(b"\xa9t\xc3\xa9\nno newline at the end")  # a character split across two reads
    assert plain(tail.read()) == ["été"]
    assert plain(tail.rest()) == ["no newline at the end"]
    assert as_shown("a\rb\r") == "b"


def test_log_tail_starts_at_most_backlog_bytes_back_on_a_whole_line(tmp_path):
    log = tmp_path / "log"
    log.write_text("".join(f"line {i:04d}\n" for i in range(1000)))  # 10 bytes a line
    lines = LogTail(log, backlog=95).read()
    assert plain(lines) == [f"line {i:04d}" for i in range(991, 1000)]


def test_log_tail_skips_ahead_when_the_log_outgrew_the_backlog(tmp_path):
    log = tmp_path / "log"
    log.write_text("start\n")
    tail = LogTail(log, backlog=95)
    assert plain(tail.read()) == ["start"]
    with open(log, "a") as f:
        f.write("".join(f"line {i:04d}\n" for i in range(1000)))
    lines = plain(tail.read())
    assert lines[0] == f"[... {6 + 10_000 - 95 - 6} bytes of the log skipped]"
    assert lines[1:] == [f"line {i:04d}" for i in range(991, 1000)]


def test_log_tail_cleans_what_it_reads_and_never_opens_a_fifo(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"\x1b]0;owned\x07title \x1b[2Jclear \x1b]52;c;aGk=\x07clip \xff\x00 end\n")
    (line,) = tail_lines = LogTail(log).read()
    assert "\x1b" not in line.plain and "\x00" not in line.plain and "\x07" not in line.plain
    assert line.plain.endswith(" end") and "title" in line.plain and "clip" in line.plain
    assert len(tail_lines) == 1
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    tail = LogTail(fifo)
    assert tail.read() == [] and "not a regular file" in (tail.problem or "")


def test_follow_posts_one_message_per_batch_until_the_supervisor_has_gone(tmp_path):
    config = tui_runs.write_config(tmp_path)
    run = tui_runs.create_run(config, "base-backup", [("barman backup", "true")])
    run.log_path.write_text("".join(f"line {i}\n" for i in range(3000)))
    run.update(state="succeeded", pid=None, finished_at="2026-11-25T06:00:00+00:00")
    posted = []
    follow(run, posted.append, threading.Event(), interval=0.01)
    assert len(posted) == 1
    message = posted[0]
    assert message.ended and message.state == "succeeded" and len(message.lines) == 3000
    assert message.record["state"] == "succeeded"


def test_follow_stops_when_told(tmp_path, fake_supervisor):
    config = tui_runs.write_config(tmp_path)
    run = tui_runs.create_run(config, "base-backup", [("barman backup", "true")])
    fake_supervisor(run, rate=1000)
    stop = threading.Event()
    posted = []
    thread = threading.Thread(target=follow, args=(run, posted.append, stop), kwargs={"interval": 0.05})
    thread.start()
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert not any(m.ended for m in posted)


def record(**fields) -> dict:
    steps = [
        {
            "name": "prepare",
            "state": "done",
            "started_at": "2026-11-25T06:00:00+00:00",
            "finished_at": "2026-11-25T06:00:00.400+00:00",
        },
        {"name": "copy", "state": "running", "started_at": "2026-11-25T06:00:00.400+00:00"},
        {"name": "finish", "state": "pending"},
    ]
    return {
        "action": "nightly-recover",
        "steps": steps,
        "current_step": 1,
        "started_at": "2026-11-25T06:00:00+00:00",
    } | fields


def test_step_rows_while_running_and_after_the_end():
    rows = step_rows(record(), "running", NOW)
    assert [(r.state, r.elapsed, r.current) for r in rows] == [
        ("done", "0 s", False),
        ("running", "30 s", True),
        ("pending", "", False),
    ]
    assert step_line(rows[1]) == "2/3 ▶ running     30 s        copy"
    ended = record(finished_at="2026-11-25T06:00:10.400+00:00")
    assert [r.state for r in step_rows(ended, "cancelled", NOW)] == ["done", "cancelled", "skipped"]
    assert [r.state for r in step_rows(ended, "interrupted", NOW)] == ["done", "interrupted", "pending"]
    assert step_rows(ended, "cancelled", NOW)[1].elapsed == "10 s"  # up to the end, not to now


def test_progress_from_the_run_or_from_the_science_panel_during_a_redo():
    running = record(progress={"percent": 42.0, "eta_seconds": 185, "label": "rsync 85.3MB/s"})
    view = progress_view(running, "running")
    assert (view.percent, view.text) == (42.0, "42% · rsync 85.3MB/s · ETA 3 min 05 s")
    redo = record(action="drill", progress={"percent": None, "eta_seconds": None, "label": "redo at 0/2533D0A8"})
    view = progress_view(redo, "running", {"phase": "redo", "percent": 61.0, "eta_seconds": 600})
    assert (view.percent, view.text) == (61.0, "61% · redo (science panel), redo at 0/2533D0A8 · ETA 10 min 00 s")
    assert progress_view(record(), "running").text == "no progress figures from this step"
    assert progress_view(running, "succeeded").percent is None


def test_outcome_lines():
    failed = record(
        state="failed", failed_step="copy", error="`rsync` exited 23", finished_at="2026-11-25T06:02:05+00:00"
    )
    assert (
        outcome_line("R1", failed, "failed", NOW)
        == "run R1 (nightly-recover): FAILED after 2 min 05 s at step 'copy': `rsync` exited 23"
    )
    assert outcome_line("R1", record(), "interrupted", NOW) == (
        "run R1 (nightly-recover): INTERRUPTED after 30 s at step 2/3: copy: its supervisor stopped without "
        "recording an end"
    )
    assert fmt_elapsed(7300) == "2 h 01 min"


def test_rto_trend_keeps_passed_drills_in_order():
    reports = [
        {"outcome": "passed", "rto_seconds": 40.0},
        {"outcome": "failed", "rto_seconds": None},
        {"outcome": "passed", "rto_seconds": 52},
    ]
    assert rto_trend(reports) == (40.0, 52.0)


async def test_progress_shown_before_its_row_is_mounted_is_drawn_once_it_is():
    """A screen may show progress from its own on_mount, before the row's bar and text exist."""
    from textual.app import App
    from textual.widgets import ProgressBar

    from montagu_console.tui.present_runs import ProgressView
    from montagu_console.tui.widgets.steps import ProgressRow
    from montagu_console.tui.widgets.text import Line

    row = ProgressRow()
    row.show(ProgressView(42.0, "barman recover: copying 42 %"))  # nothing mounted yet

    class Host(App[None]):
        def compose(self):
            yield row

    async with Host().run_test(size=(80, 5)) as pilot:
        await pilot.pause()
        assert row.display and row.query_one(ProgressBar).display
        assert row.query_one(ProgressBar).progress == 42.0
        assert row.query_one(".progress-text", Line).text == "barman recover: copying 42 %"
        row.show(ProgressView(None, ""))
        await pilot.pause()
        assert not row.display and not row.query_one(ProgressBar).display

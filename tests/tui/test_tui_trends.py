"""The history in the TUI: every poll's panels written (off the UI thread, one warning when the
history cannot be written), and ``t``: the trend screen over hours and days, its tables, the status
changes marked, Escape back."""

from __future__ import annotations

import json
from datetime import timedelta

import tui_fakes
from tui_helpers import output_joined, ready, wait_for

from montagu_console.actions.runs import RunStore
from montagu_console.history import History, Reading
from montagu_console.tui.screens.main import MainScreen
from montagu_console.tui.screens.trends import SPANS, TrendSection, TrendsScreen, readings_section, series_of

NOW = tui_fakes.NOW  # 07:09:05 UTC on the frozen clock; the tests pin TZ=UTC


def lag_readings() -> list[Reading]:
    """annex's WAL lag every 5 minutes from 03:00 to 06:55: WARNING from 05:10 to 05:40, OK again after."""
    out = []
    start = NOW.replace(hour=3, minute=0, second=0)
    for i in range(48):
        at = start + timedelta(minutes=5 * i)
        warning = at.hour == 5 and 10 <= at.minute <= 40
        lag = 90_000_000 if warning else 16_384
        status = "WARNING" if warning else "OK"
        out.append(Reading(at, "wal", None, status, f"lag {lag}", {"lag_bytes": lag}))
        out.append(Reading(at, "wal", "annex", status, f"lag {lag}", {"lag_bytes": lag}))
    return out


def seed(state_dir) -> None:
    """Readings, two proofs (one failed) and two drills in ``state_dir``."""
    History(state_dir).write(lag_readings(), now=NOW)
    proofs = [
        {"proof_id": "p1", "proven_at": "2026-11-23T02:31:00+00:00", "outcome": "passed"}
        | {"data_newest": "2026-11-23T02:00:00+00:00", "checks": [], "reason": None},
        {"proof_id": "p2", "proven_at": "2026-11-24T02:31:00+00:00", "outcome": "failed"}
        | {"data_newest": None, "checks": [], "reason": "rows: 0, expected > 0"},
    ]
    (state_dir / "proofs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in proofs))
    for started, outcome, rto, rpo in (("2026-08-20T02:00:00+00:00", "passed", 45.0, 94.0),) + (
        ("2026-11-20T02:00:00+00:00", "failed", None, None),
    ):
        run = RunStore(state_dir, "drills").create("drill", {"steps": [{"name": "restore"}]})
        run.update(state="succeeded" if outcome == "passed" else "failed", started_at=started)
        report = {"drill_id": run.id, "outcome": outcome, "started_at": started, "rto_seconds": rto, "rpo_seconds": rpo}
        (run.path / "report.json").write_text(json.dumps(report))


def sections(app) -> dict[str, str]:
    return {s.id.removeprefix("trend-"): s.text for s in app.screen.query(TrendSection)}


async def open_trends(pilot) -> None:
    await ready(pilot)
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TrendsScreen))
    await wait_for(pilot, lambda: _note(pilot.app).startswith("from "))


def _note(app) -> str:
    return app.screen.query_one(".trend-note").text


async def test_t_opens_the_trends_with_the_values_and_the_changes_marked_and_escape_goes_back(make_app):
    app = make_app()
    seed(app.config.state_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_trends(pilot)
        lag = sections(app)["lag-0"]
        title, bars, marks, axis, *table = lag.splitlines()
        assert title == "WAL lag · annex (full column: WARNING at 64.0 MiB)"
        # 24 columns, 08:00 yesterday to 07:00 today: annex's readings from 03:00 to 06:55
        assert bars == "·" * 19 + "▁▁█▁·"  # 05:00 is the highest: a full column
        assert marks == " " * 21 + "O"  # the status changed in 05:00 and it ended OK
        assert axis.startswith("Mon 08:00") and axis.endswith("07:00")
        assert table[:4] == [
            "06:00   16.0 KiB OK",
            "05:00   85.8 MiB WARNING  ◆ 2 changes, now OK",
            "04:00   16.0 KiB OK",
            "03:00   16.0 KiB OK",
        ]
        proofs = sections(app)["proofs"]
        assert "02:31  failed   rows: 0, expected > 0" in proofs  # the failed one, today
        assert "✗" in proofs.splitlines()[1]
        drills = sections(app)["drills"]
        assert "Nov 20 ◆failed  RTO     unknown RPO     unknown" in drills
        assert "Aug 20  passed  RTO        45 s RPO  1 min 34 s" in drills
        assert drills.splitlines()[1:3] == ["█?  RTO", "█?  RPO"]  # the failed drill measured neither

        await pilot.press("t")  # the days
        await wait_for(pilot, lambda: "Nov 24" in sections(app)["lag-0"])
        days = sections(app)["lag-0"].splitlines()
        assert days[3].startswith("Oct 26") and days[3].endswith("Nov 24")
        assert days[4].startswith("Nov 24  85.8 MiB WARNING  ◆ 2 changes, now OK")
        assert "Nov 23 passed   data Nov 23 02:00" in sections(app)["proofs"]

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_each_poll_is_written_to_the_history(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        history = History(app.config.state_dir)
        await wait_for(pilot, lambda: len({r["panel"] for r in history.rows()}) == 4)
        rows = history.rows()
        # the fakes' results carry no instance rows (the real collector's do: see the lab test)
        assert sorted(r["panel"] for r in rows) == ["barman", "restore", "starport", "wal"]
        assert all(r["at"] == tui_fakes.TAKEN.isoformat() for r in rows)
        before = len(rows)
        await pilot.press("R")  # the same results, the same minute: nothing new is due
        await wait_for(pilot, lambda: all(app.collector.calls[n] == 2 for n in app.results))
        await pilot.pause(0.2)
        assert len(history.rows()) == before


async def test_a_history_that_cannot_be_written_is_one_warning_line(make_app):
    app = make_app()
    (app.config.state_dir / "history.sqlite3").mkdir()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: "WARNING: history" in output_joined(app))
        for _ in range(3):
            await pilot.press("R")
            await pilot.pause(0.1)
        await wait_for(pilot, lambda: all(app.collector.calls[n] >= 3 for n in app.results))
        await pilot.pause(0.2)
        text = output_joined(app)
        assert text.count("WARNING: history") == 1
        assert "history.sqlite3: is a directory, not a database" in text
        assert app.results["barman"].status.value == "OK"  # the panels are not affected

        await pilot.press("t")  # the trends say why they are empty
        await wait_for(pilot, lambda: "WARNING" in _note(app))
        assert "is a directory" in _note(app)


def test_a_reading_section_shows_every_column_with_data_in_its_table():
    config = tui_fakes.make_config()
    [_, lag, nightly] = series_of(config)
    span = SPANS[0]
    start = span.start(NOW)
    buckets = [
        {
            "instance": "annex",
            "bucket": 23,
            "value": 2_000_000,
            "worst": "OK",
            "first": "OK",
            "last": "OK",
            "changes": 0,
        },
        {"instance": "annex", "bucket": 22, "value": None, "worst": "UNKNOWN", "first": "OK", "last": "UNKNOWN"}
        | {"changes": 1},
    ]
    chart, table = readings_section(lag, buckets, span, start)
    bars, marks, axis = chart.splitlines()
    assert axis == "Mon 08:00" + "07:00".rjust(24 - 9)
    assert bars == "·" * 22 + "?▁" and marks == " " * 22 + "U"
    assert table.splitlines() == ["07:00    1.9 MiB OK", "06:00    unknown UNKNOWN  ◆ OK→UNKNOWN"]
    assert readings_section(nightly, [], span, start)[1] == "no reading in the last 24 hours"

"""The history database (montagu_console/history.py): schema migration, retention, the TUI's
once-a-minute-or-on-change rule, --since, an unwritable history, and what --json and --csv read back."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from montagu_console import history, procs
from montagu_console.actions.runs import RunStore
from montagu_console.config import parse_config
from montagu_console.errors import ConsoleError
from montagu_console.history import (
    History,
    HistoryError,
    PanelRecorder,
    Reading,
    due,
    from_csv,
    history_command,
    parse_since,
    readings_of,
    record_check,
    to_table,
)
from montagu_console.snapshot import InstanceResult, PanelResult, Snapshot, Status

NOW = datetime(2026, 11, 24, 7, 9, 5, tzinfo=UTC)

CONFIG_YAML = """\
hosts:
  annex: {transport: local}
barman:
  - {name: annex, host: annex}
  - {name: aws, host: annex}
nightly: {host: annex, volume: montagu_db_volume}
starport: {host: annex}
science: {host: annex, container: montagu-db}
state_dir: STATE
history: {retention_days: RETENTION, panel_every_seconds: 60}
"""

# The schema as the first version of the history shipped it (before records and their index).
V1_SCHEMA = """
CREATE TABLE readings (
    at TEXT NOT NULL, t REAL NOT NULL, panel TEXT NOT NULL, instance TEXT,
    status TEXT NOT NULL, summary TEXT NOT NULL, facts TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX readings_t ON readings (t);
PRAGMA user_version = 1;
"""


def config_text(state_dir: Path, retention_days: int = 30) -> str:
    return CONFIG_YAML.replace("STATE", str(state_dir)).replace("RETENTION", str(retention_days))


def config_at(state_dir: Path, retention_days: int = 30):
    return parse_config(config_text(state_dir, retention_days), state_dir.parent / "config.yml")


def panel(name, status, summary, facts, at=NOW, instances=()) -> PanelResult:
    return PanelResult(name, status, summary, facts, at, instances=tuple(instances))


def wal(at=NOW, annex=Status.OK, aws=Status.OK, lag=16_384) -> PanelResult:
    rows = [
        InstanceResult("annex", "annex", panel("wal", annex, "annex streaming", {"lag_bytes": lag}, at)),
        InstanceResult("aws", "aws", panel("wal", aws, "aws streaming", {"lag_bytes": 2048}, at)),
    ]
    worst = Status.worst([annex, aws])
    return panel("wal", worst, f"annex {annex}; aws {aws}", {"lag_bytes": lag, "slot_name": "barman"}, at, rows)


def snapshot(at=NOW) -> Snapshot:
    return Snapshot(
        at,
        {
            "barman": panel("barman", Status.OK, "2 backups", {"last_backup_age_seconds": 300, "server": "x"}, at),
            "wal": wal(at),
            "starport": panel(
                "starport", Status.WARNING, 'nightly copy 30 h old, "late"', {"nightly_age_seconds": 1e5}, at
            ),
            "restore": panel("restore", Status.OK, "ready", {"db_accepting": True, "percent": None}, at),
        },
    )


# -- the schema --------------------------------------------------------------------------------


def test_a_version_1_file_is_migrated_on_open_and_keeps_its_rows(tmp_path):
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute(
        "INSERT INTO readings VALUES (?, ?, 'barman', NULL, 'OK', 'kept from v1', '{\"backups_available\": 2}')",
        (NOW.isoformat(), NOW.timestamp()),
    )
    db.commit()
    db.close()

    h = History(tmp_path, retention_days=36500)
    rows = h.rows()
    assert [(r["panel"], r["status"], r["summary"], r["facts"]) for r in rows] == [
        ("barman", "OK", "kept from v1", {"backups_available": 2})
    ]
    assert h.import_records(now=NOW) == 0  # the records table of version 2 is there
    h.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION == 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"readings", "records", "readings_t", "readings_panel", "records_t"} <= tables
    db.close()


def test_a_schema_newer_than_this_console_is_one_line_and_left_alone(tmp_path):
    db = sqlite3.connect(tmp_path / "history.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(HistoryError) as e:
        History(tmp_path).write([])
    assert "schema version 99 is newer than this console's 2" in str(e.value) and "\n" not in str(e.value)


def test_the_file_is_created_0600(tmp_path):
    History(tmp_path / "state").write([])
    assert (tmp_path / "state" / "history.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


# -- retention ---------------------------------------------------------------------------------


def test_rows_older_than_the_retention_are_pruned_on_write(tmp_path):
    h = History(tmp_path, retention_days=30)
    old = Reading(NOW - timedelta(days=31), "barman", None, "OK", "a month ago", {})
    kept = Reading(NOW - timedelta(days=29), "barman", None, "WARNING", "within the window", {})
    h.write([old, kept], now=NOW - timedelta(days=2))
    assert [r["summary"] for r in h.rows()] == ["a month ago", "within the window"]
    h.write([Reading(NOW, "barman", None, "OK", "now", {})], now=NOW)
    assert [r["summary"] for r in h.rows()] == ["within the window", "now"]
    h.write([], now=NOW + timedelta(days=2))
    assert [r["summary"] for r in h.rows()] == ["now"]


def test_records_older_than_the_retention_are_neither_imported_nor_kept(tmp_path):
    proofs = [
        {"proof_id": "old", "proven_at": (NOW - timedelta(days=40)).isoformat(), "outcome": "passed"},
        {"proof_id": "new", "proven_at": (NOW - timedelta(days=1)).isoformat(), "outcome": "passed"},
    ]
    (tmp_path / "proofs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in proofs))
    h = History(tmp_path, retention_days=30)
    assert h.import_records(now=NOW) == 1
    assert [r["id"] for r in h.rows()] == ["new"]
    h.import_records(now=NOW + timedelta(days=30))
    assert [r["id"] for r in h.rows()] == []


# -- the TUI's rule: once a minute per panel and instance, and on every change ------------------


def test_due_first_on_a_change_and_once_a_minute():
    assert due(None, "OK", NOW, 60)
    assert not due(("OK", NOW), "OK", NOW + timedelta(seconds=59), 60)
    assert due(("OK", NOW), "OK", NOW + timedelta(seconds=60), 60)
    assert due(("OK", NOW), "WARNING", NOW + timedelta(seconds=1), 60)


def test_the_recorder_writes_each_panel_and_instance_once_a_minute_and_on_change(tmp_path):
    h = History(tmp_path)
    rec = PanelRecorder(h, 60)
    assert rec.offer(wal(NOW)) is None
    assert len(h.rows()) == 3  # the panel, annex, aws
    rec.offer(wal(NOW + timedelta(seconds=10)))
    rec.offer(wal(NOW + timedelta(seconds=20)))
    assert len(h.rows()) == 3  # nothing new within the minute
    rec.offer(wal(NOW + timedelta(seconds=30), annex=Status.WARNING))
    changed = h.rows()[3:]
    # the panel (now WARNING) and annex changed; aws did not, and is not written
    assert [(r["instance"], r["status"]) for r in changed] == [(None, "WARNING"), ("annex", "WARNING")]
    rec.offer(wal(NOW + timedelta(seconds=61)))
    latest = h.rows()[5:]
    # annex back to OK (a change), the panel back to OK (a change), aws: its minute is up
    assert [(r["instance"], r["status"]) for r in latest] == [(None, "OK"), ("annex", "OK"), ("aws", "OK")]


def test_the_recorder_warns_once_while_the_history_cannot_be_written(tmp_path):
    (tmp_path / "history.sqlite3").mkdir()
    rec = PanelRecorder(History(tmp_path), 60)
    first = rec.offer(wal(NOW))
    assert first is not None and first.startswith("WARNING: history ") and "is a directory" in first
    assert "\n" not in first
    assert rec.offer(wal(NOW + timedelta(seconds=61))) is None
    assert rec.offer(wal(NOW + timedelta(seconds=62), annex=Status.CRITICAL)) is None
    (tmp_path / "history.sqlite3").rmdir()
    assert rec.offer(wal(NOW + timedelta(seconds=200))) is None  # written again
    assert len(History(tmp_path).rows()) == 3


# -- --since -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), (" 1h ", 3600)]
)
def test_since_units(text, seconds):
    assert parse_since(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7", "7x", "0d", "-1d", "1.5h", "7 days", "1h2m", "9999999d", "7D"])
def test_a_bad_since_is_one_line(text):
    with pytest.raises(ConsoleError) as e:
        parse_since(text)
    assert "expected a number and m, h, d or w (30m, 12h, 7d, 2w)" in str(e.value)
    assert "\n" not in str(e.value)


def test_since_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(config_text(tmp_path / "state"))
    r = subprocess.run(
        [sys.executable, "-m", "montagu_console", "history", "--since", "3 weeks", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "--since '3 weeks': expected a number" in r.stderr


# -- a history that cannot be written -----------------------------------------------------------


def _warning_of(state_dir: Path) -> str | None:
    return record_check(config_at(state_dir), snapshot())


def test_a_directory_in_place_of_the_database_is_one_warning(tmp_path):
    (tmp_path / "history.sqlite3").mkdir()
    w = _warning_of(tmp_path)
    assert w == (
        f"WARNING: history {tmp_path}/history.sqlite3: is a directory, not a database; "
        "the history was not written (the checks are not affected)"
    )


def test_a_state_dir_that_is_a_file_is_one_warning(tmp_path):
    (tmp_path / "state").write_text("not a directory")
    w = _warning_of(tmp_path / "state")
    assert w is not None and "\n" not in w and "is not a directory" in w


def test_a_corrupt_database_is_one_warning_that_says_what_to_do(tmp_path):
    (tmp_path / "history.sqlite3").write_bytes(b"this is not sqlite\n" * 400)
    w = _warning_of(tmp_path)
    assert w is not None and "\n" not in w and "not a database" in w and "move it aside" in w


def test_a_locked_database_is_given_up_after_the_busy_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "BUSY_TIMEOUT_SECONDS", 0.2)
    History(tmp_path).write([])  # created and migrated
    holder = sqlite3.connect(tmp_path / "history.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        w = _warning_of(tmp_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert w is not None and "\n" not in w and "database is locked" in w


def test_a_read_only_state_dir_is_one_warning():
    """As an operator who may not write to state_dir (root ignores mode bits: the check runs as nobody)."""
    top = Path(tempfile.mkdtemp(prefix="montagu-history-ro-"))  # outside pytest's 0700 tree, for nobody
    state = top / "state"
    state.mkdir()
    config = top / "config.yml"
    config.write_text(config_text(state))
    os.chmod(top, 0o755)
    os.chmod(state, 0o555)
    os.chmod(config, 0o644)
    code = (
        "import sys; from tests.unit.test_history import snapshot; from montagu_console.config import load_config;"
        "from montagu_console.history import record_check;"
        f"print(record_check(load_config({str(config)!r}), snapshot()))"
    )
    as_nobody = {"user": "nobody"} if os.geteuid() == 0 else {}
    try:
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
            **as_nobody,
        )
    finally:
        os.chmod(state, 0o700)
        shutil.rmtree(top)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith(f"WARNING: history {state}/history.sqlite3: ") and line.count("\n") == 0
    assert "not writable" in line and line.endswith("the history was not written (the checks are not affected)")


# -- what is written and read back ---------------------------------------------------------------


def test_a_check_writes_every_panel_and_instance(tmp_path):
    assert _warning_of(tmp_path) is None
    rows = History(tmp_path).rows()
    assert [(r["panel"], r["instance"]) for r in rows] == [
        ("barman", None),
        ("wal", None),
        ("wal", "annex"),
        ("wal", "aws"),
        ("starport", None),
        ("restore", None),
    ]
    wal_row = rows[1]
    assert wal_row["at"] == "2026-11-24T07:09:05+00:00" and wal_row["status"] == "OK"
    assert wal_row["facts"] == {"lag_bytes": 16_384}  # numbers and booleans only: slot_name is not one
    assert rows[5]["facts"] == {"db_accepting": True}


def test_json_and_csv_read_back_what_was_written(tmp_path):
    config = config_at(tmp_path)
    assert record_check(config, snapshot()) is None
    written = History(tmp_path).rows()
    as_json, problem = history_command(config, panels=None, instances=None, since=None, fmt="json")
    assert problem is None and json.loads(as_json) == written
    as_csv, _ = history_command(config, panels=None, instances=None, since=None, fmt="csv")
    assert as_csv.splitlines()[0] == "at,panel,instance,id,status,summary,facts"
    assert from_csv(as_csv) == written
    starport = [r for r in from_csv(as_csv) if r["panel"] == "starport"]
    assert starport[0]["summary"] == 'nightly copy 30 h old, "late"'  # a comma and quotes survive
    assert starport[0]["facts"] == {"nightly_age_seconds": 1e5}
    readings = [r for p in snapshot().panels.values() for r in readings_of(p)]
    assert [(r["panel"], r["instance"], r["status"], r["summary"], r["facts"]) for r in written] == [
        (r.panel, r.instance, r.status, r.summary, r.facts) for r in readings
    ]


def test_filters_by_panel_instance_and_since(tmp_path):
    config = config_at(tmp_path, 36500)
    h = History(tmp_path, retention_days=36500)
    recent = datetime.now(UTC)
    h.write(readings_of(wal(recent - timedelta(days=3))) + readings_of(wal(recent - timedelta(minutes=5))), now=recent)

    def rows(**kw):
        text, _ = history_command(config, fmt="json", **({"panels": None, "instances": None, "since": None} | kw))
        return json.loads(text)

    assert len(rows()) == 6
    assert len(rows(since="1h")) == 3
    assert [r["instance"] for r in rows(instances=["aws"])] == ["aws", "aws"]
    assert rows(panels=["barman"]) == []


def test_the_table_marks_status_changes(tmp_path):
    h = History(tmp_path)
    h.write(readings_of(wal(NOW)) + readings_of(wal(NOW + timedelta(minutes=1), aws=Status.CRITICAL)), now=NOW)
    lines = to_table(h.rows()).splitlines()
    assert lines[0].split() == ["time", "(UTC)", "panel", "instance", "status", "summary"]
    assert lines[4] == "2026-11-24 07:10:05  wal      -         *CRITICAL   annex OK; aws CRITICAL"
    assert lines[5] == "2026-11-24 07:10:05  wal      annex      OK         annex streaming"
    assert lines[6] == "2026-11-24 07:10:05  wal      aws       *CRITICAL   aws streaming"
    assert lines[-1] == "* the status changed since the previous row of that panel and instance"


# -- runs, drills, proofs and PITRs --------------------------------------------------------------


def _run(state_dir: Path, kind: str, action: str, **fields):
    run = RunStore(state_dir, kind).create(action, {"steps": [{"name": "one"}]})
    run.update(**fields)
    return run


def test_runs_drills_proofs_and_pitrs_are_imported_once_by_id(tmp_path):
    done = _run(
        tmp_path,
        "runs",
        "base-backup",
        state="succeeded",
        started_at="2026-11-24T07:00:00.000+00:00",
        finished_at="2026-11-24T07:00:42.000+00:00",
        duration_seconds=42.0,
    )
    me = os.getpid()
    going = _run(
        tmp_path,
        "runs",
        "nightly-recover",
        state="running",
        pid=me,
        pid_start=procs.start_time(me),
        started_at=NOW.isoformat(),
    )
    drill = _run(tmp_path, "drills", "drill", state="succeeded", started_at="2026-11-23T02:00:00+00:00")
    (drill.path / "report.json").write_text(
        json.dumps(
            {"drill_id": drill.id, "outcome": "passed", "started_at": "2026-11-23T02:00:00+00:00", "rto_seconds": 45.2}
            | {"rpo_seconds": 94.0, "finished_at": "2026-11-23T02:00:45+00:00", "profile": "bb8"}
        )
    )
    proof = {
        "proof_id": "20261124T020000Z-proof-aa11",
        "run_id": done.id,
        "proven_at": "2026-11-24T02:31:00+00:00",
        "outcome": "failed",
        "copy_restored_at": "2026-11-24T02:00:00+00:00",
        "data_newest": None,
        "checks": [{"name": "rows", "value": "0", "expect": "> 0", "passed": False}, "not a check"],
        "reason": "rows: 0, expected > 0",
    }
    (tmp_path / "proofs.jsonl").write_text("not json\n" + json.dumps(proof) + "\n[1, 2]\n{}\n")
    pitr = tmp_path / "pitr" / "20261124T050000Z-pitr-bb22"
    pitr.mkdir(parents=True)
    (pitr / "report.json").write_text(
        json.dumps(
            {"pitr_id": pitr.name, "outcome": "passed", "target_time": "2026-11-24T04:58:00+00:00"}
            | {"achieved_time": "2026-11-24T04:57:59+00:00", "started_at": "2026-11-24T05:00:00+00:00", "seconds": 61}
        )
    )

    h = History(tmp_path, retention_days=36500)
    assert h.import_records(now=NOW) == 5
    assert h.import_records(now=NOW) == 1  # only the run still going is read again
    rows = {r["panel"]: r for r in h.rows() if r["id"] != going.id}
    assert [r["id"] for r in h.rows(panels=["runs"])] == [done.id, going.id]
    assert rows["runs"]["status"] == "succeeded" and rows["runs"]["summary"] == "base-backup succeeded in 42 s"
    assert rows["runs"]["facts"]["seconds"] == 42.0
    assert rows["drills"]["summary"] == "drill passed: RTO 45 s, RPO 1 min 34 s"
    assert rows["drills"]["facts"]["rto_seconds"] == 45.2 and rows["drills"]["at"] == "2026-11-23T02:00:00+00:00"
    assert rows["proofs"]["status"] == "failed"
    assert rows["proofs"]["summary"] == "proof failed: 0/1 checks passed, newest data unknown: rows: 0, expected > 0"
    assert rows["pitr"]["facts"]["achieved_time"] == "2026-11-24T04:57:59+00:00"
    assert h.rows(instances=["annex"]) == []  # records belong to no instance

    going.update(state="failed", error="step move failed", failed_step="move", duration_seconds=5.0)
    assert h.import_records(now=NOW) == 1
    assert h.import_records(now=NOW) == 0
    [row] = h.rows(panels=["runs"])[1:]
    assert (
        row["status"] == "failed" and row["summary"] == "nightly-recover failed in 5 s at step move: step move failed"
    )


def test_a_missing_or_unreadable_state_is_no_records(tmp_path):
    (tmp_path / "runs").write_text("a file, not a directory")
    os.mkfifo(tmp_path / "proofs.jsonl")  # never opened for a blocking read
    assert History(tmp_path).import_records(now=NOW) == 0

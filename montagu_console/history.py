"""The history of the chain: ``state_dir/history.sqlite3`` (spec section 9, "History").

Panel readings (every ``check``; the TUI at most once per ``history.panel_every_seconds`` per panel
and instance, and at once on a status change) and the runs, drills, proofs and point-in-time
recoveries, imported by id from the files the actions already write (``runs/``, ``drills/``,
``proofs.jsonl``, ``pitr/``), so no action calls the history.

The standard library's sqlite3: WAL journal, a busy timeout, the schema versioned by
``PRAGMA user_version`` and migrated on open (:data:`MIGRATIONS`), every operation cut off after
:data:`OPERATION_SECONDS`, rows older than ``history.retention_days`` pruned on each write. A
history that cannot be written raises :class:`HistoryError`, one line: the callers print it as
one WARNING and carry on; it never changes a check's result.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .actions import files
from .actions.runs import RUN_ID, Run
from .clock import duration, parse_iso_or_none, utc_now
from .config import Config
from .errors import ConsoleError
from .runstate import RunState, effective_state
from .snapshot import PanelResult, Snapshot
from .text import clean_data, one_line

FILE_NAME = "history.sqlite3"
BUSY_TIMEOUT_SECONDS = 2.0  # a database locked longer than this: the write is given up
OPERATION_SECONDS = 5.0  # any one operation (a write, an import, a query) is interrupted after this
RECORD_PANELS = ("runs", "drills", "proofs", "pitr")  # --panel names of the imported records
_KIND_OF = {"runs": "run", "drills": "drill", "proofs": "proof", "pitr": "pitr"}
_PANEL_OF = {kind: panel for panel, kind in _KIND_OF.items()}
_PITR_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,79}$")
_SINCE = re.compile(r"^\s*([0-9]{1,6})\s*([mhdw])\s*$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
COLUMNS = ("at", "panel", "instance", "id", "status", "summary", "facts")

# Each entry moves the schema one version up; never edit one that has shipped, append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: panel readings
    """
    CREATE TABLE readings (
        at TEXT NOT NULL, t REAL NOT NULL, panel TEXT NOT NULL, instance TEXT,
        status TEXT NOT NULL, summary TEXT NOT NULL, facts TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX readings_t ON readings (t);
    """,
    # 2: runs, drills, proofs and PITRs by id; readings found by panel and instance
    """
    CREATE TABLE records (
        kind TEXT NOT NULL, id TEXT NOT NULL, at TEXT NOT NULL, t REAL NOT NULL,
        status TEXT NOT NULL, summary TEXT NOT NULL, facts TEXT NOT NULL DEFAULT '{}',
        final INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX records_t ON records (t);
    CREATE INDEX readings_panel ON readings (panel, instance, t);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_RANK_SQL = "CASE status WHEN 'OK' THEN 0 WHEN 'WARNING' THEN 1 WHEN 'UNKNOWN' THEN 2 ELSE 3 END"


class HistoryError(ConsoleError):
    """The history cannot be opened, written or read (one line naming the file and why)."""


# -- what is kept ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One panel (``instance`` None) or one barman instance of it, at one moment."""

    at: datetime
    panel: str
    instance: str | None
    status: str
    summary: str
    facts: dict[str, Any]


def numeric_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts that are numbers or booleans (ages, sizes, lag, running or not)."""
    return {
        str(k): v for k, v in facts.items() if isinstance(v, bool) or (isinstance(v, (int, float)) and math.isfinite(v))
    }


def readings_of(result: PanelResult) -> list[Reading]:
    """The panel's own reading, then one per barman instance (barman and WAL panels)."""
    out = [_reading(result.name, None, result)]
    out += [_reading(result.name, i.name, i.result, at=result.taken_at) for i in result.instances]
    return out


def _reading(panel: str, instance: str | None, r: PanelResult, at: datetime | None = None) -> Reading:
    return Reading(
        at or r.taken_at, panel, instance, r.status.value, one_line(r.summary), clean_data(numeric_facts(r.facts))
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


# -- the database ------------------------------------------------------------------------------


class History:
    """``state_dir/history.sqlite3``: one connection, opened (and migrated) on first use, shared by
    threads under a lock. Every method raises :class:`HistoryError` and nothing else."""

    def __init__(self, state_dir: Path, retention_days: float = 400) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / FILE_NAME
        self.retention = timedelta(days=retention_days)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._deadline = 0.0

    @classmethod
    def of(cls, config: Config) -> History:
        return cls(config.state_dir, config.history.retention_days)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # opening and migrating

    def _open(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            files.ensure_dir(self.state_dir)
        except files.StateDirError as e:
            raise HistoryError(f"history {self.path}: {e}") from None
        self._prepare_file()
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise self._error(e) from None
        db.set_progress_handler(self._overdue, 1000)
        self._db = db
        try:
            self._deadline = time.monotonic() + OPERATION_SECONDS
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(db)
        except sqlite3.Error as e:
            self._drop()
            raise self._error(e) from None
        return db

    def _prepare_file(self) -> None:
        """The database file exists, 0600, as a regular file (a directory, link or FIFO is refused)."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            try:
                os.close(files.open_fd(self.path, os.O_CREAT | os.O_WRONLY | os.O_EXCL))
            except FileExistsError:
                return self._prepare_file()
            except OSError as e:
                raise HistoryError(f"history {self.path}: cannot create: {e.strerror or e}") from None
            return None
        except OSError as e:
            raise HistoryError(f"history {self.path}: {e.strerror or e}") from None
        if stat.S_ISDIR(st.st_mode):
            raise HistoryError(f"history {self.path}: is a directory, not a database")
        if not stat.S_ISREG(st.st_mode):
            raise HistoryError(f"history {self.path}: not a regular file (a link, FIFO or device is not used)")
        return None

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"history {self.path}: schema version {version} is newer than this console's {SCHEMA_VERSION}"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            db.executescript(f"BEGIN IMMEDIATE;{MIGRATIONS[number - 1]}PRAGMA user_version = {number};COMMIT;")

    def _overdue(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def _error(self, e: BaseException) -> HistoryError:
        text = str(e) or type(e).__name__
        if text == "interrupted":
            text = f"gave up after {OPERATION_SECONDS:g} s"
        elif "locked" in text:
            text = f"{text} (by another console or check: waited {BUSY_TIMEOUT_SECONDS:g} s)"
        elif "not a database" in text or "malformed" in text:
            text = f"{text} (move it aside: a new history starts on the next write)"
        return HistoryError(f"history {self.path}: {one_line(text, limit=200)}")

    @contextlib.contextmanager
    def _operation(self, write: bool) -> Iterator[sqlite3.Connection]:
        """The connection inside a transaction, cut off after :data:`OPERATION_SECONDS`."""
        with self._lock:
            db = self._open()
            self._deadline = time.monotonic() + OPERATION_SECONDS
            try:
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except (sqlite3.Error, OSError) as e:
                if not isinstance(e, sqlite3.OperationalError) or "locked" not in str(e):
                    self._drop()  # reopened on the next operation (the file may have been replaced)
                raise self._error(e) from None

    # writing

    def write(self, readings: Iterable[Reading], now: datetime | None = None) -> int:
        """Append ``readings`` and prune what is older than the retention; return how many were written."""
        rows = [
            (_iso(r.at), r.at.timestamp(), r.panel, r.instance, r.status, r.summary, _json(r.facts)) for r in readings
        ]
        with self._operation(write=True) as db:
            db.executemany(
                "INSERT INTO readings (at, t, panel, instance, status, summary, facts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._prune(db, now or utc_now())
        return len(rows)

    def _prune(self, db: sqlite3.Connection, now: datetime) -> None:
        cutoff = (now - self.retention).timestamp()
        db.execute("DELETE FROM readings WHERE t < ?", (cutoff,))
        db.execute("DELETE FROM records WHERE t < ?", (cutoff,))

    def import_records(self, now: datetime | None = None) -> int:
        """Bring in the runs, drills, proofs and PITRs of ``state_dir`` not yet final here; return how many."""
        now = now or utc_now()
        cutoff = (now - self.retention).timestamp()
        with self._operation(write=True) as db:
            final = {(k, i) for k, i in db.execute("SELECT kind, id FROM records WHERE final = 1")}
            found = [r for r in _records(self.state_dir, final) if r[3] >= cutoff]
            db.executemany(
                "INSERT OR REPLACE INTO records (kind, id, at, t, status, summary, facts, final) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                found,
            )
            self._prune(db, now)
        return len(found)

    # reading

    def rows(
        self,
        *,
        panels: Sequence[str] | None = None,
        instances: Sequence[str] | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Readings and records, oldest first, as :data:`COLUMNS` dicts (``facts`` decoded)."""
        t0 = since.timestamp() if since else float("-inf")
        panels = list(panels or ())
        reading_panels = [p for p in panels if p not in RECORD_PANELS]
        record_kinds = [_KIND_OF[p] for p in panels if p in RECORD_PANELS]
        out: list[tuple[float, int, dict[str, Any]]] = []
        with self._operation(write=False) as db:
            if not panels or reading_panels:
                sql = "SELECT t, rowid, at, panel, instance, status, summary, facts FROM readings WHERE t >= ?"
                args: list[Any] = [t0]
                if reading_panels:
                    sql += f" AND panel IN ({','.join('?' * len(reading_panels))})"
                    args += reading_panels
                if instances:
                    sql += f" AND instance IN ({','.join('?' * len(instances))})"
                    args += list(instances)
                for t, rowid, at, panel, inst, status, summary, facts in db.execute(sql, args):
                    out.append((t, rowid, _row(at, panel, inst, None, status, summary, facts)))
            if (not panels or record_kinds) and not instances:
                sql = "SELECT t, rowid, at, kind, id, status, summary, facts FROM records WHERE t >= ?"
                args = [t0]
                if record_kinds:
                    sql += f" AND kind IN ({','.join('?' * len(record_kinds))})"
                    args += record_kinds
                for t, rowid, at, kind, rid, status, summary, facts in db.execute(sql, args):
                    out.append((t, rowid, _row(at, _PANEL_OF.get(kind, kind), None, rid, status, summary, facts)))
        out.sort(key=lambda x: (x[0], x[1]))
        return [row for _, _, row in out]

    def buckets(
        self, panel: str, key: str, *, start: datetime, step: float, count: int, per_instance: bool
    ) -> list[dict[str, Any]]:
        """Readings of ``panel`` from ``start`` in ``count`` buckets of ``step`` seconds: per bucket (and
        instance, or for the panel as a whole) the largest value of fact ``key``, the worst status, the
        status before it (``first``: the reading before, looked for up to a bucket earlier) and at its end
        (``last``), and how many status changes it holds."""
        t0 = start.timestamp()
        where = "instance IS NOT NULL" if per_instance else "instance IS NULL"
        sql = f"""
            WITH r AS (
                SELECT instance, t, rowid AS rid, status, {_RANK_SQL} AS rank,
                       json_extract(facts, :path) AS v,
                       LAG(status) OVER (PARTITION BY instance ORDER BY t, rowid) AS prev
                FROM readings WHERE panel = :panel AND {where} AND t >= :t0 - :step AND t < :end
            ), b AS (
                SELECT *, CAST((t - :t0) / :step AS INTEGER) AS bucket FROM r WHERE t >= :t0
            ), l AS (
                SELECT *,
                       FIRST_VALUE(COALESCE(prev, status)) OVER (c ORDER BY t, rid) AS first,
                       FIRST_VALUE(status) OVER (c ORDER BY t DESC, rid DESC) AS last
                FROM b WINDOW c AS (PARTITION BY instance, bucket)
            )
            SELECT instance, bucket, MAX(v), MAX(rank), MAX(first), MAX(last), SUM(prev IS NOT NULL AND prev != status)
            FROM l GROUP BY instance, bucket ORDER BY instance, bucket
        """
        args = {"path": f'$."{key}"', "panel": panel, "t0": t0, "step": step, "end": t0 + step * count}
        with self._operation(write=False) as db:
            found = db.execute(sql, args).fetchall()
        return [
            {
                "instance": inst,
                "bucket": bucket,
                "value": peak if isinstance(peak, (int, float)) else None,
                "worst": _STATUS_BY_RANK.get(rank, "UNKNOWN"),
                "first": first,
                "last": last,
                "changes": int(changes or 0),
            }
            for inst, bucket, peak, rank, first, last, changes in found
            if 0 <= bucket < count
        ]

    def changes(
        self, panel: str, *, start: datetime, end: datetime, per_instance: bool, context: float
    ) -> list[dict[str, Any]]:
        """Every status change of ``panel`` (per instance, or of the panel as a whole) from ``start`` to
        ``end``, each against the reading before it (looked for up to ``context`` seconds earlier)."""
        where = "instance IS NOT NULL" if per_instance else "instance IS NULL"
        sql = f"""
            SELECT instance, at, prev, status FROM (
                SELECT instance, at, t, status, LAG(status) OVER (PARTITION BY instance ORDER BY t, rowid) AS prev
                FROM readings WHERE panel = ? AND {where} AND t >= ? AND t < ?
            ) WHERE prev IS NOT NULL AND prev != status AND t >= ? ORDER BY t
        """
        t0, t1 = start.timestamp(), end.timestamp()
        with self._operation(write=False) as db:
            return [
                {"instance": i, "at": at, "from": prev, "to": status}
                for i, at, prev, status in db.execute(sql, (panel, t0 - context, t1, t0))
            ]

    def records(self, panel: str, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """The imported records of ``panel`` (runs, drills, proofs, pitr), oldest first."""
        return self.rows(panels=[panel], since=since)


_STATUS_BY_RANK = {0: "OK", 1: "WARNING", 2: "UNKNOWN", 3: "CRITICAL", None: "UNKNOWN"}


def _row(at, panel, instance, rid, status, summary, facts) -> dict[str, Any]:
    try:
        decoded = json.loads(facts)
    except ValueError:
        decoded = {}
    return {
        "at": at,
        "panel": panel,
        "instance": instance,
        "id": rid,
        "status": status,
        "summary": summary,
        "facts": decoded,
    }


# -- importing the action layer's files --------------------------------------------------------

_Record = tuple[str, str, str, float, str, str, str, int]  # kind, id, at, t, status, summary, facts, final


def _records(state_dir: Path, final: set[tuple[str, str]]) -> Iterator[_Record]:
    yield from _runs(state_dir / "runs", final)
    yield from _drills(state_dir / "drills", final)
    yield from _proofs(state_dir / "proofs.jsonl", final)
    yield from _pitrs(state_dir / "pitr", final)


def _entries(root: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Directories (not links) under ``root`` whose names match ``pattern``; none when it is unusable."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if pattern.match(name):
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(root / name).st_mode):
                    out.append(root / name)
    return out


def _record(kind: str, rid: str, at: Any, status: str, summary: str, facts: dict, final: bool) -> _Record | None:
    when = parse_iso_or_none(at) if isinstance(at, str) else None
    if when is None:
        return None
    return (
        kind,
        one_line(rid, limit=120),
        _iso(when),
        when.timestamp(),
        one_line(status, limit=40),
        one_line(summary, limit=500),
        _json(clean_data(facts, limit=500)),
        int(final),
    )


def _runs(root: Path, final: set[tuple[str, str]]) -> Iterator[_Record]:
    for path in _entries(root, RUN_ID):
        if ("run", path.name) in final:
            continue
        rec = Run(path).record()
        state = effective_state(rec)
        if state is RunState.UNKNOWN:
            continue
        action = str(rec.get("action") or "run")
        summary = f"{action} {state.value}"
        if rec.get("duration_seconds") is not None:
            summary += f" in {duration(rec['duration_seconds'])}"
        if rec.get("failed_step"):
            summary += f" at step {rec['failed_step']}"
        if rec.get("error") and state is not RunState.SUCCEEDED:
            summary += f": {rec['error']}"
        facts = {
            "action": action,
            "finished_at": rec.get("finished_at"),
            "seconds": rec.get("duration_seconds"),
            "failed_step": rec.get("failed_step"),
        }
        found = _record(
            "run", path.name, rec.get("started_at") or rec.get("created_at"), state.value, summary, facts, state.final
        )
        if found:
            yield found


def _report(path: Path) -> dict | None:
    try:
        data = files.read_json(path)
    except files.StateFileError:
        return None
    return data if isinstance(data, dict) else None


def _drills(root: Path, final: set[tuple[str, str]]) -> Iterator[_Record]:
    for path in _entries(root, RUN_ID):
        if ("drill", path.name) in final:
            continue
        report = _report(path / "report.json")
        if report is None:  # still running, or it stopped before its report: its run record says which
            rec = Run(path).record()
            state = effective_state(rec)
            if state is RunState.UNKNOWN:
                continue
            outcome = "running" if state.active else state.value
            report = {
                "drill_id": path.name,
                "outcome": outcome,
                "started_at": rec.get("started_at") or rec.get("created_at"),
            }
        outcome = str(report.get("outcome") or "unknown")
        rto, rpo = _number(report.get("rto_seconds")), _number(report.get("rpo_seconds"))
        summary = f"drill {outcome}"
        if rto is not None or rpo is not None:
            summary += f": RTO {duration(rto)}, RPO {duration(rpo)}"
        facts = {
            "rto_seconds": rto,
            "rpo_seconds": rpo,
            "finished_at": report.get("finished_at"),
            "profile": report.get("profile"),
        }
        settled = outcome in ("passed", "failed", "refused")
        found = _record("drill", path.name, report.get("started_at"), outcome, summary, facts, settled)
        if found:
            yield found


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


MAX_PROOFS_BYTES = 8 * 1024 * 1024  # proofs.jsonl: one line a night, never near this


def _proofs(path: Path, final: set[tuple[str, str]]) -> Iterator[_Record]:
    """proofs.jsonl, one JSON object a line; a missing file or a bad line is skipped."""
    try:
        data = files.read_bytes(path, limit=MAX_PROOFS_BYTES)
    except (FileNotFoundError, files.StateFileError):
        return
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            p = json.loads(line)
        except ValueError:
            continue
        if not isinstance(p, dict) or not isinstance(p.get("proof_id"), str) or ("proof", p["proof_id"]) in final:
            continue
        outcome = str(p.get("outcome") or "unknown")
        checks = [c for c in p.get("checks") or [] if isinstance(c, dict)] if isinstance(p.get("checks"), list) else []
        passed = sum(bool(c.get("passed")) for c in checks)
        summary = (
            f"proof {outcome}: {passed}/{len(checks)} checks passed, newest data {p.get('data_newest') or 'unknown'}"
        )
        if p.get("reason"):
            summary += f": {p['reason']}"
        facts = {
            "run_id": p.get("run_id"),
            "copy_restored_at": p.get("copy_restored_at"),
            "data_newest": p.get("data_newest"),
            "checks_passed": passed,
            "checks": len(checks),
            "reason": p.get("reason"),
        }
        found = _record("proof", p["proof_id"], p.get("proven_at"), outcome, summary, facts, True)
        if found:
            yield found


def _pitrs(root: Path, final: set[tuple[str, str]]) -> Iterator[_Record]:
    """PITR reports; one stays open (re-read) while its run is still going (the scratch copy kept up)."""
    for path in _entries(root, _PITR_ID):
        if ("pitr", path.name) in final:
            continue
        report = _report(path / "report.json")
        if report is None:
            continue
        outcome = str(report.get("outcome") or "unknown")
        summary = (
            f"point in time {report.get('target_time') or '?'}: {outcome}, "
            f"reached {report.get('achieved_time') or 'nothing'}"
        )
        facts = {
            key: report.get(key)
            for key in (
                "target_time",
                "achieved_time",
                "behind_target_seconds",
                "finished_at",
                "seconds",
                "backup_id",
                "port",
                "kept_until",
                "removed_at",
            )
        }
        run = root.parent / "runs" / path.name
        going = os.path.lexists(run / "run.json") and effective_state(Run(run).record()).active
        found = _record("pitr", path.name, report.get("started_at"), outcome, summary, facts, not going)
        if found:
            yield found


# -- who writes, and when ----------------------------------------------------------------------


def record_check(config: Config, snap: Snapshot) -> str | None:
    """``check``: every panel and barman instance of ``snap``, then the records; a warning line or None."""
    history = History.of(config)
    try:
        history.write([r for p in snap.panels.values() for r in readings_of(p)], now=snap.checked_at)
        history.import_records(now=snap.checked_at)
    except HistoryError as e:
        return warning(e)
    finally:
        history.close()
    return None


def warning(e: HistoryError) -> str:
    """The one WARNING line for a history that cannot be written."""
    return f"WARNING: {e}; the history was not written (the checks are not affected)"


def due(last: tuple[str, datetime] | None, status: str, at: datetime, every: float) -> bool:
    """Whether a reading is written: the first one, a status change, or ``every`` seconds since the last."""
    if last is None:
        return True
    last_status, last_at = last
    return status != last_status or (at - last_at).total_seconds() >= every


class PanelRecorder:
    """The TUI's writer (called from a thread): each panel and instance once per ``every`` seconds and on
    every status change; the first failure gives one warning line, the next ones none until a write works."""

    def __init__(self, history: History, every: float) -> None:
        self.history = history
        self.every = every
        self._written: dict[tuple[str, str | None], tuple[str, datetime]] = {}
        self._failing = False
        self._lock = threading.Lock()

    @classmethod
    def of(cls, config: Config) -> PanelRecorder:
        return cls(History.of(config), float(config.history.panel_every_seconds))

    def offer(self, result: PanelResult) -> str | None:
        """Write what is due of ``result``; a warning line the first time the history cannot be written."""
        with self._lock:
            chosen = [
                r
                for r in readings_of(result)
                if due(self._written.get((r.panel, r.instance)), r.status, r.at, self.every)
            ]
            if not chosen:
                return None
            try:
                self.history.write(chosen)
            except HistoryError as e:
                first, self._failing = not self._failing, True
                return warning(e) if first else None
            self._failing = False
            for r in chosen:
                self._written[(r.panel, r.instance)] = (r.status, r.at)
            return None


# -- the ``history`` command -------------------------------------------------------------------


def parse_since(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` as a duration; ConsoleError (one line, exit 2) for anything else."""
    m = _SINCE.match(text or "")
    if not m or int(m.group(1)) == 0:
        raise ConsoleError(
            f"--since {one_line(str(text), limit=40)!r}: expected a number and m, h, d or w (30m, 12h, 7d, 2w)"
        )
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def to_csv(rows: list[dict[str, Any]]) -> str:
    """A header row, then one row per entry; ``facts`` as compact JSON, None as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else _json(row[c]) if c == "facts" else row[c] for c in COLUMNS])
    return out.getvalue()


def from_csv(text: str) -> list[dict[str, Any]]:
    """What :func:`to_csv` wrote, read back (for tests and scripts)."""
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        entry: dict[str, Any] = {c: (row[c] if row[c] != "" else None) for c in COLUMNS}
        entry["facts"] = json.loads(entry["facts"]) if entry["facts"] else {}
        out.append(entry)
    return out


def to_table(rows: list[dict[str, Any]]) -> str:
    """A table for people: time, panel, instance, status (``*`` where it changed since that panel's and
    instance's previous row) and summary; runs, drills, proofs and PITRs with their id."""
    if not rows:
        return "no history in this range"
    seen: dict[tuple[str, str | None], str] = {}
    lines = [f"{'time (UTC)':<19}  {'panel':<8} {'instance':<9} {'status':<11} summary"]
    marked = False
    for row in rows:
        key = (row["panel"], row["instance"])
        changed = row["id"] is None and key in seen and seen[key] != row["status"]
        marked |= changed
        seen[key] = row["status"]
        when = one_line(str(row["at"]).replace("T", " ")[:19])
        panel, instance = one_line(str(row["panel"]), limit=20), one_line(str(row["instance"] or "-"), limit=40)
        status = ("*" if changed else " ") + one_line(str(row["status"]), limit=20)
        text = one_line(str(row["summary"] if row["id"] is None else f"{row['id']}  {row['summary']}"), limit=400)
        lines.append(f"{when:<19}  {panel:<8} {instance:<9} {status:<11} {text}")
    if marked:
        lines.append("* the status changed since the previous row of that panel and instance")
    return "\n".join(lines)


def history_command(
    config: Config, *, panels: Sequence[str] | None, instances: Sequence[str] | None, since: str | None, fmt: str
) -> tuple[str, str | None]:
    """``montagu-console history``: the text to print and a warning line when the records could not be
    brought in first (HistoryError when the history cannot be read at all)."""
    start = utc_now() - parse_since(since) if since else None
    history = History.of(config)
    problem = None
    try:
        try:
            history.import_records()
        except HistoryError as e:
            problem = f"WARNING: {e}; runs, drills and proofs since the last write are not shown"
        rows = history.rows(panels=panels, instances=instances, since=start)
    finally:
        history.close()
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=True), problem
    if fmt == "csv":
        return to_csv(rows).rstrip("\n"), problem
    return to_table(rows), problem

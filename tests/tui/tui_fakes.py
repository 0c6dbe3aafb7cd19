"""Deterministic panel results and a fake collector for the TUI tests and ``bench/tui_fake_demo.py``.

Two data sets at a frozen moment (``NOW``): ``healthy()`` and ``troubled()`` (WAL CRITICAL with
receive-wal not running, starport WARNING, science restore in redo at 42 %, a FAILED backup).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from montagu_console.config import Config, parse_config
from montagu_console.snapshot import (BackupInfo, BarmanCheck, BarmanFacts, PanelResult, RestoreFacts, StarportFacts,
                                      StarportTarget, Status, WalFacts)

NOW = datetime(2026, 11, 24, 7, 9, 5, tzinfo=timezone.utc)
TAKEN = NOW - timedelta(seconds=2)

CONFIG_YAML = """\
hosts:
  annex: {transport: local}
  science: {transport: ssh, host: science.example, user: montagu}
barman:
  host: annex
  server: montagu
  command: [docker, exec, barman-montagu, barman]
nightly:
  host: annex
  volume: montagu_db_volume
starport:
  host: annex
science:
  host: science
  container: montagu-db
refresh_seconds: 10
"""

CHECK_NAMES = ("PostgreSQL", "superuser or standard user with backup privileges", "PostgreSQL streaming",
               "wal_level", "replication slot", "directories", "retention policy settings",
               "backup maximum age", "backup minimum size", "failed backups", "minimum redundancy requirements",
               "pg_basebackup", "pg_basebackup compatible", "pg_basebackup supports tablespaces mapping",
               "systemid coherence", "pg_receivexlog", "pg_receivexlog compatible", "receive-wal running",
               "archiver errors")


def make_config(**overrides) -> Config:
    """The test config, validated by the real loader, with fields replaced (``refresh_seconds=2``).

    Its state_dir is a new empty directory unless given, so no test sees another's runs.
    """
    overrides.setdefault("state_dir", Path(tempfile.mkdtemp(prefix="montagu-tui-state-")))
    return replace(parse_config(CONFIG_YAML, Path("/etc/montagu-console/config.yml")), **overrides)


def _ago(**kw) -> datetime:
    return NOW - timedelta(**kw)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def barman_result(*, failed_checks: tuple[str, ...] = (), failed_backup: bool = False) -> PanelResult:
    backups = [
        BackupInfo("20261121T020003", "DONE", _ago(days=3, hours=5), 182_700_000, 16_800_000),
        BackupInfo("20261024T020002", "DONE", _ago(days=31, hours=5), 176_300_000, 412_000_000),
        BackupInfo("20260926T020001", "DONE", _ago(days=59, hours=5), 170_100_000, 398_000_000),
    ]
    if failed_backup:
        backups.insert(0, BackupInfo("20261123T020004", "FAILED", None, None, None))
    facts = BarmanFacts(
        server="montagu", barman_version="3.19.1", pg_reachable=True, pg_version="15.8",
        data_size_bytes=182_700_000,
        checks=tuple(BarmanCheck(n, n not in failed_checks, "" if n not in failed_checks else "see barman docs")
                     for n in CHECK_NAMES),
        backups=tuple(backups), backup_running=False, container_running=True,
    )
    last = facts.last_backup
    status, summary = Status.OK, "3 backups, the last 3 days ago; every barman check OK"
    if failed_checks:
        status, summary = Status.CRITICAL, f"barman check FAILED: {', '.join(failed_checks)}"
    elif failed_backup:
        status, summary = Status.WARNING, "a FAILED backup in the list: 20261123T020004"
    return PanelResult("barman", status, summary, {
        "server": "montagu", "backups_available": len(facts.available_backups), "last_backup_id": last.backup_id,
        "last_backup_end": _iso(last.end_time), "last_backup_age_seconds": int((NOW - last.end_time).total_seconds()),
        "failed_checks": list(facts.failed_checks), "backup_running": False, "data_size_bytes": 182_700_000,
    }, TAKEN, facts)


def wal_result(*, receiving: bool = True, lag: int = 16_384, taken: datetime = TAKEN) -> PanelResult:
    facts = WalFacts(
        slot_name="barman", receive_wal_running=receiving, slot_active=receiving, lag_bytes=lag,
        server_lsn="0/2A0040C8", flush_lsn="0/2A000000" if receiving else "0/29000000",
        streaming_state="streaming" if receiving else None,
        last_archived_wal="00000001000000000000002A" if receiving else "000000010000000000000029",
        last_archived_at=_ago(minutes=2) if receiving else _ago(minutes=47),
    )
    if receiving:
        status, summary = Status.OK, f"streaming; lag {lag} bytes"
    else:
        status, summary = Status.CRITICAL, "receive-wal not running; replication slot barman inactive"
    return PanelResult("wal", status, summary, {
        "receive_wal_running": receiving, "slot_active": receiving, "lag_bytes": lag,
        "last_archived_wal": facts.last_archived_wal,
        "last_archived_age_seconds": int((NOW - facts.last_archived_at).total_seconds()),
    }, taken, facts)


def starport_result(*, copy_hours: float = 5) -> PanelResult:
    nightly = _ago(hours=6, minutes=40)
    target = StarportTarget("barman_to_starport", _ago(hours=copy_hours), None, nightly - timedelta(hours=24 if copy_hours > 26 else 0))
    facts = StarportFacts(nightly, None, (target,))
    if copy_hours > 26:
        status, summary = Status.WARNING, f"barman_to_starport last copied {int(copy_hours)} hours ago (over 26 h)"
    else:
        status, summary = Status.OK, "nightly copy and starport copy within 26 h"
    return PanelResult("starport", status, summary, {
        "nightly_restored_at": _iso(nightly), "nightly_age_seconds": int((NOW - nightly).total_seconds()),
        "targets": [{"name": target.name, "last_backup": _iso(target.last_backup),
                     "age_seconds": int(copy_hours * 3600)}],
    }, TAKEN, facts)


REDO_LOG = (
    "2026-11-24 06:58:11 UTC [1] LOG:  starting PostgreSQL 15.8 on x86_64-pc-linux-gnu",
    "2026-11-24 06:58:12 UTC [27] LOG:  database system was interrupted; last known up at 2026-11-23 02:00:04 UTC",
    "2026-11-24 06:58:12 UTC [27] LOG:  redo starts at 0/12000028",
    "2026-11-24 07:04:12 UTC [27] LOG:  redo in progress, elapsed time: 360.01 s, current LSN: 0/1F3A2B10",
    "2026-11-24 07:09:02 UTC [27] LOG:  redo in progress, elapsed time: 650.02 s, current LSN: 0/2533D0A8",
)


LAST_DRILL = {"drill_id": "20261121T020000Z-drill-1a2b", "outcome": "passed", "finished_at": _iso(_ago(days=3)),
              "rto_seconds": 45.2, "rpo_seconds": 94.0, "age_seconds": 3 * 86400}


def restore_result(*, phase: str = "ready", last_drill: dict | None = None) -> PanelResult:
    redo = phase == "redo"
    facts = RestoreFacts(
        container="montagu-db", container_status="running", phase=phase,
        percent=42.0 if redo else None, eta_seconds=900 if redo else None,
        db_accepting=not redo, in_recovery=redo,
        data_restored_from=_ago(hours=30, minutes=10), last_restore_at=_ago(hours=28) if not redo else _ago(minutes=11),
        last_restore_failed=False,
        redo_lsn="0/2533D0A8" if redo else None, target_lsn="0/3A000000" if redo else None,
        log_tail=REDO_LOG if redo else REDO_LOG[:3] + ("2026-11-23 03:12:40 UTC [1] LOG:  database system is ready to accept connections",),
    )
    summary = "restore running: WAL redo 42%, ETA 15 minutes" if redo else "science runs on data from 30 hours ago, accepting"
    return PanelResult("restore", Status.OK, summary, {
        "phase": phase, "percent": facts.percent, "eta_seconds": facts.eta_seconds,
        "last_restore_at": _iso(facts.last_restore_at), "data_restored_from": _iso(facts.data_restored_from),
        "db_accepting": facts.db_accepting, "last_drill": last_drill,
    }, TAKEN, facts)


def failed_result(name: str, host: str = "annex", taken: datetime = TAKEN) -> PanelResult:
    """What the collector returns when a probe cannot run."""
    return PanelResult(name, Status.UNKNOWN, f"{host}: `barman -f json status montagu` timed out after 30 s", {},
                       taken, None, error="TransportError: timed out after 30 s")


def healthy() -> dict[str, PanelResult]:
    return {"barman": barman_result(), "wal": wal_result(), "starport": starport_result(),
            "restore": restore_result(last_drill=LAST_DRILL)}


def troubled() -> dict[str, PanelResult]:
    return {"barman": barman_result(failed_backup=True), "wal": wal_result(receiving=False),
            "starport": starport_result(copy_hours=31), "restore": restore_result(phase="redo")}


class FakeCollector:
    """The collector's two methods over a mutable dict of results.

    ``hang`` names panels whose poll does not return until ``release()``; ``delay`` makes every poll take that long;
    with ``clock`` each result is stamped with the time it was polled (else it keeps ``TAKEN``).
    ``calls`` counts polls per panel, ``max_concurrent`` the most polls of one panel at once.
    """

    def __init__(self, results: dict[str, PanelResult] | None = None, *, hang: tuple[str, ...] = (),
                 delay: float = 0.0, clock: Callable[[], datetime] | None = None) -> None:
        self.results = dict(results or healthy())
        self.hang = set(hang)
        self.delay = delay
        self.clock = clock
        self._gate: asyncio.Event | None = None
        self.calls: Counter[str] = Counter()
        self.running: Counter[str] = Counter()
        self.max_concurrent: Counter[str] = Counter()
        self.closed = False

    async def panel(self, name: str) -> PanelResult:
        self.calls[name] += 1
        self.running[name] += 1
        self.max_concurrent[name] = max(self.max_concurrent[name], self.running[name])
        try:
            if name in self.hang:
                self._gate = self._gate or asyncio.Event()
                await self._gate.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            result = self.results[name]
            return result if self.clock is None else replace(result, taken_at=self.clock())
        finally:
            self.running[name] -= 1

    def release(self) -> None:
        """Let every hanging poll return, and stop hanging."""
        self.hang.clear()
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def close(self) -> None:
        self.closed = True


class MutableClock:
    """A clock tests can move: ``clock.advance(seconds=40)``."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


def frozen(now: datetime = NOW) -> Callable[[], datetime]:
    return lambda: now

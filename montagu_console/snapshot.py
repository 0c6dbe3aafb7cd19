"""The typed snapshot of the backup chain: what the probes saw, before any judgement.

Probes fill these dataclasses; :mod:`montagu_console.health` turns them into statuses; the
``check`` renderers and the TUI only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """A panel's health, ordered by how bad it is (Nagios convention)."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]

    @property
    def rank(self) -> int:
        """Severity for "worst of": OK < WARNING < UNKNOWN < CRITICAL."""
        return _RANKS[self]

    @classmethod
    def worst(cls, statuses) -> Status:
        """The most severe status; UNKNOWN when there is none at all (never OK by default)."""
        statuses = list(statuses)
        if not statuses:
            return cls.UNKNOWN
        return max(statuses, key=lambda s: s.rank)


_EXIT_CODES = {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2, Status.UNKNOWN: 3}
_RANKS = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}

PANELS = ("barman", "wal", "starport", "restore")


@dataclass(frozen=True)
class BarmanCheck:
    """One line of ``barman check``."""

    name: str
    ok: bool
    hint: str


@dataclass(frozen=True)
class BackupInfo:
    """One base backup from ``barman list-backups``."""

    backup_id: str
    status: str  # DONE, STARTED, WAITING_FOR_WALS, FAILED, ...
    end_time: datetime | None
    size_bytes: int | None
    wal_size_bytes: int | None
    name: str | None = None
    retention_status: str | None = None  # barman's word (VALID, OBSOLETE, KEEP_FULL, ...); None: unknown


@dataclass(frozen=True)
class BackupProgress:
    """A base backup under way: how far it is, from the primary or from its growing directory."""

    backup_id: str | None
    bytes_done: int
    bytes_total: int | None
    percent: float | None
    eta_seconds: int | None
    source: str  # "primary" (pg_stat_progress_basebackup) or "directory" (against the last backup's size)

    def as_fact(self) -> dict[str, Any]:
        """The ``backup_progress`` fact of ``check --json``."""
        return {
            "backup_id": self.backup_id,
            "percent": self.percent,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "eta_seconds": self.eta_seconds,
            "source": self.source,
        }


@dataclass(frozen=True)
class BarmanFacts:
    """What barman says about its server."""

    server: str
    barman_version: str
    pg_reachable: bool
    pg_version: str | None
    data_size_bytes: int | None
    checks: tuple[BarmanCheck, ...]
    backups: tuple[BackupInfo, ...]  # newest first
    backup_running: bool
    container_running: bool | None  # None: no container configured
    retention_policy: str | None = None  # barman's words, e.g. "RECOVERY WINDOW OF 3 MONTHS"
    backup_progress: BackupProgress | None = None

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    @property
    def available_backups(self) -> list[BackupInfo]:
        return [b for b in self.backups if b.status == "DONE"]

    @property
    def last_backup(self) -> BackupInfo | None:
        done = self.available_backups
        return done[0] if done else None

    @property
    def failed_backups(self) -> list[BackupInfo]:
        return [b for b in self.backups if b.status == "FAILED"]


@dataclass(frozen=True)
class WalFacts:
    """The WAL stream from the primary into barman."""

    slot_name: str
    receive_wal_running: bool
    slot_active: bool | None
    lag_bytes: int | None
    server_lsn: str | None
    flush_lsn: str | None
    streaming_state: str | None
    last_archived_wal: str | None
    last_archived_at: datetime | None


@dataclass(frozen=True)
class SlotInfo:
    """One replication slot on the primary (``pg_replication_slots``)."""

    name: str
    active: bool
    retained_bytes: int | None  # WAL kept since restart_lsn; None when the slot holds none

    def as_fact(self) -> dict[str, Any]:
        return {"name": self.name, "active": self.active, "retained_bytes": self.retained_bytes}


@dataclass(frozen=True)
class BaseBackupStream:
    """One base backup being streamed from the primary (``pg_stat_progress_basebackup``)."""

    pid: int
    phase: str
    bytes_total: int | None
    bytes_streamed: int
    started_at: datetime | None


@dataclass(frozen=True)
class PrimaryFacts:
    """What the primary itself says, through ``primary.command``."""

    slots: tuple[SlotInfo, ...]
    base_backups: tuple[BaseBackupStream, ...]

    def slot(self, name: str) -> SlotInfo | None:
        return next((s for s in self.slots if s.name == name), None)


@dataclass(frozen=True)
class StarportTarget:
    """One bb8 target in the starport: ``<path>/<name>/meta/metadata.json``."""

    name: str
    last_backup: datetime | None
    error: str | None = None  # metadata missing or corrupt
    carried_restore_at: datetime | None = None  # .barman-last-restore inside the copy


@dataclass(frozen=True)
class Proof:
    """One proof of a nightly copy (a line of ``state_dir/proofs.jsonl``): the copy was replayed
    until it answered and science.verify and science.rpo_sql ran against it."""

    proof_id: str
    run_id: str | None
    proven_at: datetime
    outcome: str  # passed | failed
    copy_restored_at: datetime | None  # the proven copy's .barman-last-restore
    data_newest: datetime | None  # science.rpo_sql in the copy
    checks: tuple[dict, ...]  # {name, value, expect, passed}
    reason: str | None
    how: str  # nightly-recover | prove-nightly

    @property
    def failing(self) -> list[str]:
        """The names of the checks that did not pass."""
        return [str(c.get("name")) for c in self.checks if not c.get("passed")]

    def why_failed(self) -> str:
        """What failed, in words: the failing checks, else the recorded reason."""
        if self.failing:
            return "check " + ", ".join(repr(n) for n in self.failing) + " failed"
        return self.reason or "no reason recorded"

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON of proofs.jsonl and .montagu-proof.json."""
        return {
            "proof_id": self.proof_id,
            "run_id": self.run_id,
            "proven_at": self.proven_at.isoformat(),
            "outcome": self.outcome,
            "copy_restored_at": self.copy_restored_at.isoformat() if self.copy_restored_at else None,
            "data_newest": self.data_newest.isoformat() if self.data_newest else None,
            "checks": [dict(c) for c in self.checks],
            "reason": self.reason,
            "how": self.how,
        }


@dataclass(frozen=True)
class NightlySpace:
    """Room on the filesystem under the nightly copy: a recover writes a whole new copy into
    the dump directory beside the old one before the old one goes."""

    where: str  # "volume montagu_db_volume" or the directory
    free_bytes: int
    copy_bytes: int  # the copy, without the dump directory
    dump_bytes: int  # a dump left by an earlier recover: the next recover's prepare step frees it

    @property
    def available_bytes(self) -> int:
        """What the next recover can use: the free space and the old dump it removes first."""
        return self.free_bytes + self.dump_bytes


@dataclass(frozen=True)
class StarportFacts:
    """The nightly recovered copy and its starport copies."""

    nightly_restored_at: datetime | None
    nightly_error: str | None
    targets: tuple[StarportTarget, ...]
    proof: Proof | None = None  # the newest proof of this copy
    last_passed_proof: Proof | None = None  # the newest passed proof of any copy
    space: NightlySpace | None = None  # None: not read (space_error says why)
    space_error: str | None = None


@dataclass(frozen=True)
class RestoreFacts:
    """The science database and the state of its last restore."""

    container: str
    container_status: str | None  # running, exited, ... ; None: no such container
    phase: str  # idle | copying | starting | redo | ready | failed
    percent: float | None
    eta_seconds: int | None
    db_accepting: bool | None
    in_recovery: bool | None
    data_restored_from: datetime | None
    last_restore_at: datetime | None
    last_restore_failed: bool
    redo_lsn: str | None
    target_lsn: str | None
    log_tail: tuple[str, ...] = ()
    last_drill: dict | None = None  # {drill_id, outcome, finished_at, rto_seconds, rpo_seconds}
    science_copy_proven: bool | None = None  # science's data is a copy with a passed proof (None: unknown)


@dataclass(frozen=True)
class PanelResult:
    """One panel after the health rules: status, one-line summary and the facts behind it."""

    name: str
    status: Status
    summary: str
    facts: dict[str, Any]
    taken_at: datetime
    detail: Any = None  # the typed facts (BarmanFacts, ...) or None when the probe failed
    error: str | None = None
    instances: tuple[InstanceResult, ...] = ()  # barman and wal: one per barman instance


@dataclass(frozen=True)
class InstanceResult:
    """One barman instance's part of the barman or WAL panel (its own status and facts)."""

    name: str
    host: str
    result: PanelResult

    def as_fact(self) -> dict[str, Any]:
        """An entry of ``facts.instances``: name, host, status, summary and the panel's facts."""
        r = self.result
        return {"name": self.name, "host": self.host, "status": r.status.value, "summary": r.summary, **r.facts}


@dataclass(frozen=True)
class Snapshot:
    """Every panel at one refresh."""

    checked_at: datetime
    panels: dict[str, PanelResult] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return Status.worst(p.status for p in self.panels.values())

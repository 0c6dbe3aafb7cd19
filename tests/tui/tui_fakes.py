"""Deterministic panel results and a fake collector for the TUI tests and ``bench/tui_fake_demo.py``.

Two data sets at a frozen moment (``NOW``): ``healthy()`` and ``troubled()`` (WAL CRITICAL with
receive-wal not running, starport WARNING, science restore in redo at 42 %, a FAILED backup); and
the whole estate, two barmans (annex and aws) and the primary's slots, for ``make_estate_config()``:
``estate()`` (both OK, every slot active, annex taking a base backup at 42 %) and
``estate_troubled()`` (aws's receive-wal stopped, its slot inactive and retaining WAL, an orphaned
slot on the primary). Every result is built from typed facts by the real health rules (``health.judge_*``, judged at
``TAKEN`` with the test config's thresholds), so no screen or snapshot can show a status, a
summary or a fact the rules would not give for those facts.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from montagu_console import health
from montagu_console.config import Config, parse_config
from montagu_console.snapshot import (
    BackupInfo,
    BackupProgress,
    BarmanCheck,
    BarmanFacts,
    InstanceResult,
    PanelResult,
    PrimaryFacts,
    Proof,
    RestoreFacts,
    SlotInfo,
    StarportFacts,
    StarportTarget,
    WalFacts,
)

NOW = datetime(2026, 11, 24, 7, 9, 5, tzinfo=UTC)
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

CHECK_NAMES = (
    "PostgreSQL",
    "superuser or standard user with backup privileges",
    "PostgreSQL streaming",
    "wal_level",
    "replication slot",
    "directories",
    "retention policy settings",
    "backup maximum age",
    "backup minimum size",
    "failed backups",
    "minimum redundancy requirements",
    "pg_basebackup",
    "pg_basebackup compatible",
    "pg_basebackup supports tablespaces mapping",
    "systemid coherence",
    "pg_receivexlog",
    "pg_receivexlog compatible",
    "receive-wal running",
    "archiver errors",
)


ESTATE_YAML = CONFIG_YAML.replace(
    """barman:
  host: annex
  server: montagu
  command: [docker, exec, barman-montagu, barman]
""",
    """  aws: {transport: ssh, host: montagu-barman.example, user: ubuntu}
barman:
  - name: annex
    host: annex
    server: montagu
    command: [docker, exec, barman-montagu, barman]
    slot: barman
  - name: aws
    host: aws
    server: montagu
    command: [docker, exec, barman-montagu, barman]
    slot: barman_aws
primary:
  host: annex
  command: [docker, exec, barman-montagu, psql, -h, production.example, -U, barman, -d, postgres]
""",
)
assert ESTATE_YAML != CONFIG_YAML


def make_estate_config(**overrides) -> Config:
    """The test config with two barmans, annex and aws, and ``primary`` set."""
    overrides.setdefault("state_dir", Path(tempfile.mkdtemp(prefix="montagu-tui-state-")))
    return with_fields(parse_config(ESTATE_YAML, Path("/etc/montagu-console/config.yml")), **overrides)


def make_config(**overrides) -> Config:
    """The test config, validated by the real loader, with fields replaced (``refresh_seconds=2``).

    Its state_dir is a new empty directory unless given, so no test sees another's runs.
    """
    overrides.setdefault("state_dir", Path(tempfile.mkdtemp(prefix="montagu-tui-state-")))
    return with_fields(parse_config(CONFIG_YAML, Path("/etc/montagu-console/config.yml")), **overrides)


def with_fields(config: Config, **fields) -> Config:
    """``config`` with top-level ``fields`` replaced (a frozen dataclass or a pydantic model)."""
    if hasattr(config, "model_copy"):
        return config.model_copy(update=fields)
    return replace(config, **fields)


def _ago(**kw) -> datetime:
    """A moment before the results were taken (the rules judge ages at ``TAKEN``)."""
    return TAKEN - timedelta(**kw)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _config() -> Config:
    """The thresholds the health rules judge the fixtures by: the test config's."""
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = parse_config(CONFIG_YAML, Path("/etc/montagu-console/config.yml"))
    return _CONFIG


_CONFIG: Config | None = None


def barman_result(
    *,
    failed_checks: tuple[str, ...] = (),
    failed_backup: bool = False,
    retention_policy: str | None = None,
    progress: BackupProgress | None = None,
) -> PanelResult:
    """barman facts, judged by the real rules (a FAILED check is CRITICAL, a FAILED backup a WARNING);
    with a ``retention_policy`` each backup has its retention status, with ``progress`` a backup runs."""
    backups = [
        BackupInfo("20261121T020003", "DONE", _ago(days=3, hours=5), 182_700_000, 16_800_000),
        BackupInfo("20261024T020002", "DONE", _ago(days=31, hours=5), 176_300_000, 412_000_000),
        BackupInfo("20260926T020001", "DONE", _ago(days=59, hours=5), 170_100_000, 398_000_000),
    ]
    if retention_policy:
        kept = ("VALID",) * 3  # a recovery window of 3 months keeps all three
        backups = [replace(b, retention_status=k) for b, k in zip(backups, kept, strict=True)]
    if failed_backup:
        backups.insert(0, BackupInfo("20261123T020004", "FAILED", None, None, None))
    facts = BarmanFacts(
        server="montagu",
        barman_version="3.19.1",
        pg_reachable=True,
        pg_version="15.8",
        data_size_bytes=182_700_000,
        checks=tuple(
            BarmanCheck(n, n not in failed_checks, "" if n not in failed_checks else "see barman docs")
            for n in CHECK_NAMES
        ),
        backups=tuple(backups),
        backup_running=progress is not None,
        container_running=True,
        retention_policy=retention_policy,
        backup_progress=progress,
    )
    return health.judge_barman(facts, _config().barman, TAKEN)


def wal_result(
    *, receiving: bool = True, lag: int = 16_384, taken: datetime = TAKEN, slot: str = "barman"
) -> PanelResult:
    """WAL facts judged by the rules: streaming with a small lag, or receive-wal stopped (CRITICAL)."""
    facts = WalFacts(
        slot_name=slot,
        receive_wal_running=receiving,
        slot_active=receiving,
        lag_bytes=lag,
        server_lsn="0/2A0040C8",
        flush_lsn="0/2A000000" if receiving else "0/29000000",
        streaming_state="streaming" if receiving else None,
        last_archived_wal="00000001000000000000002A" if receiving else "000000010000000000000029",
        last_archived_at=taken - timedelta(minutes=2) if receiving else taken - timedelta(minutes=47),
    )
    return health.judge_wal(facts, _config().wal, taken)


def starport_result(*, copy_hours: float = 5) -> PanelResult:
    """The nightly copy and one starport target, judged by the rules (over 26 h is a WARNING)."""
    nightly = _ago(hours=6, minutes=40)
    carried = nightly - timedelta(hours=24 if copy_hours > 26 else 0)
    target = StarportTarget("barman_to_starport", _ago(hours=copy_hours), None, carried)
    proof = Proof(
        "p-1",
        None,
        _ago(hours=6, minutes=30),
        "passed",
        nightly,
        _ago(hours=6, minutes=41),
        (),
        None,
        "nightly-recover",
    )
    facts = StarportFacts(nightly, None, (target,), proof=proof, last_passed_proof=proof)  # a proven copy
    return health.judge_starport(facts, _config().nightly, _config().starport, TAKEN)


REDO_LOG = (
    "2026-11-24 06:58:11 UTC [1] LOG:  starting PostgreSQL 15.8 on x86_64-pc-linux-gnu",
    "2026-11-24 06:58:12 UTC [27] LOG:  database system was interrupted; last known up at 2026-11-23 02:00:04 UTC",
    "2026-11-24 06:58:12 UTC [27] LOG:  redo starts at 0/12000028",
    "2026-11-24 07:04:12 UTC [27] LOG:  redo in progress, elapsed time: 360.01 s, current LSN: 0/1F3A2B10",
    "2026-11-24 07:09:02 UTC [27] LOG:  redo in progress, elapsed time: 650.02 s, current LSN: 0/2533D0A8",
)
READY_LOG = REDO_LOG[:3] + ("2026-11-23 03:12:40 UTC [1] LOG:  database system is ready to accept connections",)


LAST_DRILL = {
    "drill_id": "20261121T020000Z-drill-1a2b",
    "outcome": "passed",
    "finished_at": _iso(_ago(days=3)),
    "rto_seconds": 45.2,
    "rpo_seconds": 94.0,
}


def restore_result(*, phase: str = "ready", last_drill: dict | None = None) -> PanelResult:
    """science's database judged by the rules: ready, or a restore in its redo (a WARNING: in progress)."""
    redo = phase == "redo"
    facts = RestoreFacts(
        container="montagu-db",
        container_status="running",
        phase=phase,
        percent=42.0 if redo else None,
        eta_seconds=900 if redo else None,
        db_accepting=not redo,
        in_recovery=redo,
        data_restored_from=_ago(hours=30, minutes=10),
        last_restore_at=_ago(hours=28) if not redo else _ago(minutes=11),
        last_restore_failed=False,
        redo_lsn="0/2533D0A8" if redo else None,
        target_lsn="0/3A000000" if redo else None,
        log_tail=REDO_LOG if redo else READY_LOG,
        last_drill=last_drill,
    )
    return health.judge_restore(facts, _config().science, TAKEN)


def failed_result(name: str, host: str = "annex", taken: datetime = TAKEN) -> PanelResult:
    """What the collector returns when a probe cannot run (``health.unknown``, as collect.py makes it)."""
    return health.unknown(name, f"{host}: `barman -f json status montagu` timed out after 30 s", taken)


def healthy() -> dict[str, PanelResult]:
    return {
        "barman": barman_result(),
        "wal": wal_result(),
        "starport": starport_result(),
        "restore": restore_result(last_drill=LAST_DRILL),
    }


def troubled() -> dict[str, PanelResult]:
    return {
        "barman": barman_result(failed_backup=True),
        "wal": wal_result(receiving=False),
        "starport": starport_result(copy_hours=31),
        "restore": restore_result(phase="redo"),
    }


# -- the whole estate: two barmans and the primary's slots -------------------------------------

POLICY = "RECOVERY WINDOW OF 3 MONTHS"
PROGRESS = BackupProgress("20261124T020001", 1_288_490_188, 3_006_477_107, 42.9, 7_340, "primary")
ORPHAN_SLOT = "[bold]old_standby[/]"  # a slot name from the primary: text, never markup


def _instances(panel: str, pairs: list[tuple[str, str, PanelResult]]) -> list[InstanceResult]:
    return [InstanceResult(name, host, replace(r, name=panel)) for name, host, r in pairs]


def estate_barman(*, aws_down: bool = False, aws_unreachable: bool = False, progress: bool = True) -> PanelResult:
    """The barman panel over annex and aws, combined by the rules: annex OK (taking a base backup at
    42 % when ``progress``); aws OK, or CRITICAL when its receive-wal is stopped (its own ``barman
    check`` says so), or UNKNOWN when its host does not answer."""
    annex = barman_result(retention_policy=POLICY, progress=PROGRESS if progress else None)
    if aws_unreachable:
        aws = failed_result("barman", host="aws")
    else:
        aws = barman_result(retention_policy=POLICY, failed_checks=("receive-wal running",) if aws_down else ())
    instances = _instances("barman", [("annex", "annex", annex), ("aws", "aws", aws)])
    return health.combine("barman", instances, TAKEN)


def estate_wal(*, aws_down: bool = False, orphan: bool = False, slots: bool = True) -> PanelResult:
    """The WAL panel over annex and aws with the primary's slots, combined by the rules: aws's
    receive-wal stopped leaves its slot inactive and retaining WAL; ``orphan`` adds a forgotten slot."""
    annex = wal_result()
    aws = wal_result(receiving=not aws_down, slot="barman_aws")
    held = 1_610_612_736 if aws_down else 8_192  # an inactive slot keeps WAL on the primary
    listed = [SlotInfo("barman", True, 16_384), SlotInfo("barman_aws", not aws_down, held)]
    if orphan:
        listed.append(SlotInfo(ORPHAN_SLOT, False, 52_428_800))
    findings, slot_facts = health.judge_slots(PrimaryFacts(tuple(listed), ()) if slots else None, _config().wal)
    instances = _instances("wal", [("annex", "annex", annex), ("aws", "aws", aws)])
    return health.combine("wal", instances, TAKEN, findings, {"slots": slot_facts})


def estate() -> dict[str, PanelResult]:
    """The whole estate, all OK; annex is taking a base backup."""
    return healthy() | {"barman": estate_barman(), "wal": estate_wal()}


def estate_troubled() -> dict[str, PanelResult]:
    """aws's receive-wal stopped (its barman and WAL rows CRITICAL, annex's OK), its slot inactive and
    retaining 1.5 GiB, and an orphaned slot on the primary."""
    return healthy() | {
        "barman": estate_barman(aws_down=True),
        "wal": estate_wal(aws_down=True, orphan=True),
    }


class FakeCollector:
    """The collector's two methods over a mutable dict of results.

    ``hang`` names panels whose poll does not return until ``release()``; ``delay`` makes every poll take that long;
    with ``clock`` each result is stamped with the time it was polled (else it keeps ``TAKEN``).
    ``calls`` counts polls per panel, ``max_concurrent`` the most polls of one panel at once.
    """

    def __init__(
        self,
        results: dict[str, PanelResult] | None = None,
        *,
        hang: tuple[str, ...] = (),
        delay: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.results = dict(results or healthy())
        self.hang = set(hang)
        self.delay = delay
        self.clock = clock
        self._gate: asyncio.Event | None = None
        self.calls: Counter[str] = Counter()
        self.running: Counter[str] = Counter()
        self.max_concurrent: Counter[str] = Counter()
        self.closed = False
        self.full_reads = 0  # how often R asked for barman in full

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

    def read_in_full(self) -> None:
        self.full_reads += 1

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

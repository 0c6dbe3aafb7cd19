"""Health rules: pure functions from typed facts to a panel status and a one-line summary.

No I/O and no clock of their own: ``now`` is passed in, so every row of the rules table in
the spec (section 4) has a unit test. Ages come from :func:`clock.age_seconds` and are reported
as computed (negative for a stamp in the future). A stamp more than
``clock.FUTURE_TOLERANCE_SECONDS`` ahead is never fresh: it is a WARNING saying "in the
future: clock skew?", and the fact's own age rules are not applied to it. Each returns a
:class:`PanelResult` whose ``facts`` dict is exactly what ``check --json`` prints for the panel.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .clock import FUTURE_TOLERANCE_SECONDS, age_seconds, in_future, parse_iso_or_none
from .config import BarmanConfig, NightlyConfig, ScienceConfig, StarportConfig, WalConfig
from .humanfmt import age, size
from .snapshot import (
    BarmanFacts,
    InstanceResult,
    NightlySpace,
    PanelResult,
    PrimaryFacts,
    RestoreFacts,
    StarportFacts,
    Status,
    WalFacts,
)

DAY = 86400
HOUR = 3600


def unknown(name: str, reason: str, now: datetime) -> PanelResult:
    """A panel whose probe could not run: UNKNOWN, with the reason as its summary."""
    return PanelResult(name, Status.UNKNOWN, reason, {}, now, None, reason)


def _future(what: str, seconds: int) -> tuple[Status, str]:
    """The finding for a stamp beyond the clock-skew tolerance: a WARNING, never fresh."""
    return (
        Status.WARNING,
        f"{what} is {age(-seconds)} in the future: clock skew? "
        f"(more than {age(FUTURE_TOLERANCE_SECONDS)} ahead of this clock)",
    )


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _result(
    name: str, findings: list[tuple[Status, str]], ok_summary: str, facts: dict, now: datetime, detail
) -> PanelResult:
    """Worst finding wins; the summary lists the worst findings first, then the OK line."""
    if not findings:
        return PanelResult(name, Status.OK, ok_summary, facts, now, detail)
    status = Status.worst(s for s, _ in findings)
    ordered = sorted(findings, key=lambda f: -f[0].rank)
    return PanelResult(name, status, "; ".join(msg for _, msg in ordered), facts, now, detail)


def judge_barman(f: BarmanFacts, cfg: BarmanConfig, now: datetime) -> PanelResult:
    """barman: PostgreSQL reachable, every check OK, a recent backup, no FAILED backup."""
    last = f.last_backup
    last_age = age_seconds(now, last.end_time) if last else None
    facts = {
        "server": f.server,
        "barman_version": f.barman_version,
        "backups_available": len(f.available_backups),
        "last_backup_id": last.backup_id if last else None,
        "last_backup_end": _iso(last.end_time) if last else None,
        "last_backup_age_seconds": last_age,
        "last_backup_size_bytes": last.size_bytes if last else None,
        "failed_checks": f.failed_checks,
        "failed_backups": [b.backup_id for b in f.failed_backups],
        "backup_running": f.backup_running,
        "data_size_bytes": f.data_size_bytes,
        "pg_version": f.pg_version,
        "container_running": f.container_running,
        "retention_policy": f.retention_policy,
        "backups": [
            {
                "backup_id": b.backup_id,
                "status": b.status,
                "end_time": _iso(b.end_time),
                "size_bytes": b.size_bytes,
                "retention_status": b.retention_status,
            }
            for b in f.backups
        ],
        "backup_progress": f.backup_progress.as_fact() if f.backup_progress else None,
    }
    findings: list[tuple[Status, str]] = []
    if f.container_running is False:
        findings.append((Status.CRITICAL, f"container {cfg.container} is not running"))
    if not f.pg_reachable:
        findings.append((Status.CRITICAL, "PostgreSQL unreachable from barman"))
    # A FAILED backup is the WARNING row of the rules; barman's own "failed backups" check is that row.
    failed = [c for c in f.failed_checks if c != "failed backups"]
    if failed:
        findings.append((Status.CRITICAL, "barman check FAILED: " + ", ".join(failed)))
    if last is None:
        findings.append((Status.CRITICAL, "no backups available"))
    elif last_age is None:
        findings.append((Status.CRITICAL, f"last backup {last.backup_id} has no end time"))
    elif in_future(last_age):
        findings.append(_future(f"last backup {last.backup_id}", last_age))
    elif last_age > cfg.backup_critical_days * DAY:
        findings.append((Status.CRITICAL, f"last backup {age(last_age)} old (limit {cfg.backup_critical_days:g} days)"))
    elif last_age > cfg.backup_warning_days * DAY:
        findings.append((Status.WARNING, f"last backup {age(last_age)} old (warn at {cfg.backup_warning_days:g} days)"))
    if f.failed_backups or "failed backups" in f.failed_checks:
        ids = ", ".join(b.backup_id for b in f.failed_backups) or "see barman list-backup"
        findings.append((Status.WARNING, f"FAILED backup in the list: {ids}"))
    running = "; a backup is running" if f.backup_running else ""
    if f.backup_progress and f.backup_progress.percent is not None:
        p = f.backup_progress
        eta = f", about {age(p.eta_seconds)} left" if p.eta_seconds is not None else ""
        running = f"; backup {p.backup_id} {p.percent:.0f}% ({size(p.bytes_done)}{eta})"
    n = len(f.available_backups)
    ok = (
        (
            f"{n} backup{'' if n == 1 else 's'}, last {age(last_age)} ago ({size(last.size_bytes)}), "
            f"all {len(f.checks)} checks OK{running}"
        )
        if last and last_age is not None
        else "OK"
    )
    return _result("barman", findings, ok, facts, now, f)


def judge_wal(f: WalFacts, cfg: WalConfig, now: datetime) -> PanelResult:
    """wal: receive-wal streaming on an active slot, small backlog, recent archiving."""
    archived_age = age_seconds(now, f.last_archived_at)
    facts = {
        "receive_wal_running": f.receive_wal_running,
        "slot_name": f.slot_name,
        "slot_active": f.slot_active,
        "lag_bytes": f.lag_bytes,
        "server_lsn": f.server_lsn,
        "flush_lsn": f.flush_lsn,
        "streaming_state": f.streaming_state,
        "last_archived_wal": f.last_archived_wal,
        "last_archived_at": _iso(f.last_archived_at),
        "last_archived_age_seconds": archived_age,
    }
    findings: list[tuple[Status, str]] = []
    if not f.receive_wal_running:
        findings.append((Status.CRITICAL, "receive-wal not running"))
    if f.slot_active is False:
        findings.append((Status.CRITICAL, f"replication slot {f.slot_name} inactive"))
    elif f.slot_active is None:
        findings.append((Status.WARNING, f"replication slot {f.slot_name} not found on the primary"))
    if f.lag_bytes is None:
        findings.append((Status.WARNING, "WAL lag unknown"))
    elif f.lag_bytes > cfg.lag_critical_bytes:
        findings.append((Status.CRITICAL, f"WAL lag {size(f.lag_bytes)} (limit {size(cfg.lag_critical_bytes)})"))
    elif f.lag_bytes > cfg.lag_warning_bytes:
        findings.append((Status.WARNING, f"WAL lag {size(f.lag_bytes)} (warn at {size(cfg.lag_warning_bytes)})"))
    if archived_age is None:
        findings.append((Status.WARNING, "time of the last archived WAL unknown"))
    elif in_future(archived_age):
        findings.append(_future(f"last archived WAL {f.last_archived_wal}", archived_age))
    elif archived_age > cfg.archive_critical_seconds:
        findings.append(
            (Status.CRITICAL, f"last WAL archived {age(archived_age)} ago (limit {age(cfg.archive_critical_seconds)})")
        )
    elif archived_age > cfg.archive_warning_seconds:
        findings.append(
            (Status.WARNING, f"last WAL archived {age(archived_age)} ago (warn at {age(cfg.archive_warning_seconds)})")
        )
    ok = f"streaming on slot {f.slot_name}, lag {size(f.lag_bytes)}, last WAL archived {age(archived_age)} ago"
    return _result("wal", findings, ok, facts, now, f)


def judge_slots(primary: PrimaryFacts | None, cfg: WalConfig) -> tuple[list[tuple[Status, str]], list | None]:
    """Every slot on the primary: an inactive one is a WARNING (its consumer is gone), and CRITICAL
    once it holds back more than ``slot_retained_critical_bytes`` of WAL (the primary's disk fills).
    Returns the findings and the ``slots`` fact (None when ``primary`` is not configured)."""
    if primary is None:
        return [], None
    findings: list[tuple[Status, str]] = []
    limit = cfg.slot_retained_critical_bytes
    for slot in primary.slots:
        if slot.active:
            continue
        held = slot.retained_bytes or 0
        if held > limit:
            findings.append(
                (Status.CRITICAL, f"slot {slot.name} inactive, retaining {size(held)} of WAL (limit {size(limit)})")
            )
        else:
            findings.append((Status.WARNING, f"slot {slot.name} inactive, retaining {size(held)} of WAL"))
    return findings, [s.as_fact() for s in primary.slots]


def combine(
    name: str,
    instances: list[InstanceResult],
    now: datetime,
    findings: list[tuple[Status, str]] | None = None,
    facts: dict | None = None,
) -> PanelResult:
    """The barman or WAL panel from its instances' results (and the panel's own ``findings``).

    The status is the worst of them all, the summary names the instance or slot behind it, and the
    top-level facts are the first instance's plus ``instances`` (every one, spec section 8)."""
    findings = findings or []
    first = instances[0].result
    merged = {**first.facts, **(facts or {}), "instances": [i.as_fact() for i in instances]}
    status = Status.worst([*(i.result.status for i in instances), *(s for s, _ in findings)])
    ordered = sorted(instances, key=lambda i: -i.result.status.rank)
    if len(instances) == 1:
        parts = [first.summary]
    elif all(i.result.status is Status.OK for i in instances):
        parts = [f"{instances[0].name}: {first.summary}", f"{', '.join(i.name for i in instances[1:])} OK"]
    else:
        parts = [
            f"{i.name}: {i.result.summary}" if i.result.status is not Status.OK else f"{i.name} OK" for i in ordered
        ]
    worst_finding = Status.worst(s for s, _ in findings) if findings else Status.OK
    notes = [msg for _, msg in sorted(findings, key=lambda f: -f[0].rank)]
    if worst_finding.rank > Status.worst(i.result.status for i in instances).rank:
        parts = notes + parts
    else:
        parts = parts + notes
    return PanelResult(
        name, status, "; ".join(parts), merged, now, first.detail, first.error, instances=tuple(instances)
    )


def judge_starport(f: StarportFacts, nightly: NightlyConfig, cfg: StarportConfig, now: datetime) -> PanelResult:
    """starport: a fresh nightly copy, and every target carries a fresh copy of it."""
    nightly_age = age_seconds(now, f.nightly_restored_at)
    targets = [
        {
            "name": t.name,
            "last_backup": _iso(t.last_backup),
            "age_seconds": age_seconds(now, t.last_backup),
            "error": t.error,
            "carried_restore_at": _iso(t.carried_restore_at),
        }
        for t in f.targets
    ]
    proof = f.proof
    facts = {
        "nightly_restored_at": _iso(f.nightly_restored_at),
        "nightly_age_seconds": nightly_age,
        "targets": targets,
        "proven_at": _iso(proof.proven_at) if proof else None,
        "proven_data_newest": _iso(proof.data_newest) if proof else None,
        "proof_outcome": proof.outcome if proof else None,
        "proof_age_seconds": age_seconds(now, proof.proven_at) if proof else None,
        "proof_failing": proof.failing if proof else [],
        "nightly_free_bytes": f.space.free_bytes if f.space else None,
        "nightly_copy_bytes": f.space.copy_bytes if f.space else None,
        "nightly_needed_bytes": needed_bytes(f.space, nightly) if f.space else None,
    }
    findings: list[tuple[Status, str]] = []
    if f.nightly_error:
        findings.append((Status.CRITICAL, f"nightly copy: {f.nightly_error}"))
    else:
        findings += _freshness("nightly copy", nightly_age, nightly.warning_hours, nightly.critical_hours)
    findings += _proof_findings(f, nightly, now)
    if f.space is not None:
        findings += nightly_space_findings(f.space, nightly)
    elif f.space_error:
        findings.append((Status.WARNING, f"room for the next nightly recover unknown: {f.space_error}"))
    for t in f.targets:
        if t.error:
            findings.append((Status.CRITICAL, f"{t.name}: {t.error}"))
            continue
        if t.last_backup is None:
            findings.append((Status.CRITICAL, f"{t.name}: never backed up"))
            continue
        findings += _freshness(t.name, age_seconds(now, t.last_backup), cfg.warning_hours, cfg.critical_hours)
        carried = t.carried_restore_at
        if (
            f.nightly_restored_at
            and (carried is None or carried < f.nightly_restored_at)
            and t.last_backup < f.nightly_restored_at
        ):
            findings.append((Status.WARNING, f"{t.name} is older than the nightly copy it should carry"))
    names = ", ".join(t.name for t in f.targets)
    target_ages = [a for a in (age_seconds(now, t.last_backup) for t in f.targets) if a is not None]
    oldest = max(target_ages, default=None)
    ok = f"nightly copy {age(nightly_age)} old; starport {names} {age(oldest)} old"
    if proof is not None and proof.outcome == "passed":
        ok += f"; proven restorable {age(age_seconds(now, proof.proven_at))} ago"
    return _result("starport", findings, ok, facts, now, f)


def needed_bytes(space: NightlySpace, nightly: NightlyConfig) -> int:
    """What the next nightly recover needs free beside the copy: free_space_factor x the copy."""
    return int(nightly.thresholds.free_space_factor * space.copy_bytes)


def nightly_space_findings(space: NightlySpace, nightly: NightlyConfig) -> list[tuple[Status, str]]:
    """A recover writes a new copy beside the old one: room for less than one copy is CRITICAL
    (tonight's recover fails), less than free_space_factor copies a WARNING. The nightly
    recover's preflight refuses on the same findings."""
    available, need = space.available_bytes, needed_bytes(space, nightly)
    if available >= need:
        return []
    left = f"{size(space.free_bytes)} free"
    if space.dump_bytes:
        left += f" (and {size(space.dump_bytes)} in a dump the next recover removes)"
    full = available < space.copy_bytes
    what = (
        f"{space.where} {'full' if full else 'nearly full'}: {left} beside the copy of {size(space.copy_bytes)}; "
        f"the next nightly recover needs {nightly.thresholds.free_space_factor:g} x the copy = {size(need)}"
    )
    return [(Status.CRITICAL if full else Status.WARNING, what)]


def _proof_findings(f: StarportFacts, nightly: NightlyConfig, now: datetime) -> list[tuple[Status, str]]:
    """The copy's proof failed: CRITICAL naming what failed. No passed proof of this copy within
    proof_max_age_hours (never proven included: nothing is OK by default): WARNING."""
    proof, limit = f.proof, nightly.thresholds.proof_max_age_hours
    if proof is not None and proof.outcome == "failed":
        when = f"{proof.how} {_at(proof.proven_at)}"
        return [(Status.CRITICAL, f"nightly copy failed its proof ({when}): {proof.why_failed()}")]
    proven_age = age_seconds(now, proof.proven_at) if proof is not None else None
    if proven_age is not None and proven_age <= limit * HOUR:
        return []
    last = proof if proof is not None else f.last_passed_proof
    if last is None:
        return [(Status.WARNING, "nightly copy never proven restorable")]
    since = f"not proven restorable since {_at(last.proven_at)} ({age(age_seconds(now, last.proven_at))} ago"
    if proof is None:
        return [(Status.WARNING, f"nightly copy {since}, a proof of an older copy; this one has none)")]
    return [(Status.WARNING, f"nightly copy {since}; limit {limit:g} h)")]


def _at(t: datetime) -> str:
    """A moment in a summary: ``2026-11-25 03:10 UTC``."""
    return f"{t.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _freshness(what: str, seconds: int | None, warn_h: float, crit_h: float) -> list[tuple[Status, str]]:
    if seconds is None:
        return [(Status.CRITICAL, f"{what}: no timestamp")]
    if in_future(seconds):
        return [_future(what, seconds)]
    if seconds > crit_h * HOUR:
        return [(Status.CRITICAL, f"{what} {age(seconds)} old (limit {crit_h:g} h)")]
    if seconds > warn_h * HOUR:
        return [(Status.WARNING, f"{what} {age(seconds)} old (warn at {warn_h:g} h)")]
    return []


def judge_restore(f: RestoreFacts, cfg: ScienceConfig, now: datetime) -> PanelResult:
    """restore: science answers on data that is not too old; the last restore did not fail."""
    data_age = age_seconds(now, f.data_restored_from)
    last_drill = _drill_facts(f.last_drill, now)
    facts = {
        "phase": f.phase,
        "percent": f.percent,
        "eta_seconds": f.eta_seconds,
        "last_restore_at": _iso(f.last_restore_at),
        "data_restored_from": _iso(f.data_restored_from),
        "data_age_seconds": data_age,
        "db_accepting": f.db_accepting,
        "in_recovery": f.in_recovery,
        "container": f.container,
        "container_status": f.container_status,
        "redo_lsn": f.redo_lsn,
        "target_lsn": f.target_lsn,
        "last_drill": last_drill,
        "science_copy_proven": f.science_copy_proven,
    }
    findings: list[tuple[Status, str]] = []
    if f.last_restore_failed:
        findings.append((Status.CRITICAL, "last restore failed"))
    if f.container_status is None:
        findings.append((Status.CRITICAL, f"science database container {f.container} does not exist"))
    elif f.phase in ("copying", "starting", "redo"):
        pct = f" {f.percent:.0f}%" if f.percent is not None else ""
        eta = f", about {age(f.eta_seconds)} left" if f.eta_seconds is not None else ""
        findings.append((Status.WARNING, f"restore in progress: {f.phase}{pct}{eta}"))
    elif not f.db_accepting:
        findings.append(
            (Status.CRITICAL, f"science database not accepting connections ({f.container} {f.container_status})")
        )
    if data_age is None:
        findings.append((Status.WARNING, "science data has no .barman-last-restore: its age is unknown"))
    elif in_future(data_age):
        findings.append(_future("science data (.barman-last-restore in its volume)", data_age))
    elif data_age > cfg.data_warning_days * DAY:
        findings.append(
            (Status.WARNING, f"science runs on data {age(data_age)} old (warn at {cfg.data_warning_days:g} days)")
        )
    findings += _drill_findings(last_drill, cfg)
    ok = f"science ready on data {age(data_age)} old"
    return _result("restore", findings, ok, facts, now, f)


def _drill_facts(drill: dict | None, now: datetime) -> dict | None:
    if not drill:
        return None
    finished = parse_iso_or_none(drill.get("finished_at"))
    return drill | {"age_seconds": age_seconds(now, finished)}


def _drill_findings(drill: dict | None, cfg: ScienceConfig) -> list[tuple[Status, str]]:
    """A failed last drill, or one older than drill_max_age_days, is a WARNING; none on record is a
    WARNING only where the config requires drills."""
    if drill is None:
        return [(Status.WARNING, "no restore drill on record")] if cfg.require_drill else []
    if drill["outcome"] != "passed":
        return [(Status.WARNING, f"last restore drill {drill['outcome']} ({drill['drill_id']})")]
    if in_future(drill["age_seconds"]):
        return [_future(f"last restore drill {drill['drill_id']}", drill["age_seconds"])]
    if drill["age_seconds"] is not None and drill["age_seconds"] > cfg.drill_max_age_days * DAY:
        return [
            (
                Status.WARNING,
                f"last restore drill {age(drill['age_seconds'])} ago (due every {cfg.drill_max_age_days:g} days)",
            )
        ]
    return []

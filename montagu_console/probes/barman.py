"""Probes for the barman and WAL panels, one barman instance at a time: barman's JSON output
through that instance's ``command`` on its own host, and (when ``primary`` is configured) the
primary's own view of the instance's slot and of a base backup being streamed."""

from __future__ import annotations

import asyncio
import posixpath
import time

from ..clock import utc_now
from ..config import BarmanConfig
from ..errors import ProbeError, TransportError
from ..snapshot import BackupInfo, BackupProgress, BarmanFacts, BaseBackupStream, PrimaryFacts, WalFacts
from ..text import MAX_OUTPUT_BYTES, one_line
from ..transports.base import CommandResult
from . import ComponentDown, ProbeContext
from . import barman_json as bj
from .primary import probe_primary
from .tiered import Tier, full_read, signals, tier


async def run_barman(ctx: ProbeContext, b: BarmanConfig, *args: str, ok_codes=(0,)) -> CommandResult:
    """Run barman with ``args`` through instance ``b``'s command prefix on its host (shared with
    the other panels refreshed at the same moment); in the tiered mode, through its probe agent,
    the full commands only when due."""
    t = tier(ctx, b)
    if t is not None:
        full = await full_read(ctx, b, t)
        result = full.get(args) or await t.agent.run("barman", args, timeout=ctx.timeout)
    else:
        result = await ctx.once(
            ("barman", b.name, args), lambda: ctx.pool.transport(b.host).run([*b.command, *args], timeout=ctx.timeout)
        )
    if result.truncated:
        raise ProbeError(
            f"{b.host}: barman {' '.join(args)}: output larger than {MAX_OUTPUT_BYTES} bytes "
            "(stopped reading and killed it)"
        )
    if result.returncode not in ok_codes and not result.stdout.strip():
        last = one_line((result.stderr.strip().splitlines() or ["no output"])[-1], limit=300)
        if result.returncode == 127 or "not found" in last:
            raise ProbeError(f"{b.host}: `{' '.join(b.command)}` not found: {last}")
        raise ProbeError(f"{b.host}: barman {' '.join(args)} exited {result.returncode}: {last}")
    return result


async def barman_version(ctx: ProbeContext, b: BarmanConfig) -> str:
    """The instance's barman version (asked once per session), refused if the console cannot read it."""
    key = ("barman_version", b.name)
    if key not in ctx.cache:
        result = await run_barman(ctx, b, "--version")
        ctx.cache[key] = bj.parse_version(result.stdout or result.stderr)
    return ctx.cache[key]


async def container_running(ctx: ProbeContext, b: BarmanConfig) -> bool | None:
    """Whether the instance's ``container`` runs (None when no container is configured)."""
    if not b.container:
        return None
    state = await ctx.pool.docker(b.host).container_state(b.container)
    if state is None:
        raise ComponentDown(f"container {b.container} does not exist on {b.host}")
    if not state.running:
        code = f", exit code {state.exit_code}" if state.exit_code is not None else ""
        raise ComponentDown(f"container {b.container} on {b.host} is {state.status}{code}")
    return True


async def probe_barman(ctx: ProbeContext, b: BarmanConfig) -> BarmanFacts:
    """barman status, check and list-backup of instance ``b``, its retention and any backup's progress."""
    running = await container_running(ctx, b)
    version = await barman_version(ctx, b)
    status_r, check_r, list_r = await asyncio.gather(
        run_barman(ctx, b, "-f", "json", "status", b.server),
        run_barman(ctx, b, "-f", "json", "check", b.server, ok_codes=(0, 1)),
        run_barman(ctx, b, "-f", "json", "list-backup", b.server),
    )
    status = bj.parse_status(status_r.stdout, b.server)
    checks = bj.parse_check(check_r.stdout, b.server)
    policy, enforced = bj.parse_retention(status)
    backups = tuple(_with_retention(x, enforced) for x in bj.parse_list_backups(list_r.stdout, b.server))
    pg_version = status.get("pg_version") or None
    pg_reachable = (
        pg_version is not None
        and not pg_version.startswith("FAILED")
        and not any(c.name == "postgresql" and not c.ok for c in checks)
    )
    started = next((x for x in backups if x.status == "STARTED"), None)
    return BarmanFacts(
        server=b.server,
        barman_version=version,
        pg_reachable=pg_reachable,
        pg_version=pg_version if pg_reachable else None,
        data_size_bytes=bj.parse_size(status.get("current_size")),
        checks=checks,
        backups=backups,
        backup_running=started is not None,
        container_running=running,
        retention_policy=policy,
        backup_progress=await backup_progress(ctx, b, started, backups) if started else None,
    )


def _with_retention(backup: BackupInfo, enforced: bool) -> BackupInfo:
    """barman prints "-" for a VALID backup when it enforces a policy (only other words are shown)."""
    word = backup.retention_status
    if word in (None, "-", ""):
        word = "VALID" if enforced and backup.status == "DONE" else None
    return BackupInfo(**{**vars(backup), "retention_status": word})


async def backup_progress(
    ctx: ProbeContext, b: BarmanConfig, started: BackupInfo, backups: tuple[BackupInfo, ...]
) -> BackupProgress | None:
    """How far the running backup ``started`` is: from the primary's ``pg_stat_progress_basebackup``
    when ``primary`` is set and streams one, else from its growing directory against the last
    backup's size. None when neither can tell."""
    try:
        primary = await probe_primary(ctx)
    except (ProbeError, TransportError):
        primary = None  # the WAL panel names the primary's trouble; fall back to the directory
    stream = _stream_for(started, primary)
    if stream is not None:
        total = stream.bytes_total
        percent = min(100.0, 100.0 * stream.bytes_streamed / total) if total else None
        eta = None
        if total and stream.started_at and stream.bytes_streamed:
            elapsed = (utc_now() - stream.started_at).total_seconds()
            if elapsed > 0:
                eta = max(0, round((total - stream.bytes_streamed) * elapsed / stream.bytes_streamed))
        return BackupProgress(started.backup_id, stream.bytes_streamed, total, _round(percent), eta, "primary")
    done = await _directory_bytes(ctx, b, started.backup_id)
    if done is None:
        return None
    last = next((x for x in backups if x.status == "DONE" and x.size_bytes), None)
    total = last.size_bytes if last else None
    percent = min(99.9, 100.0 * done / total) if total else None
    return BackupProgress(
        started.backup_id, done, total, _round(percent), _eta(ctx, b, started, done, total), "directory"
    )


def _stream_for(started: BackupInfo, primary: PrimaryFacts | None) -> BaseBackupStream | None:
    """The primary's base-backup stream of this backup: the only one, or the one that began
    nearest to the backup id's time (ids are barman's start times)."""
    streams = primary.base_backups if primary else ()
    if len(streams) <= 1:
        return streams[0] if streams else None
    begun = bj.backup_id_time(started.backup_id)
    if begun is None:
        return streams[0]
    return min(streams, key=lambda s: abs((s.started_at - begun).total_seconds()) if s.started_at else float("inf"))


async def _directory_bytes(ctx: ProbeContext, b: BarmanConfig, backup_id: str) -> int | None:
    """``du`` of the backup's directory where barman runs; None when it cannot be read."""
    prefix = b.exec_prefix()
    if prefix is None or not bj.BACKUP_ID.match(backup_id):
        return None
    path = posixpath.join(b.home, b.server, "base", backup_id)
    t = tier(ctx, b)
    if t is not None:
        result = await t.agent.run("run", ["du", "-s", "-k", path], timeout=ctx.timeout)
    else:
        result = await ctx.pool.transport(b.host).run([*prefix, "du", "-s", "-k", path], timeout=ctx.timeout)
    first = (result.stdout.split() or [""])[0]
    return int(first) * 1024 if result.returncode == 0 and first.isdigit() else None


def _eta(ctx: ProbeContext, b: BarmanConfig, started: BackupInfo, done: int, total: int | None) -> int | None:
    """An ETA from the growth seen since this console first saw the backup (none in a one-shot check)."""
    key = ("backup_seen", b.name, started.backup_id)
    now = time.monotonic()
    first = ctx.cache.setdefault(key, (now, done))
    elapsed, grown = now - first[0], done - first[1]
    if not total or elapsed <= 0 or grown <= 0:
        return None
    return max(0, round((total - done) * elapsed / grown))


def _round(percent: float | None) -> float | None:
    return None if percent is None else round(percent, 1)


async def probe_wal(ctx: ProbeContext, b: BarmanConfig) -> WalFacts:
    """Instance ``b``'s receive-wal, its slot, the backlog on the primary and the last archived WAL.

    With ``primary`` configured, the slot's state and the WAL it holds come from the primary
    itself (right even when this barman cannot reach it)."""
    slot = b.slot or ctx.config.wal.slot
    await container_running(ctx, b)
    await barman_version(ctx, b)
    t = tier(ctx, b)
    if t is not None:
        return await _tiered_wal(ctx, b, t, slot)
    check_r, repl_r, diag_r = await asyncio.gather(
        run_barman(ctx, b, "-f", "json", "check", b.server, ok_codes=(0, 1)),
        run_barman(ctx, b, "-f", "json", "replication-status", b.server, ok_codes=(0, 1)),
        run_barman(ctx, b, "diagnose"),
    )
    checks = {c.name: c for c in bj.parse_check(check_r.stdout, b.server)}
    receive = checks.get("receive wal running")
    if receive is None:
        raise ProbeError("barman check: no 'receive-wal running' check (is streaming_archiver on?)")
    repl = _replication(repl_r.stdout, b.server, slot)
    diag = bj.parse_diagnose(diag_r.stdout, b.server)
    client = repl["client"]
    diag_slot = diag["slot"] if diag["slot"] and diag["slot"]["name"] == slot else None
    server_lsn = repl["server_lsn"] or diag["current_lsn"]
    flush_lsn = client.get("flush_lsn") if client else None
    lag = None
    current = bj.lsn_to_int(server_lsn)
    restart = bj.lsn_to_int(diag_slot["restart_lsn"]) if diag_slot else None
    flushed = bj.lsn_to_int(flush_lsn)
    # The backlog is the WAL the primary keeps for the slot; it grows whenever barman stops reading.
    if current is not None and restart is not None:
        lag = max(0, current - restart)
    elif client and current is not None and flushed is not None:
        lag = max(0, current - flushed)
    slot_active = diag_slot["active"] if diag_slot else (True if client else None)
    if slot_active is None and "replication slot" in checks and not checks["replication slot"].ok:
        slot_active = False if "not active" in checks["replication slot"].hint else None
    slot_active, lag = await _from_primary(ctx, slot, slot_active, lag)
    return WalFacts(
        slot_name=slot,
        receive_wal_running=receive.ok,
        slot_active=slot_active,
        lag_bytes=lag,
        server_lsn=server_lsn,
        flush_lsn=flush_lsn,
        streaming_state=client.get("current_state") if client else None,
        last_archived_wal=diag["last_archived_wal"],
        last_archived_at=diag["last_archived_at"],
    )


def _replication(text: str, server: str, slot: str) -> dict:
    """barman replication-status for ``slot``; nothing known when barman could not reach
    PostgreSQL (its check says why)."""
    try:
        return bj.parse_replication_status(text, server, slot)
    except ProbeError:
        return {"server_lsn": None, "client": None}


async def _from_primary(
    ctx: ProbeContext, slot: str, active: bool | None, lag: int | None
) -> tuple[bool | None, int | None]:
    """The slot's state and the WAL it holds, from the primary itself when ``primary`` is set
    (right even when this barman cannot reach it); barman's view otherwise."""
    try:
        primary = await probe_primary(ctx)
    except (ProbeError, TransportError):
        return active, lag  # the WAL panel's slot list names the primary's trouble
    if primary is None:
        return active, lag
    seen = primary.slot(slot)
    if seen is None:
        return None, lag
    return seen.active, seen.retained_bytes if seen.retained_bytes is not None else lag


async def _tiered_wal(ctx: ProbeContext, b: BarmanConfig, t: Tier, slot: str) -> WalFacts:
    """The WAL facts from this refresh's cheap signals and the primary, and barman's streaming
    details from its last full read (at most FULL_EVERY_SECONDS old)."""
    seen = await signals(ctx, b, t)
    full = await full_read(ctx, b, t)
    read = full.get(("-f", "json", "replication-status", b.server))
    repl = _replication(read.stdout if read else "", b.server, slot)
    client = repl["client"]
    flush_lsn = client.get("flush_lsn") if client else None
    current, flushed = bj.lsn_to_int(repl["server_lsn"]), bj.lsn_to_int(flush_lsn)
    lag = max(0, current - flushed) if current is not None and flushed is not None else None
    slot_active, lag = await _from_primary(ctx, slot, True if client else None, lag)
    return WalFacts(
        slot_name=slot,
        receive_wal_running=seen.receive_wal_running,
        slot_active=slot_active,
        lag_bytes=lag,
        server_lsn=repl["server_lsn"],
        flush_lsn=flush_lsn,
        streaming_state=client.get("current_state") if client else None,
        last_archived_wal=seen.last_archived_wal,
        last_archived_at=seen.last_archived_at,
    )

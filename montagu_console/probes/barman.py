"""Probes for the barman and WAL panels: barman's JSON output through ``barman.command``."""

from __future__ import annotations

import asyncio

from ..errors import ProbeError
from ..snapshot import BarmanFacts, WalFacts
from ..text import MAX_OUTPUT_BYTES, one_line
from ..transports.base import CommandResult
from . import ComponentDown, ProbeContext
from . import barman_json as bj


async def run_barman(ctx: ProbeContext, *args: str, ok_codes=(0,)) -> CommandResult:
    """Run barman with ``args`` through the configured command prefix on the barman host
    (shared with the other panels refreshed at the same moment)."""
    cfg = ctx.config.barman
    result = await ctx.once(
        ("barman", args), lambda: ctx.pool.transport(cfg.host).run([*cfg.command, *args], timeout=ctx.timeout)
    )
    if result.truncated:
        raise ProbeError(
            f"{cfg.host}: barman {' '.join(args)}: output larger than {MAX_OUTPUT_BYTES} bytes "
            "(stopped reading and killed it)"
        )
    if result.returncode not in ok_codes and not result.stdout.strip():
        last = one_line((result.stderr.strip().splitlines() or ["no output"])[-1], limit=300)
        if result.returncode == 127 or "not found" in last:
            raise ProbeError(f"{cfg.host}: `{' '.join(cfg.command)}` not found: {last}")
        raise ProbeError(f"{cfg.host}: barman {' '.join(args)} exited {result.returncode}: {last}")
    return result


async def barman_version(ctx: ProbeContext) -> str:
    """The barman version (asked once per session), refused if the console cannot read it."""
    if "barman_version" not in ctx.cache:
        result = await run_barman(ctx, "--version")
        ctx.cache["barman_version"] = bj.parse_version(result.stdout or result.stderr)
    return ctx.cache["barman_version"]


async def container_running(ctx: ProbeContext) -> bool | None:
    """Whether ``barman.container`` runs (None when no container is configured)."""
    cfg = ctx.config.barman
    if not cfg.container:
        return None
    state = await ctx.pool.docker(cfg.host).container_state(cfg.container)
    if state is None:
        raise ComponentDown(f"container {cfg.container} does not exist on {cfg.host}")
    if not state.running:
        code = f", exit code {state.exit_code}" if state.exit_code is not None else ""
        raise ComponentDown(f"container {cfg.container} on {cfg.host} is {state.status}{code}")
    return True


async def probe_barman(ctx: ProbeContext) -> BarmanFacts:
    """barman status, check and list-backup for the configured server."""
    cfg = ctx.config.barman
    running = await container_running(ctx)
    version = await barman_version(ctx)
    status_r, check_r, list_r = await asyncio.gather(
        run_barman(ctx, "-f", "json", "status", cfg.server),
        run_barman(ctx, "-f", "json", "check", cfg.server, ok_codes=(0, 1)),
        run_barman(ctx, "-f", "json", "list-backup", cfg.server),
    )
    status = bj.parse_status(status_r.stdout, cfg.server)
    checks = bj.parse_check(check_r.stdout, cfg.server)
    backups = bj.parse_list_backups(list_r.stdout, cfg.server)
    pg_version = status.get("pg_version") or None
    pg_reachable = (
        pg_version is not None
        and not pg_version.startswith("FAILED")
        and not any(c.name == "postgresql" and not c.ok for c in checks)
    )
    return BarmanFacts(
        server=cfg.server,
        barman_version=version,
        pg_reachable=pg_reachable,
        pg_version=pg_version if pg_reachable else None,
        data_size_bytes=bj.parse_size(status.get("current_size")),
        checks=checks,
        backups=backups,
        backup_running=any(b.status == "STARTED" for b in backups),
        container_running=running,
    )


async def probe_wal(ctx: ProbeContext) -> WalFacts:
    """receive-wal, the replication slot, the backlog on the primary and the last archived WAL."""
    cfg = ctx.config.barman
    slot = ctx.config.wal.slot
    await container_running(ctx)
    await barman_version(ctx)
    check_r, repl_r, diag_r = await asyncio.gather(
        run_barman(ctx, "-f", "json", "check", cfg.server, ok_codes=(0, 1)),
        run_barman(ctx, "-f", "json", "replication-status", cfg.server, ok_codes=(0, 1)),
        run_barman(ctx, "diagnose"),
    )
    checks = {c.name: c for c in bj.parse_check(check_r.stdout, cfg.server)}
    receive = checks.get("receive wal running")
    if receive is None:
        raise ProbeError("barman check: no 'receive-wal running' check (is streaming_archiver on?)")
    try:
        repl = bj.parse_replication_status(repl_r.stdout, cfg.server, slot)
    except ProbeError:
        repl = {"server_lsn": None, "client": None}  # PostgreSQL unreachable: the check shows why
    diag = bj.parse_diagnose(diag_r.stdout, cfg.server)
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

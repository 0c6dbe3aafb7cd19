"""Probe for the restore panel: the science database container, its log and its data's age."""

from __future__ import annotations

import dataclasses
import posixpath

from ..clock import parse_iso, parse_iso_or_none
from ..snapshot import RestoreFacts
from ..text import one_line
from ..transports.base import FileMissing
from . import ProbeContext
from .barman_json import lsn_to_int
from .pglog import parse_startup
from .proofs import copy_proven
from .runs_state import last_drill, last_run

WAL_SEGMENT = 16 * 1024 * 1024
LOG_TAIL = 300


SETTLED = ("ready", "idle", "failed")  # phases read at most every FULL_EVERY_SECONDS in the TUI


async def probe_restore(ctx: ProbeContext) -> RestoreFacts:
    """Phase, redo progress and acceptance of the science database, and its last restore.

    The container's state and the run records are read every time; in the tiered mode (the TUI)
    the rest (science's log, its psql answer, the copy's timestamp) only when they changed, while
    a restore is under way, or every FULL_EVERY_SECONDS (probes.cadence)."""
    cfg = ctx.config.science
    docker = ctx.pool.docker(cfg.host)
    state = await docker.container_state(cfg.container)
    restore_run = last_run(ctx.config.state_dir, ("restore", "drill"))
    signature = (state, restore_run and (restore_run.get("id"), restore_run.get("state")))
    facts = await ctx.in_tiers(
        "restore", signature, lambda: _read(ctx, docker, state, restore_run), settled=lambda f: f.phase in SETTLED
    )
    return dataclasses.replace(
        facts,
        last_drill=last_drill(ctx.config.state_dir),
        science_copy_proven=copy_proven(ctx.config.state_dir, facts.data_restored_from),
    )


async def _read(ctx: ProbeContext, docker, state, restore_run) -> RestoreFacts:
    cfg = ctx.config.science
    running_restore = restore_run is not None and restore_run.get("state") == "running"
    data_from = await _data_restored_from(ctx, docker) if state else None
    if state is None:
        return RestoreFacts(
            cfg.container,
            None,
            "failed",
            None,
            None,
            None,
            None,
            data_from,
            _run_time(restore_run),
            _run_failed(restore_run),
            None,
            None,
        )
    log = await docker.container_logs(cfg.container, tail=LOG_TAIL)
    progress = parse_startup(log)
    accepting = in_recovery = None
    if state.running:
        answer = await docker.exec(
            cfg.container,
            ["psql", "-U", cfg.db_user, "-d", cfg.db_name, "-Atc", "select pg_is_in_recovery()"],
            timeout=ctx.timeout,
        )
        accepting = answer.returncode == 0 and answer.stdout.strip() in ("t", "f")
        in_recovery = answer.stdout.strip() == "t" if accepting else None
    else:
        accepting = False
    phase, percent, eta, target = _phase(state.running, accepting, state.exit_code, progress, running_restore)
    if phase == "redo":
        target = await _target_lsn(ctx, docker)
        percent, eta = _redo_progress(progress, target)
    return RestoreFacts(
        container=cfg.container,
        container_status=state.status,
        phase=phase,
        percent=percent,
        eta_seconds=eta,
        db_accepting=accepting,
        in_recovery=in_recovery,
        data_restored_from=data_from,
        last_restore_at=_run_time(restore_run),
        last_restore_failed=_run_failed(restore_run),
        redo_lsn=progress.current_lsn or progress.redo_done_lsn,
        target_lsn=target,
        log_tail=tuple(one_line(line) for line in log.splitlines()[-40:]),
    )


def _phase(running, accepting, exit_code, progress, running_restore):
    if running_restore and not running:
        return "copying", None, None, None
    if running and accepting:
        return "ready", 100.0, 0, None
    if running:
        return ("redo" if progress.phase == "redo" else "starting"), None, None, None
    if exit_code not in (0, None) or progress.phase == "failed":
        return "failed", None, None, None
    return "idle", None, None, None


async def _data_restored_from(ctx: ProbeContext, docker):
    cfg = ctx.config.science
    path = posixpath.join(cfg.data_dir, ctx.config.nightly.timestamp_file)
    try:
        return parse_iso(await docker.read_file_in_container(cfg.container, path))
    except (FileMissing, ValueError):
        return None


async def _target_lsn(ctx: ProbeContext, docker) -> str | None:
    """The end of the WAL shipped with the data: the end of the newest segment in pg_wal."""
    cfg = ctx.config.science
    result = await docker.exec(cfg.container, ["ls", posixpath.join(cfg.data_dir, "pg_wal")], timeout=ctx.timeout)
    segments = sorted(n for n in result.stdout.split() if len(n) == 24 and all(c in "0123456789ABCDEF" for c in n))
    if not segments:
        return None
    seg = segments[-1]
    end = (int(seg[8:16], 16) * 0x100000000 + int(seg[16:24], 16) * WAL_SEGMENT) + WAL_SEGMENT
    return f"{end >> 32:X}/{end & 0xFFFFFFFF:X}"


def _redo_progress(progress, target: str | None):
    start, current, end = lsn_to_int(progress.redo_start_lsn), lsn_to_int(progress.current_lsn), lsn_to_int(target)
    if start is None or current is None or end is None or end <= start:
        return None, None
    done = max(0, current - start)
    percent = min(100.0, 100.0 * done / (end - start))
    eta = None
    if progress.elapsed_seconds and done > 0:
        eta = int((end - current) / (done / progress.elapsed_seconds))
    return percent, eta


def _run_time(run):
    finished = run.get("finished_at") if run else None
    return parse_iso_or_none(finished) if isinstance(finished, str) else None


def _run_failed(run) -> bool:
    return bool(run) and run.get("state") == "failed"

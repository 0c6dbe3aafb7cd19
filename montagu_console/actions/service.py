"""The one service for actions: every refusal (read-only, single flight, confirmation) for
start, cancel and resume lives here, for the CLI, the TUI and drills alike, and is audited.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from .. import procs
from ..clock import utc_now
from ..config import Config
from ..errors import ConsoleError
from ..text import clean, one_line
from ..transports import HostPool
from . import audit, drill, files, locks, pitr, plans
from .runs import ACTIVE, BadRunId, Run, RunState, RunStore, check_id, effective_state, new_run_id

if TYPE_CHECKING:
    from ..snapshot import NightlySpace

SPACE_FACTOR = 1.2
READ_ONLY = "read-only mode (--read-only or read_only: true in the config)"
START_WAIT_SECONDS = 30.0


class ActionRefused(ConsoleError):
    """The action was not started (or cancelled, or resumed); the message says why."""


def lock_action(action: str) -> str:
    """The lock an action takes: a drill restores science, so it shares the restore's lock; a
    prove-nightly reads the nightly copy, so it shares the nightly recover's (neither runs
    while the other does)."""
    return {"drill": "restore", "prove-nightly": "nightly-recover"}.get(action, action)


class ActionService:
    """Actions for one config. Every entry point checks read-only before anything else."""

    def __init__(self, config: Config, *, read_only: bool | None = None):
        self.config = config
        self.read_only = config.read_only if read_only is None else read_only
        self.runs = RunStore(config.state_dir)
        self.drills = RunStore(config.state_dir, "drills")

    @property
    def config_path(self) -> str:
        """The config's absolute path, recorded in plan.json: the supervisor runs from ``/``."""
        return str(Path(self.config.path).resolve())

    def info(self, action: str) -> plans.ActionInfo:
        return plans.info(self.config, action)

    def _host(self, action: str) -> str | None:
        if action == "drill":
            return self.config.science.host
        if action == pitr.ACTION:
            return self.config.nightly.host
        return self.info(action).host if action in plans.ACTIONS else None

    def audit(self, event: str, **fields) -> None:
        audit.append(self.config.state_dir, event, **fields)

    def _refuse(self, action: str, reason: str, **fields) -> NoReturn:
        try:
            self.audit("refused", action=action, host=self._host(action), reason=reason, **fields)
        except ConsoleError as e:  # an unusable state_dir: say both
            raise ActionRefused(f"{action} refused: {reason} (and the audit log was not written: {e})") from None
        raise ActionRefused(f"{action} refused: {reason}")

    def busy(self, action: str) -> str | None:
        """Why ``action`` cannot start now (a lock held, a run of it in flight), or None."""
        host = self._host(action) or ""
        held = locks.holder(locks.lock_dir(self.config), lock_action(action), host)
        if held is not None:
            return f"{action} is already running on {host} ({held.describe()})"
        for store in (self.runs, self.drills):
            for run in store.active():
                other = str(run.record().get("action"))
                if lock_action(other) == lock_action(action):
                    return f"{other} is already running on {host} (run {run.id})"
        return None

    async def preflight(self, action: str) -> list[str]:
        """Refuse (ActionRefused) when the action must not start; else the facts checked."""
        if self.read_only:
            self._refuse(action, READ_ONLY)
        self.runs.ensure()
        reason = self.busy(action)
        if reason:
            self._refuse(action, reason)
        pool = HostPool(self.config.hosts, command_timeout=self.config.command_timeout)
        try:
            return await _CHECKS[action](self, pool)
        finally:
            await pool.close()

    def start(self, action: str, *, confirmation: str) -> Run:
        """Start ``action`` detached (after :meth:`preflight`) and wait until its supervisor runs
        or has ended. ActionRefused when refused here or by the supervisor (lock held)."""
        info = self.info(action)
        if self.read_only:
            self._refuse(action, READ_ONLY)
        if info.confirm == "typed" and confirmation not in (info.confirm_text, "--yes"):
            self._refuse(action, f"confirmation did not match: type {info.confirm_text!r} to confirm")
        reason = self.busy(action)
        if reason:
            self._refuse(action, reason)
        plan = plans.plan(self.config, action) | {"config": self.config_path}
        return self._launch(action, plan, info.host, confirmation, profile=plan.get("profile"))

    def _launch(self, action: str, plan: dict, host: str, confirmation: str, **facts: object) -> Run:
        """Create the run, audit its start (with ``facts``), start its supervisor and wait until
        it runs or has ended; ActionRefused when the supervisor refused it (lock held)."""
        run = self.runs.create(action, plan)
        run.update(operator=audit.who(), confirmation=confirmation)
        self.audit(
            "started",
            action=action,
            host=host,
            run_id=run.id,
            **facts,
            confirmation=confirmation,
            steps=[s["name"] for s in plan["steps"]],
        )
        run = spawn_supervisor(run)
        rec = run.record()
        if rec.get("state") == RunState.REFUSED:
            raise ActionRefused(f"{action} refused: {rec.get('error')}")
        return run

    # -- point-in-time recovery ----------------------------------------------------------------

    def _refuse_pitr(self, target: str | None, reason: str) -> NoReturn:
        """Refuse a PITR, its refused report written first (``state_dir/pitr/<id>/``)."""
        try:
            report = pitr.write_refused(self.config.state_dir, new_run_id(pitr.ACTION), target, reason, audit.who())
        except ConsoleError as e:
            self._refuse(pitr.ACTION, f"{reason} (and no report was written: {e})")
        self._refuse(pitr.ACTION, f"{reason} (report: {report})", target_time=one_line(target or "", limit=64))

    async def preflight_pitr(self, target_text: str | None) -> pitr.Request:
        """Refuse (ActionRefused) a PITR to ``target_text`` that must not start; else the target,
        the base backup barman will recover it from and the facts checked."""
        if self.read_only:
            self._refuse_pitr(target_text, READ_ONLY)
        target = pitr.parse_target(target_text)
        if target is None:
            self._refuse_pitr(
                target_text,
                f"the target time {one_line(target_text or '', limit=64)!r} is not a time "
                '(e.g. "2026-12-01 14:02:00+00"; without a zone it is UTC)',
            )
        now = utc_now()
        if target > now:
            self._refuse_pitr(
                target_text,
                f"the target time {pitr.target_text(target)} is in the future (now {now:%Y-%m-%d %H:%M:%S} UTC)",
            )
        self.runs.ensure()
        reason = self.busy(pitr.ACTION)
        if reason:
            self._refuse_pitr(target_text, reason)
        pool = HostPool(self.config.hosts, command_timeout=self.config.command_timeout)
        try:
            return await _check_pitr(self, pool, target_text, target)
        except ConsoleError as e:
            if isinstance(e, ActionRefused):
                raise
            self._refuse_pitr(target_text, f"the preflight could not run: {e}")
        finally:
            await pool.close()

    def start_pitr(self, request: pitr.Request, *, confirmation: str) -> Run:
        """Start a PITR checked by :meth:`preflight_pitr` detached, or refuse it."""
        text = pitr.target_text(request.target)
        if self.read_only:
            self._refuse_pitr(text, READ_ONLY)
        if confirmation not in ("y", "--yes"):
            self._refuse_pitr(text, "not confirmed")
        reason = self.busy(pitr.ACTION)
        if reason:
            self._refuse_pitr(text, reason)
        plan = pitr.plan(self.config, request.target, request.backup_id) | {"config": self.config_path}
        return self._launch(
            pitr.ACTION, plan, plan["host"], confirmation, target_time=text, backup_id=request.backup_id
        )

    # -- cancel -------------------------------------------------------------------------------

    def find(self, run_id: str) -> Run:
        """A run or a drill by id (or unique prefix), resolved inside the stores only."""
        check_id(run_id)
        try:
            return self.runs.get(run_id)
        except ConsoleError as first:
            try:
                return self.drills.get(run_id)
            except ConsoleError:
                raise first from None

    def cancel(self, run_id: str) -> Run:
        """Send the run's process group SIGTERM; read-only and a run that is not running refuse."""
        if self.read_only:
            self._refuse("cancel", READ_ONLY, run_id=str(run_id)[:80])
        try:
            run = self.find(run_id)
        except BadRunId as e:
            self._refuse("cancel", str(e), run_id=str(run_id)[:80])
        rec = run.load()
        state = effective_state(rec)
        if state is not RunState.RUNNING:
            self._refuse("cancel", f"run {run.id} is not running (state: {state})", run_id=run.id)
        self.audit("cancel requested", run_id=run.id, action=rec.action)
        try:
            run.terminate()
        except ConsoleError as e:
            self._refuse("cancel", str(e), run_id=run.id)
        return run

    # -- drills -------------------------------------------------------------------------------

    def start_drill(self, *, confirmation: str) -> Run:
        """Start a drill detached, or refuse it (a report with outcome ``refused`` records why)."""
        host = self.config.science.host
        reason = None
        if self.read_only:
            reason = READ_ONLY
        else:
            busy = [*self.runs.active(), *self.drills.active()]
            if busy:
                reason = f"another run is in flight: {busy[0].id} ({busy[0].record().get('action')})"
            elif (held := locks.holder(locks.lock_dir(self.config), "restore", host)) is not None:
                reason = f"a restore of {host} is running ({held.describe()})"
            elif confirmation not in (host, "--yes"):
                reason = f"confirmation did not match: type {host!r} to confirm"
        plan = drill.drill_plan(self.config) | {"config": self.config_path}
        run = self.drills.create("drill", plan)
        run.update(operator=audit.who(), confirmation=confirmation)
        if reason:
            run.update(state=RunState.REFUSED, error=f"drill refused: {reason}", finished_at=_now())
            drill.write_reports(run, "refused")
            with contextlib.suppress(ConsoleError):
                self.audit("refused", action="drill", host=host, run_id=run.id, reason=reason)
            raise ActionRefused(f"drill refused: {reason} (report: {run.path / 'report.md'})")
        self.audit(
            "started", action="drill", host=host, run_id=run.id, profile=plan.get("profile"), confirmation=confirmation
        )
        run = spawn_supervisor(run)
        rec = run.record()
        if rec.get("state") == RunState.REFUSED:
            raise ActionRefused(f"{rec.get('error')} (report: {run.path / 'report.md'})")
        return run

    def resume_drill(self, drill_id: str | None) -> Run:
        """Continue an interrupted drill of this state_dir at its first unfinished step."""
        if self.read_only:
            self._refuse("drill", f"resume: {READ_ONLY}")
        if drill_id in (None, "latest"):
            candidates = [r for r in self.drills.all() if r.state == RunState.INTERRUPTED]
            if not candidates:
                self._refuse("drill", "no interrupted drill to resume (see `montagu-console drills list`)")
            run = candidates[-1]
        else:
            try:
                run = self.drills.get(str(drill_id))
            except BadRunId as e:
                self._refuse("drill", f"resume: {e}")
        state = run.state
        if state != RunState.INTERRUPTED:
            self._refuse("drill", f"drill {run.id} cannot be resumed: it is {state}", run_id=run.id)
        reason = self.busy("drill")
        if reason:
            self._refuse("drill", f"resume of {run.id}: {reason}", run_id=run.id)
        self.audit("resumed", action="drill", host=self.config.science.host, run_id=run.id)
        run = spawn_supervisor(run, resume=True)
        rec = run.record()
        if rec.get("state") == RunState.REFUSED:
            raise ActionRefused(f"drill resume refused: {rec.get('error')}")
        return run


def _now() -> str:
    from ..clock import now_iso

    return now_iso()


def spawn_supervisor(run: Run, *, resume: bool = False) -> Run:
    """Start the run's supervisor detached (own session, no terminal, cwd ``/``) and wait until
    it runs or has ended; a supervisor that dies before it says so leaves the run failed."""
    argv = [sys.executable, "-m", "montagu_console.actions.supervisor", str(run.path.resolve())]
    if resume:
        argv.append("--resume")
    me = os.getpid()
    from ..procs import start_time

    run.update(state=RunState.STARTING, owner_pid=me, owner_start=start_time(me), pid=None, pid_start=None, pgid=None)
    with files.open_append(run.path / "supervisor.out") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd="/",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + START_WAIT_SECONDS
    while run.record().get("state") == RunState.STARTING:
        rc = proc.poll()
        if rc is not None or time.monotonic() > deadline:
            if run.record().get("state") != RunState.STARTING:
                break
            said = clean(files.read_bytes(run.path / "supervisor.out", limit=4000)).strip().splitlines()
            why = said[-1] if said else (f"it exited {rc}" if rc is not None else "it did not start in time")
            run.update(state=RunState.FAILED, finished_at=_now(), error=f"the supervisor did not start: {why}")
            break
        time.sleep(0.05)
    return run


async def _check_backup(service: ActionService, pool: HostPool) -> list[str]:
    from ..humanfmt import size
    from ..probes import ProbeContext
    from ..probes import barman_json as bj
    from ..probes.barman import run_barman
    from ..probes.space import df_free_bytes
    from ..retention import outlook

    cfg = service.config
    b = cfg.barman
    ctx = ProbeContext(cfg, pool)
    exec_ = plans.container_exec_prefix(cfg) if b.container else []
    listing, status, df = await asyncio.gather(
        run_barman(ctx, b, "-f", "json", "list-backup", b.server),
        run_barman(ctx, b, "-f", "json", "status", b.server),
        pool.transport(b.host).run([*exec_, "df", "-Pk", b.home], timeout=cfg.command_timeout),
    )
    backups = bj.parse_list_backups(listing.stdout, b.server)
    policy, _enforced = bj.parse_retention(bj.parse_status(status.stdout, b.server))
    running = [b.backup_id for b in backups if b.status == "STARTED"]
    if running:
        service._refuse(
            "base-backup", f"barman is already taking backup {running[0]} (started by cron or another operator)"
        )
    last = next((b for b in backups if b.status == "DONE"), None)
    need = int(SPACE_FACTOR * (last.size_bytes or 0)) if last else 0
    free = df_free_bytes(df.stdout)
    if free is None:
        service._refuse(
            "base-backup",
            f"cannot read free space at {cfg.barman.home} on {cfg.barman.host}: "
            f"{(df.stderr or df.stdout).strip()[:120]}",
        )
    if free < need:
        service._refuse(
            "base-backup",
            f"only {size(free)} free at {cfg.barman.home}; a backup needs "
            f"{SPACE_FACTOR} x the last backup = {size(need)}",
        )
    return [
        "no backup running",
        f"{size(free)} free at {cfg.barman.home} (need {size(need)})",
        outlook(policy, backups, utc_now()).sentence(),
    ]


async def _busy_containers(service: ActionService, pool: HostPool, action: str, host: str, names) -> list[str]:
    docker = pool.docker(host)
    leftovers = []
    for name in names:
        state = await docker.container_state(name)
        if state and state.running and procs.owner_gone(state.owner):
            leftovers.append(f"{name} left running by a killed run (its supervisor is gone): the run removes it")
        elif state and state.running:
            service._refuse(
                action, f"container {name} is running on {host}: bb8, cron or another operator is already doing this"
            )
    return leftovers or [f"no {', '.join(names)} container running on {host}"]


async def _check_nightly(service: ActionService, pool: HostPool) -> list[str]:
    from .. import health
    from ..humanfmt import size
    from .steps import nightly_mount_problem

    n, b = service.config.nightly, service.config.barman
    if problem := await nightly_mount_problem(service.config, pool):
        service._refuse("nightly-recover", problem)
    busy = await _busy_containers(
        service, pool, "nightly-recover", n.host, (plans.REPLAY_CONTAINER, plans.PROVE_CONTAINER, "bb8")
    )
    space = await _nightly_space(service, pool, "nightly-recover")
    if findings := health.nightly_space_findings(space, n):
        service._refuse("nightly-recover", findings[0][1])
    return [
        f"volume {n.volume} is mounted at {n.mount} in barman's container {b.container}",
        *busy,
        f"{size(space.available_bytes)} free for the new copy beside the copy of {size(space.copy_bytes)} "
        f"(need {n.thresholds.free_space_factor:g} x the copy = {size(health.needed_bytes(space, n))})",
    ]


async def _nightly_space(service: ActionService, pool: HostPool, action: str) -> NightlySpace:
    """The room under the nightly copy, or refused naming why it cannot be read."""
    from ..probes import ProbeContext
    from ..probes.space import probe_nightly_space

    try:
        return await probe_nightly_space(ProbeContext(service.config, pool))
    except ConsoleError as e:
        service._refuse(action, f"cannot read the room under the nightly copy: {e}")


async def _check_prove(service: ActionService, pool: HostPool) -> list[str]:
    """A copy to prove, something to prove it with, nobody else at the copy, room for a scratch copy."""
    from ..humanfmt import size
    from ..probes import ProbeContext
    from ..probes.starport import probe_nightly
    from .proof import wanted

    cfg, action = service.config, "prove-nightly"
    n, b = cfg.nightly, cfg.barman
    scratch = plans.scratch_volume(cfg)
    if not n.volume:
        service._refuse(action, "prove-nightly copies the nightly copy's Docker volume: nightly.volume is not set")
    if scratch in (cfg.science.volume, cfg.pitr.volume, n.volume):
        service._refuse(action, f"the scratch volume {scratch} is also science.volume, pitr.volume or nightly.volume")
    if not wanted(cfg):
        service._refuse(action, "neither science.verify nor science.rpo_sql is set: nothing to prove the copy with")
    restored_at, problem = await probe_nightly(ProbeContext(cfg, pool))
    if problem:
        service._refuse(action, f"nothing to prove: {problem}")
    busy = await _busy_containers(service, pool, action, n.host, (plans.REPLAY_CONTAINER, plans.PROVE_CONTAINER))
    space = await _nightly_space(service, pool, action)
    used, free = space.copy_bytes, space.free_bytes
    if problem := space_problem(used, free):
        service._refuse(action, f"{problem} at {n.mount} on {b.host} (the scratch volume {scratch} holds a copy)")
    return [
        f"the copy in {n.volume} was restored at {restored_at.isoformat() if restored_at else '?'}",
        *busy,
        f"{size(free)} free beside the copy of {size(used)} (need {SPACE_FACTOR} x the copy)",
        f"the scratch volume {scratch} is removed at the end; {n.volume} is only read",
    ]


def space_problem(used: int, free: int) -> str | None:
    """Why a scratch copy of ``used`` bytes does not fit in ``free`` bytes, or None."""
    from ..humanfmt import size

    need = int(SPACE_FACTOR * used)
    if free < need:
        return f"only {size(free)} free; a scratch copy needs {SPACE_FACTOR} x the copy = {size(need)}"
    return None


async def _check_restore(service: ActionService, pool: HostPool) -> list[str]:
    s = service.config.science
    return await _busy_containers(service, pool, "restore", s.host, ("bb8",))


async def _check_pitr(service: ActionService, pool: HostPool, text: str | None, target: datetime) -> pitr.Request:
    from ..humanfmt import size
    from ..probes import ProbeContext
    from ..probes import barman_json as bj
    from ..probes.barman import run_barman
    from ..probes.space import df_free_bytes
    from .steps import barman_mount_problem

    cfg = service.config
    b, p, host = cfg.barman, cfg.pitr, cfg.nightly.host
    exec_ = plans.container_exec_prefix(cfg)
    problem = await barman_mount_problem(cfg, pool, p.volume, p.mount)
    if problem:
        service._refuse_pitr(
            text, f"{problem} (barman's container needs -v {p.volume}:{p.mount}: pitr.volume, pitr.mount)"
        )
    held = await pool.docker(host).container_state(pitr.CONTAINER)
    if held is not None and held.running:
        service._refuse_pitr(
            text,
            f"container {pitr.CONTAINER} is running on {host}: a point-in-time copy already holds the scratch "
            f"volume {p.volume} (cancel its run, or `docker rm -f {pitr.CONTAINER}` if no run owns it)",
        )
    listing, df = await asyncio.gather(
        run_barman(ProbeContext(cfg, pool), b, "-f", "json", "list-backup", b.server),
        pool.transport(b.host).run([*exec_, "df", "-Pk", p.mount], timeout=cfg.command_timeout),
    )
    backups = bj.parse_list_backups(listing.stdout, b.server)
    oldest = pitr.oldest_backup(backups)
    if oldest is None or oldest.end_time is None:
        service._refuse_pitr(text, f"barman has no finished backup of {b.server} to recover from")
    chosen = pitr.base_backup_for(backups, target)
    if chosen is None:
        service._refuse_pitr(
            text,
            f"the target time {pitr.target_text(target)} is before the end of the oldest backup "
            f"{oldest.backup_id} ({oldest.end_time.isoformat()}): barman cannot recover to it",
        )
    need = (chosen.size_bytes or 0) + (chosen.wal_size_bytes or 0)
    free = df_free_bytes(df.stdout)
    if free is None:
        service._refuse_pitr(
            text, f"cannot read free space at {p.mount} on {b.host}: {(df.stderr or df.stdout).strip()[:120]}"
        )
    if free < need:
        service._refuse_pitr(
            text,
            f"only {size(free)} free at {p.mount} ({p.volume}) on {b.host}; backup {chosen.backup_id} "
            f"and its WAL need {size(need)}",
        )
    return pitr.Request(
        target,
        chosen.backup_id,
        [
            f"target {pitr.target_text(target)}",
            f"base backup {chosen.backup_id} (ended {chosen.end_time.isoformat() if chosen.end_time else '?'}): "
            "the newest that ended before the target",
            f"{size(free)} free at {p.mount} ({p.volume}); the backup and its WAL need {size(need)}",
            f"the scratch copy answers on 127.0.0.1:{p.port} for {p.keep_minutes} min, or until `runs cancel`",
        ],
    )


_CHECKS = {
    "base-backup": _check_backup,
    "nightly-recover": _check_nightly,
    "restore": _check_restore,
    "prove-nightly": _check_prove,
}


def follow(run: Run, *, poll: float = 0.1, out=sys.stdout, exit_grace: float = 15.0, until=None) -> RunState:
    """Print a run's log (cleaned of control sequences) as it grows until the run has ended and
    its supervisor has exited (it writes a drill's report and last words after the final state),
    or until ``until()`` is true (a PITR whose copy is up); return the state then."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    offset = 0
    final_since: float | None = None

    def pump(final: bool = False) -> None:
        nonlocal offset
        while True:
            data, offset = run.read_log(offset)
            text = decoder.decode(data, final=final and not data)
            if text:
                out.write(clean(text))
                out.flush()
            if not data:
                return

    while True:
        pump()
        rec = run.record()
        state = effective_state(rec)
        if until is not None and state in ACTIVE and until():
            pump()
            return state
        if state not in ACTIVE and state != RunState.UNKNOWN:
            final_since = final_since or time.monotonic()
            from ..procs import alive

            if not alive(rec.get("pid"), rec.get("pid_start")) or time.monotonic() - final_since > exit_grace:
                pump(final=True)
                return effective_state(run.record())
        elif state == RunState.UNKNOWN:
            raise ConsoleError(str(rec.get("error") or f"run {run.id}: run.json unreadable"))
        time.sleep(poll)

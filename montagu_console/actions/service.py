"""Start, refuse, follow and cancel actions: the one place where read-only is enforced."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from ..config import Config
from ..errors import ConsoleError
from ..transports import HostPool
from . import audit, locks, plans
from .runs import Run, RunStore

SPACE_FACTOR = 1.2


class ActionRefused(ConsoleError):
    """The action was not started; the message says why."""


class ActionService:
    """Actions for one config. Every entry point checks read-only before anything else."""

    def __init__(self, config: Config, *, read_only: bool | None = None):
        self.config = config
        self.read_only = config.read_only if read_only is None else read_only
        self.runs = RunStore(config.state_dir)

    def info(self, action: str) -> plans.ActionInfo:
        return plans.info(self.config, action)

    def _refuse(self, action: str, reason: str) -> None:
        audit.append(self.config.state_dir, "refused", action=action, host=self.info(action).host, reason=reason)
        raise ActionRefused(f"{action} refused: {reason}")

    async def preflight(self, action: str) -> list[str]:
        """Refuse (ActionRefused) when the action must not start; else the facts checked."""
        info = self.info(action)
        if self.read_only:
            self._refuse(action, "read-only mode (--read-only or read_only: true in the config)")
        holder = locks.holder(self.config.state_dir, action, info.host)
        active = [r for r in self.runs.active() if r.record().get("action") == action]
        if holder or active:
            who_ = f"run {active[0].id}" if active else f"pid {holder}"
            self._refuse(action, f"{action} is already running on {info.host} ({who_})")
        pool = HostPool(self.config.hosts, command_timeout=self.config.command_timeout)
        try:
            return await _CHECKS[action](self, pool)
        finally:
            await pool.close()

    def start(self, action: str, *, confirmation: str) -> Run:
        """Start ``action`` detached (after :meth:`preflight`); the audit log records the request."""
        info = self.info(action)
        if self.read_only:
            self._refuse(action, "read-only mode (--read-only or read_only: true in the config)")
        if info.confirm == "typed" and confirmation not in (info.confirm_text, "--yes"):
            self._refuse(action, f"confirmation did not match: type {info.confirm_text!r} to confirm")
        plan = plans.plan(self.config, action)
        run = self.runs.create(action, plan)
        run.update(operator=audit.who(), confirmation=confirmation)
        audit.append(self.config.state_dir, "started", action=action, host=info.host, run_id=run.id,
                     profile=plan.get("profile"), confirmation=confirmation,
                     steps=[s["name"] for s in plan["steps"]])
        run = spawn_supervisor(run)
        if run.record().get("state") == "refused":
            raise ActionRefused(f"{action} refused: {run.record().get('error')}")
        return run


def spawn_supervisor(run: Run, *, resume: bool = False) -> Run:
    """Start the run's supervisor detached (own session, no terminal) and wait until it has begun."""
    argv = [sys.executable, "-m", "montagu_console.actions.supervisor", str(run.path)]
    if resume:
        argv.append("--resume")
    run.update(state="starting")
    with open(run.path / "supervisor.out", "ab") as out:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True, close_fds=True, cwd="/", env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 10
    while run.record().get("state") == "starting" and time.monotonic() < deadline:
        time.sleep(0.05)
    return run


async def _check_backup(service: ActionService, pool: HostPool) -> list[str]:
    from ..humanfmt import size
    from ..probes import ProbeContext
    from ..probes import barman_json as bj
    from ..probes.barman import run_barman

    cfg = service.config
    ctx = ProbeContext(cfg, pool)
    exec_ = plans.container_exec_prefix(cfg) if cfg.barman.container else []
    listing, df = await asyncio.gather(
        run_barman(ctx, "-f", "json", "list-backup", cfg.barman.server),
        pool.transport(cfg.barman.host).run([*exec_, "df", "-Pk", cfg.barman.home], timeout=cfg.command_timeout))
    backups = bj.parse_list_backups(listing.stdout, cfg.barman.server)
    running = [b.backup_id for b in backups if b.status == "STARTED"]
    if running:
        service._refuse("base-backup", f"barman is already taking backup {running[0]} (started by cron or another operator)")
    last = next((b for b in backups if b.status == "DONE"), None)
    need = int(SPACE_FACTOR * (last.size_bytes or 0)) if last else 0
    free = df_free_bytes(df.stdout)
    if free is None:
        service._refuse("base-backup", f"cannot read free space at {cfg.barman.home} on {cfg.barman.host}: "
                                       f"{(df.stderr or df.stdout).strip()[:120]}")
    if free < need:
        service._refuse("base-backup", f"only {size(free)} free at {cfg.barman.home}; a backup needs "
                                       f"{SPACE_FACTOR} x the last backup = {size(need)}")
    return ["no backup running", f"{size(free)} free at {cfg.barman.home} (need {size(need)})"]


def df_free_bytes(output: str) -> int | None:
    """Free bytes from the last line of ``df -Pk`` output, None when it cannot be read."""
    try:
        return int(output.strip().splitlines()[-1].split()[3]) * 1024
    except (IndexError, ValueError):
        return None


async def _busy_containers(service: ActionService, pool: HostPool, action: str, host: str, names) -> list[str]:
    docker = pool.docker(host)
    for name in names:
        state = await docker.container_state(name)
        if state and state.running:
            service._refuse(action, f"container {name} is running on {host}: bb8, cron or another operator "
                                    "is already doing this")
    return [f"no {', '.join(names)} container running on {host}"]


async def _check_nightly(service: ActionService, pool: HostPool) -> list[str]:
    from .steps import nightly_mount_problem

    n, b = service.config.nightly, service.config.barman
    if problem := await nightly_mount_problem(service.config, pool):
        service._refuse("nightly-recover", problem)
    busy = await _busy_containers(service, pool, "nightly-recover", n.host, (plans.REPLAY_CONTAINER, "bb8"))
    return [f"volume {n.volume} is mounted at {n.mount} in barman's container {b.container}", *busy]


async def _check_restore(service: ActionService, pool: HostPool) -> list[str]:
    s = service.config.science
    return await _busy_containers(service, pool, "restore", s.host, ("bb8",))


_CHECKS = {"base-backup": _check_backup, "nightly-recover": _check_nightly, "restore": _check_restore}


def follow(run: Run, *, poll: float = 0.05, out=sys.stdout) -> str:
    """Print a run's log as it grows until the run ends; return its final state."""
    offset = 0
    while True:
        text, offset = run.follow(offset)
        if text:
            out.write(text)
            out.flush()
        state = run.state
        if state not in ("running", "starting"):
            text, offset = run.follow(offset)
            out.write(text)
            return state
        time.sleep(poll)

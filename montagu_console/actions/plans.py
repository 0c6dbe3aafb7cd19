"""What each action does, step by step, from the config (pure: no I/O).

A plan is plain JSON so the detached supervisor can run it after the console has gone:
``{"action", "host", "profile", "title", "steps": [{"name", "kind", "host", ...}]}``.
Step kinds: ``command`` (argv on a host), ``timestamp`` (write ``.barman-last-restore``),
``replay`` (WAL replay in a temporary container), ``container_stop``, ``container_start``,
``wait_ready`` (follow the science database's redo until it answers).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from ..config import Config
from ..errors import ConsoleError

ACTIONS = ("base-backup", "nightly-recover", "restore")
REPLAY_CONTAINER = "barman-replay-wal"


@dataclass(frozen=True)
class ActionInfo:
    """How the console presents an action and what confirmation it needs."""

    action: str
    key: str
    title: str
    host: str
    confirm: str  # "yn" or "typed"
    confirm_text: str | None  # what must be typed, for "typed"
    warning: str


def info(config: Config, action: str) -> ActionInfo:
    """The key, title, host and confirmation of ``action``."""
    if action == "base-backup":
        return ActionInfo(action, "b", f"base backup of {config.barman.server}", config.barman.host, "yn", None,
                          f"barman backup {config.barman.server} --wait on {config.barman.host} "
                          "(hours on the real estate; it loads the primary)")
    if action == "nightly-recover":
        n = config.nightly
        target = n.volume or n.path
        return ActionInfo(action, "n", f"nightly recover into {target} (profile {n.profile})", n.host, "typed",
                          target, f"it overwrites the nightly copy {target} on {n.host}")
    if action == "restore":
        s = config.science
        return ActionInfo(action, "r", f"science restore (profile {s.profile})", s.host, "typed", s.host,
                          f"it stops {s.container} and overwrites science's database on {s.host}")
    raise ConsoleError(f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")


def container_exec_prefix(config: Config) -> list[str]:
    """The argv prefix that runs a command inside barman's container (barman.command minus barman)."""
    command = list(config.barman.command)
    if command and posixpath.basename(command[-1]) == "barman" and len(command) > 1:
        return command[:-1]
    raise ConsoleError("barman.command must end with `barman` after a container exec prefix "
                       "(e.g. [docker, exec, barman-montagu, barman]) for the nightly recover")


def plan(config: Config, action: str) -> dict:
    """The steps of ``action`` under the configured profile."""
    i = info(config, action)
    base = {"action": action, "host": i.host, "title": i.title, "config": str(config.path)}
    if action == "base-backup":
        b = config.barman
        return base | {"profile": None, "steps": [
            _command("barman backup", b.host, [*b.command, "backup", b.server, "--wait"]),
        ]}
    if action == "nightly-recover":
        return base | {"profile": config.nightly.profile, "steps": _nightly_steps(config)}
    s = config.science
    return base | {"profile": s.profile, "steps": [
        {"name": f"stop {s.container}", "kind": "container_stop", "host": s.host, "container": s.container},
        _command(" ".join(s.restore_command[:2]), s.host, list(s.restore_command)),
        {"name": f"start {s.container}", "kind": "container_start", "host": s.host, "container": s.container},
        {"name": "follow the redo until the database answers", "kind": "wait_ready", "host": s.host,
         "container": s.container, "db_user": s.db_user, "db_name": s.db_name,
         "timeout": s.ready_timeout_seconds},
    ]}


def _nightly_steps(config: Config) -> list[dict]:
    n, b = config.nightly, config.barman
    exec_ = container_exec_prefix(config)
    dump = posixpath.join(n.mount, "dump")
    stamp = posixpath.join(n.mount, n.timestamp_file)
    recover = [*b.command, "recover"]
    if n.jobs and n.jobs > 1:
        recover += ["--jobs", str(n.jobs)]
    steps = [
        _command("prepare the dump directory", b.host, [*exec_, "sh", "-c", f"rm -rf {dump} && mkdir -p {dump}"]),
        _command("barman recover latest into the dump directory", b.host, [*recover, b.server, "latest", dump]),
        # The old copy goes only now, after a good recover; without .barman-last-restore the
        # files are "not to be used" until the replay below has succeeded.
        _command("move the recovered files up", b.host, [*exec_, "sh", "-c", _MOVE_UP.format(mount=n.mount, stamp=stamp)]),
        {"name": "replay the WAL in a temporary postgres container", "kind": "replay", "host": n.host,
         "container": REPLAY_CONTAINER, "volume": n.volume, "image": n.replay.image,
         "command": list(n.replay.command), "user": n.replay.user, "data_dir": n.replay.data_dir,
         "ready_command": list(n.replay.ready_command), "timeout": n.replay.timeout_seconds,
         "mounts": list(n.replay.mounts), "env": list(n.replay.env)},
        {"name": f"write {n.timestamp_file}", "kind": "timestamp", "host": b.host, "argv": [*exec_],
         "path": stamp},
    ]
    if n.profile == "bb8":
        steps.append(_command("ship to the starport (" + " ".join(n.ship_command) + ")", n.host,
                              list(n.ship_command)))
    return steps


_MOVE_UP = ("set -e; cd {mount}; rm -f {stamp}; "
            "for f in * .[!.]* ..?*; do [ -e \"$f\" ] || continue; [ \"$f\" = dump ] || rm -rf -- \"$f\"; done; "
            "for f in dump/* dump/.[!.]* dump/..?*; do [ -e \"$f\" ] && mv -- \"$f\" .; done; rmdir dump")


def _command(name: str, host: str, argv: list[str]) -> dict:
    return {"name": name, "kind": "command", "host": host, "argv": argv}

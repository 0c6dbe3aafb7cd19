"""What each action does, step by step, from the config (pure: no I/O).

A plan is plain JSON so the detached supervisor can run it after the console has gone:
``{"action", "host", "profile", "title", "steps": [{"name", "kind", "host", ...}]}``.
Step kinds: ``command`` (argv on a host), ``nightly_files`` (prepare the dump directory, move
the recovered files up, write ``.barman-last-restore``: one constant script in barman's
container, the paths as its arguments), ``replay`` (WAL replay in a temporary container),
``container_stop``, ``container_start``, ``wait_ready`` (follow the science database's redo
until it answers).

No step is ever a shell string built from data: commands are argv lists, and the one script
(:data:`NIGHTLY_SCRIPT`) is a constant that receives paths as positional arguments. A plan keeps
no secret: the replay's environment is kept by name only and resolved from the config when the
step runs.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from ..config import NIGHTLY_DUMP_DIR, Config
from ..errors import ConsoleError

ACTIONS = ("base-backup", "nightly-recover", "restore", "prove-nightly")
REPLAY_CONTAINER = "barman-replay-wal"
PROVE_CONTAINER = "barman-prove-nightly"  # replays the scratch copy of a prove-nightly


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
        return ActionInfo(
            action,
            "b",
            f"base backup of {config.barman.server}",
            config.barman.host,
            "yn",
            None,
            f"barman backup {config.barman.server} --wait on {config.barman.host} "
            "(hours on the real estate; it loads the primary)",
        )
    if action == "nightly-recover":
        n = config.nightly
        target = n.volume or n.path
        return ActionInfo(
            action,
            "n",
            f"nightly recover into {target} (profile {n.profile})",
            n.host,
            "typed",
            target,
            f"it overwrites the nightly copy {target} on {n.host}",
        )
    if action == "restore":
        s = config.science
        return ActionInfo(
            action,
            "r",
            f"science restore (profile {s.profile})",
            s.host,
            "typed",
            s.host,
            f"it stops {s.container} and overwrites science's database on {s.host}",
        )
    if action == "prove-nightly":
        n = config.nightly
        return ActionInfo(
            action,
            "P",
            f"prove the nightly copy {n.volume or n.path} restorable",
            n.host,
            "yn",
            None,
            f"it copies the nightly copy into the scratch volume {scratch_volume(config)} on {n.host}, "
            "replays and verifies it there and removes it; the copy itself is left as it is",
        )
    if action == "pitr":  # its plan needs the target: actions/pitr.py
        p = config.pitr
        return ActionInfo(
            action,
            "p",
            f"point-in-time recovery into {p.volume}",
            config.nightly.host,
            "yn",
            None,
            f"it recovers into the scratch volume {p.volume} on {config.nightly.host} (never the nightly "
            f"copy nor science) and keeps it up {p.keep_minutes} min on port {p.port}",
        )
    raise ConsoleError(f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")


def container_exec_prefix(config: Config) -> list[str]:
    """The argv prefix that runs a command inside barman's container (barman.command minus barman)."""
    prefix = config.barman.exec_prefix()
    if prefix:
        return list(prefix)
    raise ConsoleError(
        "barman.command must end with `barman` after a container exec prefix "
        "(e.g. [docker, exec, barman-montagu, barman]) for the nightly recover"
    )


def plan(config: Config, action: str) -> dict:
    """The steps of ``action`` under the configured profile."""
    i = info(config, action)
    base = {"action": action, "host": i.host, "title": i.title, "config": str(config.path)}
    if action == "base-backup":
        b = config.barman
        return base | {
            "profile": None,
            "steps": [
                _command("barman backup", b.host, [*b.command, "backup", b.server, "--wait"]),
            ],
        }
    if action == "nightly-recover":
        return base | {"profile": config.nightly.profile, "steps": _nightly_steps(config)}
    if action == "prove-nightly":
        return base | {"profile": None, "steps": _prove_steps(config)}
    s = config.science
    return base | {
        "profile": s.profile,
        "steps": [
            {"name": f"stop {s.container}", "kind": "container_stop", "host": s.host, "container": s.container},
            _command(" ".join(s.restore_command[:2]), s.host, list(s.restore_command)),
            {"name": f"start {s.container}", "kind": "container_start", "host": s.host, "container": s.container},
            {
                "name": "follow the redo until the database answers",
                "kind": "wait_ready",
                "host": s.host,
                "container": s.container,
                "db_user": s.db_user,
                "db_name": s.db_name,
                "timeout": s.ready_timeout_seconds,
            },
        ],
    }


def _nightly_steps(config: Config) -> list[dict]:
    n, b = config.nightly, config.barman
    exec_ = container_exec_prefix(config)
    problem = mount_problem(n.mount, b.home) or timestamp_file_problem(n.timestamp_file)
    if problem:
        raise ConsoleError(f"nightly recover refused: {problem}")
    recover = [*b.command, "recover"]
    if n.jobs and n.jobs > 1:
        recover += ["--jobs", str(n.jobs)]
    # what every step that touches files in the nightly mount needs to check it in the container
    files = {
        "kind": "nightly_files",
        "host": b.host,
        "argv": [*exec_],
        "mount": n.mount,
        "barman_home": b.home,
        "timestamp_file": n.timestamp_file,
        "container": b.container,
        "volume": n.volume,
    }
    steps = [
        {"name": "prepare the dump directory", **files, "op": "prepare"},
        _command(
            "barman recover latest into the dump directory",
            b.host,
            [*recover, b.server, "latest", posixpath.join(n.mount, DUMP_DIR)],
        ),
        # The old copy goes only now, after a good recover; without .barman-last-restore the
        # files are "not to be used" until the replay below has succeeded.
        {"name": "move the recovered files up", **files, "op": "move-up"},
        _replay_step(config, "replay the WAL in a temporary postgres container", REPLAY_CONTAINER, n.volume),
        {
            "name": f"write {n.timestamp_file}",
            **files,
            "op": "timestamp",
            "path": posixpath.join(n.mount, n.timestamp_file),
        },
    ]
    if n.profile == "bb8":
        steps.append(_command("ship to the starport (" + " ".join(n.ship_command) + ")", n.host, list(n.ship_command)))
    return steps


def _replay_step(config: Config, name: str, container: str, volume: str | None) -> dict:
    """The replay of ``volume`` in a temporary container; once it answers, the copy is proven
    (science.verify and science.rpo_sql: actions/proof.py)."""
    r = config.nightly.replay
    # env: NAMES only; the supervisor takes the values from the config when it runs the step
    return {
        "name": name,
        "kind": "replay",
        "host": config.nightly.host,
        "container": container,
        "volume": volume,
        "image": r.image,
        "command": list(r.command),
        "user": r.user,
        "data_dir": r.data_dir,
        "ready_command": list(r.ready_command),
        "timeout": r.timeout_seconds,
        "mounts": list(r.mounts),
        "env_names": env_names(r.env),
    }


def scratch_volume(config: Config) -> str:
    """The Docker volume a prove-nightly copies the nightly copy into (named after it)."""
    return f"{config.nightly.volume or 'nightly'}_proof"


def _prove_steps(config: Config) -> list[dict]:
    """Copy the nightly copy (mounted read-only) into a scratch volume, then replay and prove that."""
    n, scratch = config.nightly, scratch_volume(config)
    replay = _replay_step(
        config, f"replay the scratch copy in {PROVE_CONTAINER} and prove it", PROVE_CONTAINER, scratch
    )
    copy = {
        "name": f"copy the nightly copy {n.volume} into the scratch volume {scratch}",
        "kind": "scratch_copy",
        "source": n.volume,
        "timestamp_file": n.timestamp_file,
        **{k: replay[k] for k in ("host", "volume", "image", "mounts", "env_names", "timeout")},
    }
    return [copy, replay | {"scratch": True}]


DUMP_DIR = NIGHTLY_DUMP_DIR


def mount_problem(mount: str | None, barman_home: str | None) -> str | None:
    """Why ``mount`` must not be emptied and refilled by the nightly recover, or None.

    Defence in depth behind the config's own checks: the recover deletes everything under the
    mount, so it must be an absolute, normalised directory other than ``/`` that neither holds
    barman's home (every backup and the WAL archive) nor lies inside it.
    """
    if not mount or not isinstance(mount, str):
        return "nightly.mount is not set"
    if not mount.startswith("/"):
        return f"nightly.mount {mount!r} is not an absolute path"
    if any(ord(c) < 32 or c == "\x7f" for c in mount):
        return "nightly.mount contains a control character"
    if posixpath.normpath(mount) != mount or "//" in mount:
        return f"nightly.mount {mount!r} is not a normalised path"
    if mount == "/":
        return "nightly.mount is / (the recover would empty the whole file system)"
    if barman_home:
        home = posixpath.normpath(barman_home)
        if home == mount or home.startswith(mount.rstrip("/") + "/"):
            return f"nightly.mount {mount!r} holds barman's home {barman_home!r} (every backup and the WAL archive)"
        if mount.startswith(home.rstrip("/") + "/"):
            return f"nightly.mount {mount!r} lies inside barman's home {barman_home!r}"
    return None


def timestamp_file_problem(name: str | None) -> str | None:
    """Why ``name`` is not a plain file name in the nightly mount, or None."""
    if not name or not isinstance(name, str):
        return "nightly.timestamp_file is not set"
    if "/" in name or name in (".", "..", DUMP_DIR) or name.startswith("-") or any(ord(c) < 32 for c in name):
        return f"nightly.timestamp_file {name!r} is not a plain file name"
    return None


def volume_mount_problem(
    volume: str | None, mount: str, container: str | None, host: str, mounts: list[dict] | None
) -> str | None:
    """Why ``volume`` is not known to be mounted at ``mount`` in barman's ``container``, or None.

    ``mounts`` is the container's ``Mounts`` as ``docker inspect`` gives them (``Type``, ``Name``,
    ``Destination``), or None when there is no such container. Without this, a mount path that is
    just a directory of the container (a typo, a volume mounted elsewhere) would be emptied and
    refilled while the real nightly copy stays as it was.
    """
    if not volume:
        return "nightly.volume is not set: the nightly recover refills a Docker volume mounted in barman's container"
    if not container:
        return (
            f"barman.container is not set: cannot check that volume {volume} is mounted at {mount} "
            "in barman's container"
        )
    if mounts is None:
        return f"barman's container {container} does not exist on {host}"
    for m in mounts:
        if (
            m.get("Type") == "volume"
            and m.get("Name") == volume
            and posixpath.normpath(m.get("Destination") or "/") == mount
        ):
            return None
    elsewhere = sorted(str(m.get("Destination")) for m in mounts if m.get("Name") == volume)
    other = [
        f"{m.get('Type')} {m.get('Name') or m.get('Source')}"
        for m in mounts
        if posixpath.normpath(m.get("Destination") or "/") == mount
    ]
    detail = (f"; it is mounted at {', '.join(elsewhere)}" if elsewhere else "") + (
        f"; {mount} is {other[0]}" if other else ""
    )
    return f"volume {volume} is not mounted at {mount} in barman's container {container} on {host}{detail}"


def env_names(env) -> list[str]:
    """The names of ``K=V`` environment entries (what plan.json may keep)."""
    return [item.split("=", 1)[0] for item in env]


def env_values(env, names: list[str]) -> list[str]:
    """``K=V`` entries of ``env`` for ``names``, in that order; KeyError naming a missing one."""
    values = {}
    for item in env:
        key, _, value = item.partition("=")
        values[key] = value
    return [f"{name}={values[name]}" for name in names]


# The nightly recover's file operations (and the PITR scratch copy's: ``clear`` empties it), run
# in barman's container as ONE constant script: the data (mount, barman's home, the timestamp
# file's name, the stamp) arrive as positional arguments and are always quoted, so no path can
# become shell syntax. Before touching anything it checks the mount again where it matters, in
# the container: absolute, not / and, after symlinks are resolved, neither barman's home, a
# parent of it nor inside it.
#   sh -c SCRIPT sh OP MOUNT BARMAN_HOME TIMESTAMP_FILE [STAMP]
NIGHTLY_SCRIPT = r"""set -eu
op=$1 mount=$2 home=$3 stamp_file=$4
refuse() { printf 'refusing: %s
' "$1" >&2; exit 2; }
case $mount in /?*) ;; *) refuse "nightly.mount $mount is not an absolute path other than /" ;; esac
case $stamp_file in ''|.|..|dump|*/*|-*) refuse "nightly.timestamp_file $stamp_file is not a plain file name" ;; esac
cd -- "$mount"
here=$(pwd -P)
[ "$here" != / ] || refuse "nightly.mount $mount is / once symlinks are resolved"
if real_home=$(cd -- "$home" 2>/dev/null && pwd -P); then
    case "$real_home/" in "$here"/*) refuse "nightly.mount $mount holds barman's home $home" ;; esac
    case "$here/" in "$real_home"/*) refuse "nightly.mount $mount lies inside barman's home $home" ;; esac
fi
case $op in
prepare)
    rm -rf -- ./dump
    mkdir -- ./dump
    ;;
move-up)
    [ -d ./dump ] || refuse "no dump directory in $mount (did barman recover run?)"
    rm -f -- "./$stamp_file"
    for f in ./* ./.[!.]* ./..?*; do
        if [ -e "$f" ] || [ -L "$f" ]; then [ "$f" = ./dump ] || rm -rf -- "$f"; fi
    done
    for f in ./dump/* ./dump/.[!.]* ./dump/..?*; do
        if [ -e "$f" ] || [ -L "$f" ]; then mv -- "$f" ./; fi
    done
    rmdir -- ./dump
    ;;
clear)
    for f in ./* ./.[!.]* ./..?*; do
        if [ -e "$f" ] || [ -L "$f" ]; then rm -rf -- "$f"; fi
    done
    ;;
timestamp)
    tmp="./.$stamp_file.tmp"
    rm -f -- "$tmp"
    printf '%s
' "$5" > "$tmp"
    mv -f -- "$tmp" "./$stamp_file"
    ;;
*)
    refuse "unknown operation $op"
    ;;
esac
"""


def _command(name: str, host: str, argv: list[str]) -> dict:
    return {"name": name, "kind": "command", "host": host, "argv": argv}

"""The off-site barman's SSH tunnel to the primary, as annex's ``autossh -L 5432:production:5432``.

A background ``ssh -N -L 127.0.0.1:<tunnel>:127.0.0.1:<primary>`` logged in to the lab's main
sshd as the tunnel user (forwarding to the primary only, see sshd.py). barman-aws reaches the
primary only through 127.0.0.1:<tunnel>. Like the real one, nothing restarts it when it dies.
"""

from __future__ import annotations

from ..clock import now_iso
from . import sshd
from .layout import Layout
from .postgres import is_ready
from .proc import LabError, pid_alive, pid_running, program, read_pid, spawn, stop_pid, wait_for

# `sh -c` records its pid, then becomes ssh: the pidfile holds ssh's pid. It is written beside
# and renamed into place, so a reader never sees it created but still empty.
_PIDFILE_EXEC = 'echo $$ >"$1.new" && mv -f "$1.new" "$1" && shift && exec "$@"'


def argv(lab: Layout) -> list[str]:
    """The tunnel's ssh command line (its key path is the marker of its process)."""
    return [
        program("ssh"),
        *sshd.ssh_argv(lab, key=lab.tunnel_key)[1:],
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "-L",
        f"127.0.0.1:{lab.tunnel_port}:127.0.0.1:{lab.pg_port}",
        f"{lab.tunnel_user}@127.0.0.1",
    ]


def tunnel_pid(lab: Layout) -> int | None:
    """The tunnel's ssh pid if it is running."""
    pid = read_pid(lab.tunnel_pidfile)
    return pid if pid_running(pid, str(lab.tunnel_key)) else None


def exited(lab: Layout) -> bool:
    """True once the started tunnel has recorded its pid and that process is gone. A missing
    pidfile means it has not recorded it yet; a live pid whose command line does not name the
    tunnel yet is still becoming ssh (it reads empty during the exec)."""
    pid = read_pid(lab.tunnel_pidfile)
    return pid is not None and not pid_alive(pid)


def forwarding(lab: Layout) -> bool:
    """True if the primary answers through the tunnel's port."""
    return is_ready("127.0.0.1", lab.tunnel_port)


_START_MARK = "== tunnel started"


def _log_tail(lab: Layout) -> str:
    """The last lines ssh wrote since the latest start."""
    try:
        text = lab.tunnel_log.read_text(errors="replace")
    except FileNotFoundError:
        return "no log"
    lines = [line.strip() for line in text.rsplit(_START_MARK, 1)[-1].splitlines()[1:] if line.strip()]
    return " | ".join(lines[-2:]) or "no output"


def start(lab: Layout, timeout: float = 20) -> None:
    """Start the tunnel unless it runs; wait until the primary answers through it."""
    if not tunnel_pid(lab):
        lab.tunnel_pidfile.unlink(missing_ok=True)
        with open(lab.tunnel_log, "a") as log:
            log.write(f"{_START_MARK} {now_iso()}\n")
        command = ["/bin/sh", "-c", _PIDFILE_EXEC, "sh", str(lab.tunnel_pidfile), *argv(lab)]
        spawn("start the tunnel", command, lab.tunnel_log)

    def gone() -> str | None:
        return f"ssh exited ({lab.tunnel_log} ends: {_log_tail(lab)})" if exited(lab) else None

    try:
        wait_for("wait for the tunnel", lambda: tunnel_pid(lab) and forwarding(lab), timeout=timeout, gone=gone)
    except LabError as exc:
        raise LabError(f"{exc} (127.0.0.1:{lab.tunnel_port} -> 127.0.0.1:{lab.pg_port})") from None


def stop(lab: Layout) -> None:
    """Stop the tunnel if it runs (its forwarded connections end with it)."""
    pid = tunnel_pid(lab)
    if pid:
        stop_pid("stop the tunnel", pid, str(lab.tunnel_key), timeout=10)

"""Running commands for the lab: timeouts, one-line errors, waiting, pid checks."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import ConsoleError
from .layout import PG_BIN

# Debian package that provides each external program the lab runs.
PACKAGES = {
    "dockerd": "docker.io",
    "docker": "docker.io",
    "docker-init": "docker.io",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ssh-keyscan": "openssh-client",
    "rsync": "rsync",
    "busybox": "busybox-static",
    "setsid": "util-linux",
    "useradd": "passwd",
    "initdb": "postgresql-15",
    "pg_ctl": "postgresql-15",
    "postgres": "postgresql-15",
    "psql": "postgresql-client-15",
    "pg_isready": "postgresql-client-15",
    "ss": "iproute2",
}
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql", "pg_isready")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LabError(ConsoleError):
    """A lab step failed; the message is one line naming the step and the command."""


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def missing_binary(name: str) -> LabError:
    """The error for a program that is not installed, naming its Debian package."""
    package = PACKAGES.get(Path(name).name, "the package that provides it")
    return LabError(f"{name} is not installed: apt-get install {package}")


def program(name: str) -> str:
    """Absolute path of a program the lab runs; LabError naming its Debian package if missing."""
    if name in PG_PROGRAMS:
        path: str | None = str(PG_BIN / name) if (PG_BIN / name).exists() else None
    else:
        path = shutil.which(name, path=SYSTEM_PATH)
    if not path:
        raise missing_binary(name)
    return path


def run(
    step: str,
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 60,
    input: str | bytes | None = None,
    user: str | None = None,
    check: bool = True,
    secrets: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """Run ``argv`` (as ``user`` if given) and return the result; raise LabError on failure.

    Output is text unless ``input`` is bytes. ``secrets`` are blanked out of any error message.
    """
    args = [str(a) for a in argv]
    line = shlex.join(args)
    try:
        result = subprocess.run(
            args,
            input=input,
            capture_output=True,
            text=not isinstance(input, bytes),
            timeout=timeout,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            cwd="/",
        )
    except FileNotFoundError:
        raise missing_binary(args[0]) from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{step}: `{line}` timed out after {timeout:g} s") from None
    if check and result.returncode != 0:
        err = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
        out = result.stdout if isinstance(result.stdout, str) else result.stdout.decode(errors="replace")
        detail = _redact(_tail(err or out), secrets) or "no output"
        raise LabError(f"{step}: `{line}` failed (exit {result.returncode}): {detail}")
    return result


def spawn(step: str, argv: Sequence[str | os.PathLike[str]], log: Path) -> None:
    """Start ``argv`` detached (``setsid --fork``: own session, not our child), output appended to ``log``."""
    args = [program("setsid"), "--fork", *[str(a) for a in argv]]
    with open(log, "ab") as out:
        try:
            subprocess.run(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True, timeout=10, cwd="/")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise LabError(f"{step}: `{shlex.join(args)}` failed: {exc}") from None


def wait_for(
    step: str,
    probe: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.1,
    gone: Callable[[], str | None] | None = None,
) -> object:
    """Call ``probe`` until it returns something truthy; raise LabError after ``timeout`` seconds.

    A LabError raised by ``probe`` counts as "not yet"; its message is reported on timeout.
    ``gone`` returns a reason when the awaited thing has died, which ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            value = probe()
            if value:
                return value
        except LabError as exc:
            last = f": {exc}"
        reason = gone() if gone else None
        if reason:
            raise LabError(f"{step}: {reason}")
        if time.monotonic() >= deadline:
            raise LabError(f"{step}: not ready after {timeout:g} s{last}")
        time.sleep(interval)


def read_pid(pidfile: Path) -> int | None:
    """The pid in the first line of ``pidfile``, or None if the file is missing or empty."""
    try:
        first = pidfile.read_text().split("\n", 1)[0].strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(first) if first.isdigit() else None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie, whatever it runs (its command line reads empty
    while it is in the middle of an exec)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def pid_running(pid: int | None, marker: str) -> bool:
    """True if ``pid`` is alive and its command line contains ``marker`` (guards against pid reuse)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return marker in cmdline and pid_alive(pid)


def pids_with(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker``."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if pid != os.getpid() and pid_running(pid, marker)]


def stop_pid(step: str, pid: int, marker: str, *, timeout: float = 20) -> None:
    """SIGTERM ``pid`` (only if it still matches ``marker``), wait for it to exit, else SIGKILL it."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        if not pid_running(pid, marker):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        try:
            wait_for(step, lambda: not pid_running(pid, marker), timeout=wait, interval=0.05)
            return
        except LabError:
            if sig == signal.SIGKILL:
                raise

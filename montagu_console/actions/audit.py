"""The append-only audit log: ``state_dir/audit.jsonl``, one JSON record per line.

Who did it comes from what the operator cannot forge: ``user`` is the real uid's name, and
``login_user`` the login uid (``/proc/self/loginuid``, set once by PAM at login and kept
through sudo and su), so ``sudo montagu-console`` records root AND the person behind it.
``ssh_client`` comes from the utmp entry of the controlling terminal, which sshd writes as
root. Without such an entry (no terminal, cron, a detached process) the SSH_CONNECTION
variable is the only hint: it is recorded as ``ssh_client_claimed``, never as ``ssh_client``.
``SUDO_USER`` and ``SSH_CONNECTION`` can be set by anyone and decide nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import pwd
import struct
from pathlib import Path
from typing import Any

from ..clock import utc_now
from ..redact import redact_data
from . import files

UTMP_PATH = Path("/var/run/utmp")
NO_LOGINUID = 4294967295  # (uid_t)-1: no login uid was set (a daemon, a container)

# struct utmp on Linux (glibc, 64-bit and 32-bit alike): 384 bytes
_UTMP = struct.Struct("<hhi32s4s32s256shhiii16s20s")
_USER_PROCESS = 7


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def login_uid() -> int | None:
    """The login uid PAM set for this session, None when there is none."""
    try:
        value = int(Path("/proc/self/loginuid").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if value == NO_LOGINUID else value


def _tty_line() -> str | None:
    """The controlling terminal's utmp line (``pts/3``), None when there is none."""
    for fd in (0, 1, 2):
        try:
            name = os.ttyname(fd)
        except OSError:
            continue
        return name.removeprefix("/dev/")
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return None
    try:
        return os.ttyname(fd).removeprefix("/dev/")
    except OSError:
        return None
    finally:
        os.close(fd)


def utmp_client(line: str | None, path: Path = UTMP_PATH) -> str | None:
    """The remote host sshd recorded in utmp for terminal ``line``, None when there is none."""
    if not line:
        return None
    try:
        data = files.read_bytes(path, limit=_UTMP.size * 4096)
    except (OSError, files.StateFileError):
        return None
    found = None
    for off in range(0, len(data) - _UTMP.size + 1, _UTMP.size):
        fields = _UTMP.unpack_from(data, off)
        ut_type, ut_line, host, addr = fields[0], fields[3], fields[6], fields[12]
        if ut_type != _USER_PROCESS or ut_line.split(b"\0", 1)[0].decode("utf-8", "replace") != line:
            continue
        text = host.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
        if addr.strip(b"\0"):
            a = addr if addr[4:].strip(b"\0") else addr[:4]
            with contextlib.suppress(ValueError):
                text = str(ipaddress.ip_address(a))
        found = text or None
    return found


def who(*, utmp: Path = UTMP_PATH) -> dict[str, Any]:
    """The operator: the real user, the login behind sudo, and the SSH client (see the module)."""
    uid = os.getuid()
    luid = login_uid()
    out: dict[str, Any] = {"user": _name(uid), "uid": uid, "login_user": _name(luid) if luid is not None else None}
    client = utmp_client(_tty_line(), utmp)
    out["ssh_client"] = client
    if client is None:
        env = os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or ""
        out["ssh_client_claimed"] = env.split()[0][:64] if env.split() else None
    return out


def append(state_dir: Path, event: str, *, operator: dict | None = None, **fields: Any) -> dict:
    """Append one record (time, operator, event and ``fields``), fsynced; return it.

    ``operator`` is the identity recorded when the run was started (a detached supervisor has
    no terminal of its own); by default it is :func:`who` of this process.
    """
    record = {"time": utc_now().isoformat(timespec="seconds"), **(operator or who()), "event": event, **fields}
    line = json.dumps(redact_data(record), sort_keys=True, default=str) + "\n"
    files.ensure_dir(Path(state_dir))
    files.append_line(Path(state_dir) / "audit.jsonl", line)
    return record


def read(state_dir: Path) -> list[dict]:
    """Every audit record, oldest first (unreadable lines are skipped, never lost from the file)."""
    path = Path(state_dir) / "audit.jsonl"
    try:
        text = files.read_text(path, limit=1 << 30)
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out

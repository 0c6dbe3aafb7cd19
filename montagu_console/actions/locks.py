"""Single-flight locks, one per action and host, shared by every operator of this machine.

Where: ``lock_dir`` from the config when set; else ``/run/montagu-console`` (created ``0770``:
root and the directory's group, which an admin may set to the operators' group; no other local
user can create, squat or replace a lock there, as they could in a world-writable ``1777``
directory); else, when that cannot be used (a console run by a user who cannot write
``/run``, e.g. on a laptop), ``state_dir/locks``, which only that user shares.

What holds a lock: the run's supervisor takes an ``flock`` on ``<action>@<host>.lock`` and
writes into it its pid, its start time (``/proc/PID/stat`` field 22) and its process group.
The lock is held while the flock is, and ALSO while any member of the recorded process group
is alive: the steps run as children in the supervisor's group, so a SIGKILLed supervisor (whose
flock the kernel drops) still holds the lock as long as its step runs on. A process counts as
alive only if its pid AND its start time match, so a reused pid never holds a lock.

Lock files are opened with ``O_NOFOLLOW`` and created ``0600``: a symlink or any non-regular
file in the lock's place is refused, never followed. A lock file another user owns and this
user cannot read counts as held (never as free), with that user named.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import procs
from ..clock import now_iso
from ..errors import ConsoleError
from . import files

DEFAULT_LOCK_DIR = Path("/run/montagu-console")
LOCK_DIR_MODE = 0o770

_NAME = re.compile(r"[^A-Za-z0-9_.@-]")


class LockError(ConsoleError):
    """The lock file cannot be used (a symlink, not a regular file, an unusable directory)."""


def lock_dir(config: Any) -> Path:
    """The lock directory for ``config`` (see the module's docstring), created if missing."""
    configured = getattr(config, "lock_dir", None)
    if configured:
        return files.ensure_dir(Path(configured), mode=LOCK_DIR_MODE)
    try:
        return files.ensure_dir(DEFAULT_LOCK_DIR, mode=LOCK_DIR_MODE)
    except files.StateDirError:
        if os.path.lexists(DEFAULT_LOCK_DIR) and os.geteuid() == 0:
            raise  # root can use /run: something is wrong there, not merely unwritable
    return files.ensure_dir(Path(config.state_dir) / "locks")


def lock_path(directory: Path, action: str, host: str) -> Path:
    name = _NAME.sub("_", f"{action}@{host}").lstrip(".")
    return Path(directory) / f"{name}.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file records it."""

    path: Path
    pid: int | None = None
    start: int | None = None
    pgid: int | None = None
    run_id: str | None = None
    user: str | None = None
    owner_uid: int | None = None  # set when the file could not be read

    def describe(self) -> str:
        if self.owner_uid is not None:
            return f"lock {self.path} belongs to {_uid_name(self.owner_uid)} and is not readable by this user"
        who = f"run {self.run_id}" if self.run_id else f"pid {self.pid}"
        by = f" of {self.user}" if self.user else ""
        return f"{who}{by}, process group {self.pgid} (lock {self.path})"


def _uid_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _record(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 4096)
    try:
        value = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, ValueError):
        # an old console wrote only the pid: honour it (without a start time)
        text = data.decode("ascii", "replace").strip()
        value = {"pid": int(text)} if text.isdigit() else {}
    return value if isinstance(value, dict) else {}


def _holder_of(path: Path, rec: dict) -> Holder | None:
    def num(key: str) -> int | None:
        v = rec.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    pid, start, pgid = num("pid"), num("start"), num("pgid")
    if pid is None or not procs.group_alive(pid, start, pgid):
        return None
    return Holder(path, pid, start, pgid, rec.get("run_id"), rec.get("user"))


def _open(path: Path, flags: int) -> int:
    try:
        fd = files.open_fd(path, flags)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
            raise
        why = "is a symbolic link (not followed)" if e.errno == errno.ELOOP else (e.strerror or str(e))
        raise LockError(f"lock {path}: {why}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockError(f"lock {path}: not a regular file")
    return fd


def _unreadable(path: Path) -> Holder:
    try:
        uid = os.lstat(path).st_uid
    except OSError:
        uid = -1
    return Holder(path, owner_uid=uid)


class Lock:
    """A lock taken by this process; :meth:`release` gives it up."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd: int | None = fd

    def release(self) -> None:
        """Give the lock up. The record is cleared only when no other member of this process
        group runs (a step's leftover child keeps the lock held, as the rule says)."""
        if self.fd is None:
            return
        try:
            if not procs.group_members(os.getpgrp(), exclude=os.getpid()):
                os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)
            self.fd = None


def acquire(
    directory: Path, action: str, host: str, *, run_id: str | None = None, user: str | None = None
) -> Lock | None:
    """Take the lock for this process (and its process group), or None when it is held."""
    path = lock_path(directory, action, host)
    try:
        fd = _open(path, os.O_RDWR | os.O_CREAT)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            return None  # another user's lock: held, see holder()
        raise LockError(f"lock {path}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if _holder_of(path, _record(fd)) is not None:  # a killed supervisor's step still runs
        os.close(fd)
        return None
    me = os.getpid()
    rec = {
        "pid": me,
        "start": procs.start_time(me),
        "pgid": os.getpgrp(),
        "run_id": run_id,
        "user": user,
        "action": action,
        "host": host,
        "since": now_iso(),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(rec) + "\n").encode())
    os.fsync(fd)
    return Lock(path, fd)


def holder(directory: Path, action: str, host: str) -> Holder | None:
    """Who holds the lock, or None when it is free (reading it never takes it)."""
    path = lock_path(directory, action, host)
    try:
        fd = _open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:  # EACCES: another user's lock
        return _unreadable(path)
    try:
        return _holder_of(path, _record(fd))
    finally:
        os.close(fd)

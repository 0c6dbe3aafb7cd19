"""Safe files under ``state_dir``: one place that opens, reads and writes them.

Every file the action layer keeps (run.json, plan.json, the run log, audit.jsonl, report.json,
locks) goes through here, so none of them can be turned against the operator:

- directories are created ``0700`` and files ``0600`` (a run log or plan may hold host names,
  commands and, before redaction, a secret);
- every open uses ``O_NOFOLLOW``: a symlink planted in place of a file is refused, never
  followed (opening a symlinked lock once truncated its target);
- a file is replaced atomically through a temporary file from :func:`tempfile.mkstemp` in the
  same directory (unpredictable name, ``0600``), fsynced, then :func:`os.replace`;
- reads are bounded and refuse anything but a regular file (a FIFO would block forever);
- a state_dir that cannot be used (a file, not writable, a symlink) is one
  :class:`StateDirError` line, exit 2; a corrupt or partial JSON file is one
  :class:`StateFileError` line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConsoleError

DIR_MODE = 0o700
FILE_MODE = 0o600
MAX_STATE_FILE_BYTES = 16 * 1024 * 1024  # run.json, plan.json, report.json: never near this

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class StateDirError(ConsoleError):
    """A state directory cannot be used (not a directory, a symlink, not writable)."""


class StateFileError(ConsoleError):
    """A state file is missing, unreadable, not a regular file, or not valid JSON."""


def ensure_dir(path: Path, *, mode: int = DIR_MODE) -> Path:
    """Create ``path`` (and missing parents) with ``mode``; refuse a symlink or a non-directory.

    A directory this user owns loses the permission bits ``mode`` does not grant (an older
    console left 0755; setgid and sticky bits are kept); one owned by someone else is used as
    it is, if it is writable.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=mode, exist_ok=True)
            os.chmod(path, mode)  # makedirs applies the umask
            st = os.lstat(path)
        except OSError as e:
            raise StateDirError(f"{path}: cannot create the directory: {e.strerror or e}") from None
    except OSError as e:
        raise StateDirError(f"{path}: {e.strerror or e}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StateDirError(f"{path}: is a symbolic link; the console does not follow links in its state")
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(f"{path}: is not a directory")
    extra = stat.S_IMODE(st.st_mode) & 0o777 & ~mode
    if st.st_uid == os.geteuid() and extra:
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~extra)
        except OSError as e:
            raise StateDirError(f"{path}: cannot set mode {mode:o}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(f"{path}: not writable by {_user()}")
    return path


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def open_fd(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` with ``O_NOFOLLOW``; a symlink is an OSError (ELOOP) like any other refusal."""
    return os.open(path, flags | _NOFOLLOW, mode)


def _regular(fd: int, path: Path) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise StateFileError(f"{path}: not a regular file")
    return st


def _why(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "is a symbolic link (not followed)"
    return e.strerror or str(e)


def read_bytes(path: Path, *, limit: int = MAX_STATE_FILE_BYTES, offset: int = 0) -> bytes:
    """At most ``limit`` bytes of a regular file from ``offset`` (O_NOFOLLOW, non-blocking open)."""
    try:
        fd = open_fd(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise StateFileError(f"{path}: {_why(e)}") from None
    _regular(fd, path)
    try:
        with os.fdopen(fd, "rb") as f:
            if offset:
                f.seek(offset)
            return f.read(limit)
    except OSError as e:
        raise StateFileError(f"{path}: {_why(e)}") from None


def read_text(path: Path, *, limit: int = MAX_STATE_FILE_BYTES) -> str:
    """A regular file's text (invalid UTF-8 replaced), at most ``limit`` bytes."""
    return read_bytes(path, limit=limit).decode("utf-8", "replace")


def read_json(path: Path) -> Any:
    """A JSON state file; StateFileError (one line) when missing, unreadable, partial or corrupt."""
    try:
        data = read_bytes(path)
    except FileNotFoundError:
        raise StateFileError(f"{path}: missing") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise StateFileError(f"{path}: corrupt or partial JSON{where}") from None


def write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically: mkstemp in the same directory (0600), fsync, os.replace."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise StateDirError(f"{path.parent}: cannot write: {_why(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # replaces a symlink itself, never its target
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StateDirError(f"{path}: cannot write: {_why(e)}") from None


def write_text(path: Path, text: str) -> None:
    """:func:`write_bytes` for text (UTF-8)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    """JSON, atomically (:func:`write_bytes`)."""
    write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


def create_empty(path: Path) -> None:
    """Create an empty file (0600); an existing file or link at ``path`` is an error."""
    try:
        os.close(open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except OSError as e:
        raise StateDirError(f"{path}: cannot create: {_why(e)}") from None


def open_append(path: Path):
    """A binary, unbuffered append-only file object on a regular file (created 0600 if missing)."""
    try:
        fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except OSError as e:
        raise StateDirError(f"{path}: cannot open: {_why(e)}") from None
    _regular(fd, path)
    return os.fdopen(fd, "ab", buffering=0)


def append_line(path: Path, line: str) -> None:
    """Append one line with a single write, fsynced (the audit log)."""
    with open_append(path) as f:
        f.write(line.encode("utf-8"))
        os.fsync(f.fileno())

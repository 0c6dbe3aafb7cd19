"""Single-flight locks, one per action and host, held by the run's supervisor while it lives."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def lock_path(state_dir: Path, action: str, host: str) -> Path:
    return Path(state_dir) / "locks" / f"{action}@{host}.lock"


def acquire(state_dir: Path, action: str, host: str) -> int | None:
    """Take the lock (returns its fd, kept open for the process's life) or None if held."""
    path = lock_path(state_dir, action, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def holder(state_dir: Path, action: str, host: str) -> int | None:
    """The pid holding the lock, or None when it is free."""
    fd = acquire(state_dir, action, host)
    if fd is not None:
        os.close(fd)
        return None
    try:
        return int(lock_path(state_dir, action, host).read_text() or 0) or None
    except (OSError, ValueError):
        return None

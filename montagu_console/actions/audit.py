"""The append-only audit log: ``state_dir/audit.jsonl``, one JSON record per line."""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..redact import redact_data


def who() -> dict[str, str | None]:
    """The operator: the login behind sudo if any, and the SSH client address."""
    user = os.environ.get("SUDO_USER") or os.environ.get("USER") or getpass.getuser()
    ssh = os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or ""
    return {"user": user, "ssh_client": ssh.split()[0] if ssh else None}


def append(state_dir: Path, event: str, **fields: Any) -> dict:
    """Append one record (time, operator, event and ``fields``), fsynced; return it."""
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **who(), "event": event, **fields}
    line = json.dumps(redact_data(record), sort_keys=True, default=str) + "\n"
    path = Path(state_dir) / "audit.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def read(state_dir: Path) -> list[dict]:
    """Every audit record, oldest first (unreadable lines are skipped, never lost from the file)."""
    path = Path(state_dir) / "audit.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out

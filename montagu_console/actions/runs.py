"""Detached runs on disk: ``state_dir/runs/<id>/`` holds plan.json, run.json and the log."""

from __future__ import annotations

import json
import os
import secrets
import signal
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConsoleError

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def seconds_between(earlier: str | None, later: str | None) -> float | None:
    """Seconds from one ISO timestamp to another (one decimal), None when either is missing."""
    if not earlier or not later:
        return None
    return round((datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds(), 1)


def new_run_id(action: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{action}-{secrets.token_hex(2)}"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class Run:
    """One run directory."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def log_path(self) -> Path:
        return self.path / "log"

    def record(self) -> dict:
        try:
            return json.loads((self.path / "run.json").read_text())
        except (OSError, ValueError):
            return {"id": self.id, "state": "unknown"}

    def plan(self) -> dict:
        return json.loads((self.path / "plan.json").read_text())

    def update(self, **fields: Any) -> dict:
        data = self.record() | fields
        write_json(self.path / "run.json", data)
        return data

    @property
    def state(self) -> str:
        """The recorded state, or ``interrupted`` when its supervisor died without saying so."""
        return effective_state(self.record())

    def follow(self, offset: int = 0) -> tuple[str, int]:
        """New log text since ``offset`` and the next offset."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return "", offset
        return data.decode("utf-8", "replace"), offset + len(data)

    def cancel(self) -> None:
        """Stop the whole process group of the run's supervisor (it records the cancellation)."""
        rec = self.record()
        pid = rec.get("pid")
        if self.state not in ("running", "starting") or not pid:
            raise ConsoleError(f"run {self.id} is not running (state: {self.state})")
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            raise ConsoleError(f"run {self.id}: its process {pid} is gone") from None


class RunStore:
    """All runs under ``state_dir/runs`` (or ``state_dir/drills`` for drills)."""

    def __init__(self, state_dir: Path, kind: str = "runs"):
        self.root = Path(state_dir) / kind

    def create(self, action: str, plan: dict) -> Run:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / new_run_id(action)
        path.mkdir()
        write_json(path / "plan.json", plan)
        run = Run(path)
        run.update(id=run.id, action=action, state="starting", created_at=now_iso(),
                   steps=[{"name": s["name"], "state": "pending"} for s in plan["steps"]])
        run.log_path.touch()
        return run

    def get(self, run_id: str) -> Run:
        path = self.root / run_id
        if not (path / "plan.json").exists():
            matches = sorted(p for p in self.root.glob(f"{run_id}*") if (p / "plan.json").exists()) \
                if self.root.exists() else []
            if len(matches) != 1:
                raise ConsoleError(f"no run {run_id!r} in {self.root}")
            path = matches[0]
        return Run(path)

    def all(self) -> list[Run]:
        if not self.root.exists():
            return []
        runs = [Run(p) for p in self.root.iterdir() if (p / "plan.json").exists()]
        return sorted(runs, key=lambda r: (r.record().get("created_at", ""), r.id))

    def active(self) -> Iterator[Run]:
        return (r for r in self.all() if r.state in ("running", "starting"))


def effective_state(record: dict) -> str:
    """A run's state from its run.json record: ``interrupted`` when it says running but its supervisor is gone."""
    state = record.get("state", "unknown")
    if state in ("running", "starting") and not pid_alive(record.get("pid")):
        return "interrupted"
    return state


def pid_alive(pid: Any) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, counts as dead)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True

"""Detached runs on disk: ``state_dir/runs/<id>/`` (drills: ``state_dir/drills/<id>/``) holds
plan.json, run.json and the log.

One typed lifecycle: :class:`RunState` is every state a run can be in, :class:`RunRecord` is
run.json, read and written only here (through :mod:`files`: 0600, ``O_NOFOLLOW``, atomic), and
a run id is checked against one pattern (:data:`RUN_ID`) and resolved inside its store, never
as a path: ``runs cancel ../../x`` or ``runs attach /abs`` name no run.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .. import procs, runstate
from ..clock import now_iso, utc_now
from ..errors import ConsoleError
from ..runstate import ACTIVE, RunState
from . import files

KINDS = ("runs", "drills")

# the one shape of a run or drill id: 20261124T070905Z-base-backup-1a2b
RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[a-z]+(?:-[a-z]+)*-[0-9a-f]{4}$")
# what may be typed for one: a unique prefix of such an id (so never a path)
_ID_PREFIX = re.compile(r"^[0-9][0-9a-zTZ-]{0,63}$")


class BadRunId(ConsoleError):
    """A run id that is not one (a path, a pattern, garbage): refused before any lookup."""


class RunNotFound(ConsoleError):
    """No run (or more than one) matches an id."""


class RunCorrupt(ConsoleError):
    """run.json is missing, partial or not a run record."""


StepStateName = Literal["pending", "running", "done", "failed", "cancelled", "skipped"]


class StepRecord(BaseModel):
    """One step in run.json."""

    model_config = ConfigDict(extra="allow")

    name: str
    state: StepStateName = "pending"
    started_at: str | None = None
    finished_at: str | None = None
    output_tail: list[str] = []


class RunRecord(BaseModel):
    """run.json. Unknown keys from another console version are kept; writes take only these."""

    model_config = ConfigDict(extra="allow")

    id: str
    action: str
    state: RunState
    created_at: str | None = None
    steps: list[StepRecord] = []
    # the supervisor: pid, start time (/proc/PID/stat field 22) and process group
    pid: int | None = None
    pid_start: int | None = None
    pgid: int | None = None
    # the process that created the run, which answers for it while it is ``starting``
    owner_pid: int | None = None
    owner_start: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    failed_step: str | None = None
    duration_seconds: float | None = None
    current_step: int | None = None
    progress: dict[str, Any] | None = None
    last_activity: str | None = None
    operator: dict[str, Any] | None = None
    confirmation: str | None = None
    gaps: list[dict[str, Any]] = []
    drill: dict[str, Any] = {}
    drill_started_at: str | None = None


_FIELDS = frozenset(RunRecord.model_fields)


def new_run_id(action: str) -> str:
    run_id = f"{utc_now():%Y%m%dT%H%M%SZ}-{action}-{secrets.token_hex(2)}"
    if not RUN_ID.match(run_id):
        raise ConsoleError(f"cannot make a run id for action {action!r}")
    return run_id


def check_id(text: object, noun: str = "run") -> str:
    """``text`` if it is a run id or a prefix of one; BadRunId (one line) otherwise."""
    if not isinstance(text, str) or not _ID_PREFIX.match(text):
        shown = repr(text)[:80]
        raise BadRunId(
            f"{shown} is not a {noun} id (ids look like 20261124T070905Z-base-backup-1a2b; "
            f"see `montagu-console {noun}s list`)"
        )
    return text


def effective_state(record: dict | RunRecord) -> RunState:
    """A run's state from its record (see :func:`montagu_console.runstate.effective_state`)."""
    return runstate.effective_state(record.model_dump() if isinstance(record, RunRecord) else record)


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

    @property
    def record_path(self) -> Path:
        return self.path / "run.json"

    def load(self) -> RunRecord:
        """run.json as a typed record; RunCorrupt (one line) when it is missing or corrupt."""
        try:
            data = files.read_json(self.record_path)
            return RunRecord.model_validate(data)
        except files.StateFileError as e:
            raise RunCorrupt(f"run {self.id}: {e}") from None
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "run.json"
            raise RunCorrupt(f"run {self.id}: {self.record_path}: not a run record ({where}: {first['msg']})") from None

    def record(self) -> dict:
        """run.json as a dict (what views and reports read); ``state: unknown`` with the reason
        in ``error`` when it cannot be read."""
        try:
            return self.load().model_dump(mode="json")
        except RunCorrupt as e:
            return {"id": self.id, "state": RunState.UNKNOWN.value, "error": str(e), "steps": []}

    def plan(self) -> dict:
        try:
            data = files.read_json(self.path / "plan.json")
        except files.StateFileError as e:
            raise RunCorrupt(f"run {self.id}: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise RunCorrupt(f"run {self.id}: plan.json is not a plan")
        return data

    def update(self, **fields: Any) -> dict:
        """Change some fields of run.json (typed: an unknown field is a programming error)."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"run.json has no field {', '.join(sorted(unknown))}")
        current = self.load().model_dump(mode="json") if os.path.lexists(self.record_path) else {}
        try:
            record = RunRecord.model_validate(current | fields)
        except ValidationError as e:
            raise TypeError(f"run.json update rejected: {e.errors()[0]['msg']}") from None
        data = record.model_dump(mode="json")
        files.write_json(self.record_path, data)
        return data

    @property
    def state(self) -> RunState:
        """The recorded state, or ``interrupted`` when its supervisor died without saying so."""
        return effective_state(self.record())

    def read_log(self, offset: int = 0, limit: int = 1024 * 1024) -> tuple[bytes, int]:
        """Raw log bytes since ``offset`` (at most ``limit``) and the next offset."""
        try:
            data = files.read_bytes(self.log_path, limit=limit, offset=offset)
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)

    def terminate(self) -> None:
        """SIGTERM to the whole process group of the run's supervisor (it records the cancel).

        Only a running supervisor whose pid AND start time match the record is signalled.
        """
        rec = self.load()
        state = effective_state(rec)
        if state is not RunState.RUNNING or rec.pid is None or rec.pgid is None:
            raise ConsoleError(f"run {self.id} is not running (state: {state})")
        if not procs.alive(rec.pid, rec.pid_start):
            raise ConsoleError(f"run {self.id}: its supervisor {rec.pid} is gone")
        st = procs.proc_stat(rec.pid)
        if st is None or st.pgrp != rec.pgid:
            raise ConsoleError(f"run {self.id}: process {rec.pid} is not in the recorded group {rec.pgid}")
        try:
            os.killpg(rec.pgid, signal.SIGTERM)
        except ProcessLookupError:
            raise ConsoleError(f"run {self.id}: its process group {rec.pgid} is gone") from None


class RunStore:
    """All runs under ``state_dir/runs`` (or ``state_dir/drills`` for drills)."""

    def __init__(self, state_dir: Path, kind: str = "runs"):
        if kind not in KINDS:
            raise ValueError(f"no run store {kind!r}")
        self.state_dir = Path(state_dir)
        self.kind = kind
        self.root = self.state_dir / kind

    @property
    def noun(self) -> str:
        return "drill" if self.kind == "drills" else "run"

    def ensure(self) -> Path:
        """The store's directory (and state_dir), created 0700; StateDirError when unusable."""
        files.ensure_dir(self.state_dir)
        return files.ensure_dir(self.root)

    def create(self, action: str, plan: dict) -> Run:
        self.ensure()
        run_id = new_run_id(action)
        path = self.root / run_id
        try:
            os.mkdir(path, files.DIR_MODE)
        except OSError as e:
            raise files.StateDirError(f"{path}: cannot create: {e.strerror}") from None
        files.write_json(path / "plan.json", plan)
        run = Run(path)
        me = os.getpid()
        run.update(
            id=run_id,
            action=action,
            state=RunState.STARTING.value,
            created_at=now_iso(),
            owner_pid=me,
            owner_start=procs.start_time(me),
            steps=[{"name": s["name"], "state": "pending"} for s in plan["steps"]],
        )
        files.create_empty(run.log_path)
        return run

    def _entries(self) -> list[Path]:
        """The run directories: names of the id's shape, real directories (not symlinks)."""
        try:
            st = os.lstat(self.root)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise files.StateDirError(f"{self.root}: {e.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise files.StateDirError(f"{self.root}: is not a directory (or is a symbolic link)")
        out = []
        try:
            names = os.listdir(self.root)
        except OSError as e:
            raise files.StateDirError(f"{self.root}: {e.strerror}") from None
        for name in names:
            if not RUN_ID.match(name):
                continue
            try:
                if stat.S_ISDIR(os.lstat(self.root / name).st_mode):
                    out.append(self.root / name)
            except OSError:
                continue
        return out

    def get(self, run_id: str) -> Run:
        """The run whose id is ``run_id`` or uniquely starts with it, inside this store only."""
        check_id(run_id, self.noun)
        entries = self._entries()
        exact = [p for p in entries if p.name == run_id]
        matches = exact or [p for p in entries if p.name.startswith(run_id)]
        if len(matches) != 1:
            many = f" ({len(matches)} match: give more of the id)" if matches else ""
            raise RunNotFound(f"no {self.noun} {run_id!r} in {self.root}{many}")
        path = matches[0]
        if path.parent != self.root:  # by construction; kept as the rule
            raise BadRunId(f"{run_id!r} is not a {self.noun} of {self.root}")
        return Run(path)

    def all(self) -> list[Run]:
        runs = [Run(p) for p in self._entries() if os.path.lexists(p / "plan.json")]
        return sorted(runs, key=lambda r: (str(r.record().get("created_at") or ""), r.id))

    def active(self) -> Iterator[Run]:
        return (r for r in self.all() if r.state in ACTIVE)

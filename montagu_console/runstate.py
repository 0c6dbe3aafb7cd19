"""The states of a detached run and how to read one from its record (run.json).

Shared by the action layer, which writes runs, and the restore probe, which shows the one in
flight: a run that says it is running is believed only while its process (pid and start time)
lives.
"""

from __future__ import annotations

import enum

from . import procs


class RunState(enum.StrEnum):
    """Every state a run can be in (run.json ``state``)."""

    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"  # said running, but its supervisor is gone
    UNKNOWN = "unknown"  # run.json missing or unreadable

    @property
    def active(self) -> bool:
        return self in ACTIVE

    @property
    def final(self) -> bool:
        return self not in ACTIVE and self is not RunState.UNKNOWN


ACTIVE = frozenset({RunState.STARTING, RunState.RUNNING})


def effective_state(rec: dict) -> RunState:
    """A run's state from its record: ``interrupted`` when it says starting or running but the
    process answering for it (pid and start time) is gone."""
    try:
        state = RunState(rec.get("state", "unknown"))
    except ValueError:
        return RunState.UNKNOWN
    if state not in ACTIVE:
        return state
    if rec.get("pid") is not None:
        return state if procs.alive(rec.get("pid"), rec.get("pid_start")) else RunState.INTERRUPTED
    if state is RunState.STARTING and procs.alive(rec.get("owner_pid"), rec.get("owner_start")):
        return state
    return RunState.INTERRUPTED

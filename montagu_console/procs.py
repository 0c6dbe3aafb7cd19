"""Which processes are alive, by pid AND start time, so a reused pid is never taken for a run.

A pid names a process only together with its start time (``/proc/PID/stat`` field 22, in clock
ticks since boot): once a supervisor has died, its pid may be given to any later process, and a
run or lock that names only the pid would then be "alive" for ever, or be signalled by mistake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the console uses."""

    pid: int
    state: str  # R, S, D, Z, ...
    pgrp: int
    session: int
    start: int  # field 22: start time after boot, in clock ticks


def proc_stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat`` of ``pid``, or None when there is no such process."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    try:
        # the command name (field 2) is in parentheses and may itself hold ") ": split at the last
        rest = text.rsplit(")", 1)[1].split()
        return ProcStat(pid, rest[0], int(rest[2]), int(rest[3]), int(rest[19]))
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` (field 22), None when it does not run."""
    st = proc_stat(pid)
    return st.start if st else None


def alive(pid: object, start: object) -> bool:
    """Whether ``pid`` runs and is the process that started at ``start`` (zombies are dead).

    Without a recorded start time (a record from an older console) the pid alone decides.
    """
    if not isinstance(pid, int) or isinstance(pid, bool):
        return False
    st = proc_stat(pid)
    if st is None or st.state in ("Z", "X"):
        return False
    return start is None or st.start == start


def group_members(pgid: int, *, since: int | None = None, exclude: int | None = None) -> list[int]:
    """Live pids in process group ``pgid`` that started at or after ``since`` (clock ticks)."""
    if not isinstance(pgid, int) or isinstance(pgid, bool) or pgid <= 0:
        return []
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is None or st.pgrp != pgid or st.state in ("Z", "X") or st.pid == exclude:
            continue
        if since is not None and st.start < since:
            continue
        out.append(st.pid)
    return out


def group_alive(pid: object, start: object, pgid: object) -> bool:
    """Whether the process ``pid``/``start`` or any member of its group ``pgid`` still runs.

    The steps of a run are children in its supervisor's process group: a SIGKILLed supervisor
    leaves its step running, and that step still holds the run's lock. Members are counted only
    if they started no earlier than the recorded leader (a group id can be reused only once the
    whole group is gone, by a process started later still: the same rule keeps that rare case
    held, never free).
    """
    if alive(pid, start):
        return True
    if not isinstance(pgid, int) or isinstance(pgid, bool):
        return False
    return bool(group_members(pgid, since=start if isinstance(start, int) else None))


OWNER_LABEL = "montagu-console.supervisor"  # on containers a run starts: who started them


def owner_label() -> str:
    """This process as ``host:pid:start``, for :data:`OWNER_LABEL`."""
    me = os.getpid()
    return f"{os.uname().nodename}:{me}:{start_time(me)}"


def owner_gone(label: str) -> bool:
    """True when ``label`` (an :func:`owner_label`) names a process of this machine that is no
    longer alive: a container left running by a run whose supervisor was killed. Any other
    label, or none, is never gone."""
    host, _, rest = label.partition(":")
    pid, _, start = rest.partition(":")
    if host != os.uname().nodename or not pid.isdigit() or not start.isdigit():
        return False
    return not alive(int(pid), int(start))

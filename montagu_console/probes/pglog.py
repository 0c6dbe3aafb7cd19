"""Read PostgreSQL's start-up progress from its log (PostgreSQL 15+ redo progress lines)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import one_line

_START = re.compile(r"starting PostgreSQL \d+")
_REDO_START = re.compile(r"redo starts at ([0-9A-F]+/[0-9A-F]+)")
_REDO_PROGRESS = re.compile(r"redo in progress, elapsed time: ([\d.]+) s, current LSN: ([0-9A-F]+/[0-9A-F]+)")
_REDO_DONE = re.compile(r"redo done at ([0-9A-F]+/[0-9A-F]+)")
_READY = re.compile(r"database system is ready to accept connections")
_SHUT_DOWN = re.compile(r"database system is shut down")
_FAILED = re.compile(r"\b(PANIC|FATAL):.*|startup process .* exited with exit code|could not locate a valid checkpoint")
_BENIGN_FATAL = re.compile(
    r"the database system is (starting up|not yet accepting connections|shutting down)"
    r"|Consistent recovery state has not been yet reached|terminating connection"
)


@dataclass(frozen=True)
class StartupProgress:
    """Where the last start of the server got to, from its log."""

    phase: str  # starting | redo | ready | stopped | failed | unknown
    redo_start_lsn: str | None = None
    current_lsn: str | None = None
    redo_done_lsn: str | None = None
    elapsed_seconds: float | None = None
    failure: str | None = None


def parse_startup(log: str) -> StartupProgress:
    """The state of the most recent start-up found in ``log`` (oldest line first)."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if _START.search(line)]
    if not starts:
        return StartupProgress("unknown")
    phase = "starting"
    redo_start = current = done = failure = None
    elapsed = None
    for line in lines[starts[-1] :]:
        if m := _REDO_START.search(line):
            phase, redo_start = "redo", m.group(1)
        elif m := _REDO_PROGRESS.search(line):
            phase, current = "redo", m.group(2)
            try:
                elapsed = float(m.group(1))
            except ValueError:  # "1.2.3": the pattern allows it, float() does not
                elapsed = None
        elif m := _REDO_DONE.search(line):
            done = m.group(1)
        elif _READY.search(line):
            phase = "ready"
        elif _SHUT_DOWN.search(line):
            phase = "stopped"
        elif _FAILED.search(line) and not _BENIGN_FATAL.search(line):
            phase, failure = "failed", one_line(line)
    return StartupProgress(phase, redo_start, current, done, elapsed, failure)

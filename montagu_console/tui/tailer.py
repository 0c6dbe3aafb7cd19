"""Follow a run directory from a thread: new log lines and run.json changes, one message per batch.

The tailer never touches a widget: every ``POLL_SECONDS`` it reads the bytes appended to the log
and, when run.json changed, the record, and posts a single :class:`RunUpdated` carrying all of
it, however many lines arrived (at 10,000 lines/s that is one message of about 2,000 lines).
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from pathlib import Path
from typing import BinaryIO, Callable

from textual.message import Message

from ..actions.runs import Run, effective_state, pid_alive
from .messages import RunUpdated

POLL_SECONDS = 0.2
BACKLOG_BYTES = 512 * 1024  # on attaching, the log is read from at most this far back
ACTIVE = ("running", "starting")
EXIT_GRACE_SECONDS = 10.0  # after the final state, how long to wait for the supervisor to exit


def as_shown(line: str) -> str:
    """What a terminal shows for a line with carriage returns (rsync progress): its last segment."""
    if "\r" not in line:
        return line
    parts = [part for part in line.split("\r") if part.strip()]
    return parts[-1] if parts else ""


class LogTail:
    """The complete lines appended to a log file since the last :meth:`read`."""

    def __init__(self, path: Path, *, backlog: int = BACKLOG_BYTES) -> None:
        self.path = path
        self.backlog = backlog
        self._file: BinaryIO | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self._skip_first = False

    def read(self) -> list[str]:
        """New complete lines (a line still being written waits for its newline)."""
        if self._file is None and not self._open():
            return []
        assert self._file is not None
        data = self._file.read()
        if not data:
            return []
        lines = (self._partial + self._decoder.decode(data)).split("\n")
        self._partial = lines.pop()
        if self._skip_first and lines:  # the backlog started mid-line
            lines.pop(0)
            self._skip_first = False
        return [as_shown(line) for line in lines]

    def rest(self) -> list[str]:
        """The unterminated last line, if any (once the writer has finished)."""
        rest, self._partial = as_shown(self._partial + self._decoder.decode(b"", final=True)), ""
        return [rest] if rest.strip() else []

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            return False
        size = os.fstat(self._file.fileno()).st_size
        if size > self.backlog:
            self._file.seek(size - self.backlog)
            self._skip_first = True
        return True


def follow(run: Run, post: Callable[[Message], object], stop: threading.Event, *,
           interval: float = POLL_SECONDS) -> None:
    """Post :class:`RunUpdated` batches for ``run`` until it has ended or ``stop`` is set.

    A run has ended once its state is final and its supervisor has exited: a drill's supervisor
    writes the report and the last log line after the final state. The last batch has ``ended``.
    """
    tail = LogTail(run.log_path)
    record_path = run.path / "run.json"
    stamp = None
    record: dict = {}
    final_since: float | None = None
    try:
        while True:
            lines = tail.read()
            try:
                mtime = record_path.stat().st_mtime_ns
            except FileNotFoundError:
                mtime = None
            changed = mtime != stamp
            if changed:
                stamp, record = mtime, run.record()
            state = effective_state(record)
            ended = False
            if state not in ACTIVE and state != "unknown":  # unknown: run.json not readable (yet)
                final_since = final_since or time.monotonic()
                ended = not pid_alive(record.get("pid")) or time.monotonic() - final_since > EXIT_GRACE_SECONDS
            if ended:  # take the log's last words
                lines += tail.read() + tail.rest()
            if lines or changed or ended:
                post(RunUpdated(run.id, lines, record if changed else None, state, ended))
            if ended or stop.wait(interval):
                return
    finally:
        tail.close()

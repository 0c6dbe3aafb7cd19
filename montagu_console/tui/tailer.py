"""Follow a run directory from a thread: new log lines and run.json changes, one message per batch.

The tailer never touches a widget: every ``POLL_SECONDS`` it reads the bytes appended to the log
and, when run.json changed, the record, and posts a single :class:`RunUpdated` carrying all of
it, however many lines arrived (at 10,000 lines/s that is one message of about 2,000 lines).

The log is a file the TUI reads itself, so this is where its text is made safe: each line
passes :func:`montagu_console.text.clean` (escape sequences and control characters replaced,
invalid UTF-8 replaced, at most ``MAX_LINE_CHARS``) and is handed on as ``rich.text.Text``.
Reads are bounded: only a regular file is opened (never through a symlink, never blocking on a
FIFO), at most ``BACKLOG_BYTES`` are read at a time, and a log that grew by more than that
since the last read is skipped ahead to its last ``BACKLOG_BYTES``, saying how much was skipped.
"""

from __future__ import annotations

import codecs
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual.message import Message

from .. import procs
from ..actions.runs import Run, effective_state
from ..errors import ConsoleError
from ..text import MAX_LINE_CHARS, clean
from .messages import RunUpdated

POLL_SECONDS = 0.2
BACKLOG_BYTES = 512 * 1024  # on attaching (or falling behind), the log is read from at most this far back
ACTIVE = ("running", "starting")
EXIT_GRACE_SECONDS = 10.0  # after the final state, how long to wait for the supervisor to exit
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def as_shown(line: str) -> str:
    """What a terminal shows for a line with carriage returns (rsync progress): its last segment."""
    if "\r" not in line:
        return line
    parts = [part for part in line.split("\r") if part.strip()]
    return parts[-1] if parts else ""


def shown_line(line: str) -> Text:
    """One log line as the TUI shows it: its last carriage-return segment, cleaned, as ``Text``."""
    return Text(clean(as_shown(line), limit=MAX_LINE_CHARS))


class LogTail:
    """The complete lines appended to a log file since the last :meth:`read`, as clean ``Text``."""

    def __init__(self, path: Path, *, backlog: int = BACKLOG_BYTES) -> None:
        self.path = path
        self.backlog = backlog
        self._fd: int | None = None
        self._pos = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self._skip_first = False
        self.problem: str | None = None  # why the log cannot be read (not a regular file), once

    def read(self) -> list[Text]:
        """New complete lines (a line still being written waits for its newline)."""
        if self._fd is None and not self._open():
            return []
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        shown: list[Text] = []
        if size < self._pos:  # truncated under us: start again from its beginning
            self._pos, self._partial = 0, ""
            self._decoder.reset()
        if size - self._pos > self.backlog:  # fell behind (or attaching): only the newest part
            if self._pos:
                shown.append(Text(f"[... {size - self.backlog - self._pos} bytes of the log skipped]"))
            self._seek(size - self.backlog)
        data = os.pread(self._fd, min(size - self._pos, self.backlog), self._pos) if size > self._pos else b""
        if not data:
            return shown
        self._pos += len(data)
        lines = (self._partial + self._decoder.decode(data)).split("\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_CHARS:  # a line without end: show it cut, never keep growing
            lines.append(self._partial)
            self._partial = ""
        if self._skip_first and lines:  # the backlog started mid-line
            lines.pop(0)
            self._skip_first = False
        return shown + [shown_line(line) for line in lines]

    def rest(self) -> list[Text]:
        """The unterminated last line, if any (once the writer has finished)."""
        rest, self._partial = self._partial + self._decoder.decode(b"", final=True), ""
        return [shown_line(rest)] if as_shown(rest).strip() else []

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _seek(self, pos: int) -> None:
        self._pos = pos
        self._partial = ""
        self._decoder.reset()
        self._skip_first = True

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, _OPEN_FLAGS)
        except FileNotFoundError:
            return False
        except OSError as e:  # a symlink (ELOOP) or unreadable: say so once, keep following run.json
            self.problem = self.problem or f"{self.path}: cannot read the log: {e.strerror}"
            return False
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self.problem = self.problem or f"{self.path}: not a regular file: the log is not shown"
            return False
        self._fd = fd
        if os.fstat(fd).st_size > self.backlog:
            self._seek(os.fstat(fd).st_size - self.backlog)
        return True


def follow(
    run: Run, post: Callable[[Message], object], stop: threading.Event, *, interval: float = POLL_SECONDS
) -> None:
    """Post :class:`RunUpdated` batches for ``run`` until it has ended or ``stop`` is set.

    A run has ended once its state is final and its supervisor has exited: a drill's supervisor
    writes the report and the last log line after the final state. The last batch has ``ended``.
    """
    tail = LogTail(run.log_path)
    record_path = run.path / "run.json"
    stamp = None
    record: dict = {}
    final_since: float | None = None
    told = False
    try:
        while True:
            lines = tail.read()
            if tail.problem and not told:
                lines.append(Text(tail.problem))
                told = True
            try:
                mtime = record_path.stat().st_mtime_ns
            except FileNotFoundError:
                mtime = None
            changed = mtime != stamp
            if changed:
                try:
                    stamp, record = mtime, run.record()
                except (OSError, ValueError, ConsoleError):  # being rewritten, or corrupt: keep the last one
                    changed = False
            state = effective_state(record)
            ended = False
            if state not in ACTIVE and state != "unknown":  # unknown: run.json not readable (yet)
                final_since = final_since or time.monotonic()
                gone = not procs.alive(record.get("pid"), record.get("pid_start"))
                ended = gone or time.monotonic() - final_since > EXIT_GRACE_SECONDS
            if ended:  # take the log's last words
                lines += tail.read() + tail.rest()
            if lines or changed or ended:
                post(RunUpdated(run.id, lines, record if changed else None, state, ended))
            if ended or stop.wait(interval):
                return
    finally:
        tail.close()

"""Progress from the tools' own output (rsync --info=progress2, barman recover stages, redo), and output tails."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RSYNC = re.compile(r"(?:^|\s)([\d,]+)\s+(\d{1,3})%\s+(\S+/s)\s+(\d+:\d{2}:\d{2})")
_BARMAN_STAGES = (
    "Starting local restore",
    "Copying the base backup",
    "Copying required WAL segments",
    "Generating archive status files",
    "Identify dangerous settings",
    "Your PostgreSQL server has been successfully prepared for recovery",
)


@dataclass(frozen=True)
class Progress:
    """A percentage (0-100) and an ETA in seconds, either possibly unknown, and what it is of."""

    percent: float | None
    eta_seconds: int | None
    label: str


def split_lines(chunk: str) -> list[str]:
    """rsync separates progress updates with carriage returns: treat them as lines."""
    return [part for part in re.split(r"[\r\n]", chunk) if part.strip()]


def parse_line(line: str) -> Progress | None:
    """Progress carried by one output line, or None."""
    if m := _RSYNC.search(line):
        h, mi, s = (int(x) for x in m.group(4).split(":"))
        return Progress(float(m.group(2)), h * 3600 + mi * 60 + s, f"rsync {m.group(3)}")
    for i, stage in enumerate(_BARMAN_STAGES):
        if stage in line:
            return Progress(100.0 * (i + 1) / len(_BARMAN_STAGES), None, f"barman recover: {stage.lower()}")
    return None


def tail(text: str, lines: int = 15) -> list[str]:
    """The last ``lines`` non-blank lines of a step's output, each redraw collapsed to the last.

    A line rsync redraws with ``\\r`` counts once, as its final state, and a run of progress
    lines in a row (a log written every few seconds during a long copy) is kept as its last
    one, so a tail shows what happened instead of dozens of percentages.
    """
    out: list[str] = []
    for line in text.split("\n"):
        segments = [part for part in line.split("\r") if part.strip()]
        if not segments:
            continue
        last = segments[-1]
        if out and _RSYNC.search(last) and _RSYNC.search(out[-1]):
            out[-1] = last
        else:
            out.append(last)
    return out[-lines:]

"""What the console knows about each run it follows (its record, the recent log) between tailer batches."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rich.text import Text

from ..actions import files
from ..actions.runs import Run
from ..errors import ConsoleError
from ..text import MAX_LINE_CHARS, clean_data

LOG_LINES = 5000  # log lines kept per run, and shown by the run view


@dataclass(eq=False)
class Attachment:
    """One followed run: ``kind`` is "runs" or "drills"; ``ended`` once its supervisor has finished."""

    run: Run
    kind: str
    plan: dict
    record: dict
    state: str
    lines: deque[Text] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    ended: bool = False
    report: dict | None = None  # a drill's report.json, once it has ended

    @property
    def plan_title(self) -> str:
        return self.plan.get("title", "")

    @property
    def plan_host(self) -> str:
        return self.plan.get("host", "")

    @property
    def action(self) -> str:
        return self.plan.get("action") or self.record.get("action", "run")


def read_report(run: Run) -> dict | None:
    """A drill's report.json, its text cleaned (a bounded read of a regular file), or None when it
    has none (yet) or it is not a report."""
    try:
        report = files.read_json(run.path / "report.json")
    except (OSError, ConsoleError):
        return None
    return clean_data(report, limit=MAX_LINE_CHARS) if isinstance(report, dict) else None

"""Messages the workers post to the app; handlers own every widget update."""

from __future__ import annotations

from textual.message import Message

from ..actions.runs import Run
from ..snapshot import PanelResult


class PanelUpdated(Message):
    """A panel's poll finished (successfully or as an UNKNOWN result naming the failure)."""

    def __init__(self, result: PanelResult) -> None:
        self.result = result
        super().__init__()


class ActionChecked(Message):
    """An action's preflight ended: the ``facts`` it checked, or the ``problem`` (a refusal) that stops it."""

    def __init__(self, action: str, facts: list[str] | None, problem: str | None = None,
                 severity: str = "warning") -> None:
        self.action = action
        self.facts = facts
        self.problem = problem
        self.severity = severity
        super().__init__()


class ActionNote(Message):
    """One line for the output pane and a toast: a refusal, a failure, a cancel sent."""

    def __init__(self, text: str, severity: str = "warning") -> None:
        self.text = text
        self.severity = severity
        super().__init__()


class RunAttached(Message):
    """Follow ``run`` (its ``plan`` and current ``record``) from now on.

    ``kind`` is "runs" or "drills"; ``how`` is "started", "resumed" or "re-attached".
    """

    def __init__(self, run: Run, kind: str, how: str, plan: dict, record: dict) -> None:
        self.run = run
        self.kind = kind
        self.how = how
        self.plan = plan
        self.record = record
        super().__init__()


class RunUpdated(Message):
    """One batch from a run's tailer: new log lines, its record when it changed, and whether it ended."""

    def __init__(self, run_id: str, lines: list[str], record: dict | None, state: str, ended: bool) -> None:
        self.run_id = run_id
        self.lines = lines
        self.record = record
        self.state = state
        self.ended = ended
        super().__init__()


class DrillsListed(Message):
    """Every drill's report (oldest first), for the history screen."""

    def __init__(self, reports: list[dict]) -> None:
        self.reports = reports
        super().__init__()


class DrillLoaded(Message):
    """A drill's directory, read for the wizard: its record, effective state and report (None before its end)."""

    def __init__(self, run: Run | None, record: dict, state: str, report: dict | None) -> None:
        self.run = run
        self.record = record
        self.state = state
        self.report = report
        super().__init__()


class ReportLoaded(Message):
    """A drill's report.md (or why there is none), for the report screen."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__()

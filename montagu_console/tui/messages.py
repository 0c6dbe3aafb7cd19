"""Messages the workers post to the app; handlers own every widget update.

Each is a dataclass: the generated ``__init__`` calls ``Message.__post_init__``, which sets up
what Textual needs. ``eq=False`` keeps messages compared (and hashed) by identity, as Textual's are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.message import Message

from ..actions.runs import Run
from ..snapshot import PanelResult
from .host import Severity


@dataclass(eq=False)
class PanelUpdated(Message):
    """A panel's poll finished (successfully or as an UNKNOWN result naming the failure)."""

    result: PanelResult


@dataclass(eq=False)
class ActionChecked(Message):
    """An action's preflight ended: the ``facts`` it checked, or the ``problem`` (a refusal) that stops it."""

    action: str
    facts: list[str] | None
    problem: str | None = None
    severity: Severity = "warning"


@dataclass(eq=False)
class ActionNote(Message):
    """One line for the output pane and a toast: a refusal, a failure, a cancel sent."""

    text: str
    severity: Severity = "warning"


@dataclass(eq=False)
class RunAttached(Message):
    """Follow ``run`` (its ``plan`` and current ``record``) from now on.

    ``kind`` is "runs" or "drills"; ``how`` is "started", "resumed" or "re-attached".
    """

    run: Run
    kind: str
    how: str
    plan: dict
    record: dict


@dataclass(eq=False)
class RunUpdated(Message):
    """One batch from a run's tailer: new log lines (clean ``Text``), its record when it changed,
    and whether it ended."""

    run_id: str
    lines: list[Text]
    record: dict | None
    state: str
    ended: bool


@dataclass(eq=False)
class DrillsListed(Message):
    """Every drill's report (oldest first), for the history screen."""

    reports: list[dict] = field(default_factory=list)


@dataclass(eq=False)
class DrillLoaded(Message):
    """A drill's directory, read for the wizard: its record, effective state and report (None before its end)."""

    run: Run | None
    record: dict
    state: str
    report: dict | None


@dataclass(eq=False)
class ReportLoaded(Message):
    """A drill's report.md (or why there is none), for the report screen."""

    text: str


@dataclass(eq=False)
class TrendsRead(Message):
    """The trend screen's sections for one span ("hours", "days"), read from the history: each
    section's title, chart and table by its id; ``problem`` says why some or all are missing."""

    span: str
    sections: dict[str, tuple[str, str, str]]
    problem: str | None

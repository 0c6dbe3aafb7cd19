"""Turn run records (run.json) and drill reports (report.json) into what the run and drill screens show.

Pure functions of the record and the moment: the screens compare what these return with what
they show and repaint only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..clock import duration
from .host import Severity
from .present import parse_time, progress_lines

STEP_ICONS = {
    "pending": "·",
    "running": "▶",
    "done": "✓",
    "failed": "✗",
    "cancelled": "■",
    "skipped": "–",
    "interrupted": "‖",
}
STATE_WORDS = {
    "starting": "STARTING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
    "interrupted": "INTERRUPTED",
    "refused": "REFUSED",
    "passed": "PASSED",
}
ACTIVE = ("running", "starting")


def fmt_elapsed(seconds: float | None) -> str:
    """A duration in the console's one format (:func:`montagu_console.clock.duration`): "42 s",
    "3 min 05 s", "2 h 07 min"; "" when unknown."""
    return "" if seconds is None else duration(max(seconds, 0))


@dataclass(frozen=True)
class StepRow:
    """One step as shown: its number, name, state, elapsed time, and whether it is the current one."""

    number: int
    total: int
    name: str
    state: str
    elapsed: str
    current: bool


def step_elapsed(step: dict, now: datetime) -> float | None:
    """Seconds a step took, or has been running for; None before it started."""
    start = parse_time(step.get("started_at"))
    if start is None:
        return None
    end = parse_time(step.get("finished_at")) or now
    return (end - start).total_seconds()


def step_rows(record: dict, state: str, now: datetime) -> list[StepRow]:
    """Every step of the run. Once the run has ended, a step it left "running" reads as the run's
    state (interrupted, cancelled) and is timed up to the run's last sign of life, and a step it
    never reached reads "skipped" (still "pending" when the run was interrupted: a resume runs it)."""
    steps = record.get("steps") or []
    current = record.get("current_step")
    active = state in ACTIVE
    until = now if active else parse_time(record.get("finished_at") or record.get("last_activity")) or now
    rows = []
    for i, step in enumerate(steps):
        step_state = step.get("state", "pending")
        if step_state == "running" and not active:
            step_state = state if state in ("interrupted", "cancelled") else "failed"
        elif step_state == "pending" and not active and state != "interrupted":
            step_state = "skipped"
        rows.append(
            StepRow(
                i + 1,
                len(steps),
                step.get("name", "?"),
                step_state,
                fmt_elapsed(step_elapsed(step, until)),
                active and i == current,
            )
        )
    return rows


def step_line(row: StepRow) -> str:
    """ "2/6 ▶ running     1 min 03 s  barman recover latest into the dump directory"."""
    icon = STEP_ICONS.get(row.state, "?")
    return f"{row.number}/{row.total} {icon} {row.state:<11} {row.elapsed:<11} {row.name}"


def current_step(record: dict) -> str:
    """ "step 3/6: move the recovered files up", or "" before the first step."""
    steps = record.get("steps") or []
    index = record.get("current_step")
    if not isinstance(index, int) or not 0 <= index < len(steps):
        return ""
    return f"step {index + 1}/{len(steps)}: {steps[index].get('name', '')}"


def run_elapsed(record: dict, now: datetime) -> float | None:
    """Seconds from the run's start to its end, or to now while it runs."""
    start = parse_time(record.get("started_at") or record.get("created_at"))
    if start is None:
        return None
    return ((parse_time(record.get("finished_at")) or now) - start).total_seconds()


@dataclass(frozen=True)
class ProgressView:
    """The progress bar's percentage (None hides the bar) and the text beside it."""

    percent: float | None
    text: str


def progress_view(
    record: dict, state: str, restore_facts: dict | None = None, barman_facts: dict | None = None
) -> ProgressView:
    """Progress from run.json (rsync, barman recover stages, redo); for a restore or drill in its redo,
    the science panel's redo percentage when the run itself has none; for a base backup, the newest
    barman panel's ``backup_progress`` (from the primary or the growing backup directory)."""
    if state not in ACTIVE:
        return ProgressView(None, "")
    p = record.get("progress") or {}
    percent, eta, label = p.get("percent"), p.get("eta_seconds"), p.get("label") or ""
    facts = restore_facts or {}
    backup = (barman_facts or {}).get("backup_progress")
    if (
        percent is None
        and record.get("action") in ("restore", "drill")
        and facts.get("phase") == "redo"
        and facts.get("percent") is not None
    ):
        percent, eta = facts["percent"], facts.get("eta_seconds")
        label = f"redo (science panel){', ' + label if label else ''}"
    elif record.get("action") == "base-backup" and backup:  # barman backup prints no progress of its own
        percent, eta = backup.get("percent"), backup.get("eta_seconds")
        label = f"{progress_lines(backup)[1].strip()} (barman panel)"
    parts = [label] if label else []
    if percent is not None:
        parts.insert(0, f"{percent:.0f}%")
    if eta is not None:
        parts.append(f"ETA {fmt_elapsed(eta)}")
    if not parts:
        parts = ["no progress figures from this step"]
    return ProgressView(percent, " · ".join(parts))


def describe(record: dict) -> str:
    """ "nightly-recover, step 3/6: move the recovered files up"."""
    step = current_step(record)
    return f"{record.get('action', 'run')}" + (f", {step}" if step else "")


def outcome_line(run_id: str, record: dict, state: str, now: datetime) -> str:
    """How a run ended, in one line: state, duration, and for a failure the step and the error."""
    took = fmt_elapsed(run_elapsed(record, now))
    head = f"run {run_id} ({record.get('action', 'run')}): {STATE_WORDS.get(state, state.upper())}"
    if took:
        head += f" after {took}"
    if state == "succeeded":
        return head
    if state == "failed":
        step = record.get("failed_step")
        return head + (f" at step {step!r}" if step else "") + f": {record.get('error') or 'no error recorded'}"
    if state == "interrupted":
        return head + f" at {current_step(record) or 'its start'}: its supervisor stopped without recording an end"
    if record.get("error"):
        return f"{head}: {record['error']}"
    return head


def severity_of(state: str) -> Severity:
    severities: dict[str, Severity] = {"succeeded": "information", "passed": "information", "cancelled": "warning"}
    return severities.get(state, "error")


# -- drills ------------------------------------------------------------------------------------


def fmt_measure(seconds: float | None) -> str:
    """An RTO or RPO: "7.5 s", "4 min 26 s", "not measured"."""
    return "not measured" if seconds is None else fmt_elapsed(seconds)


def drill_outcome(report: dict | None, state: str) -> str:
    """passed | failed | refused | interrupted | running, from the report when there is one."""
    if report and report.get("outcome"):
        return report["outcome"]
    return {"succeeded": "passed", "cancelled": "interrupted", "starting": "running"}.get(state, state)


def drill_summary(report: dict, report_path: str) -> list[str]:
    """The drill's summary: outcome, RTO, RPO, what failed, and where the report is."""
    lines = [
        f"{report.get('outcome', '?').upper()} · RTO {fmt_measure(report.get('rto_seconds'))} · "
        f"RPO {fmt_measure(report.get('rpo_seconds'))}"
    ]
    if report.get("failure"):
        lines.append(f"failure: {report['failure']}")
    lines.append(f"report: {report_path}")
    return lines


def verify_rows(verify: list[dict]) -> list[tuple[str, str, str, bool]]:
    """(name, value, expect, passed) of each verification query."""
    return [
        (
            v.get("name", "?"),
            "" if v.get("value") is None else str(v["value"]),
            v.get("expect", ""),
            bool(v.get("passed")),
        )
        for v in verify
    ]


def history_row(report: dict) -> tuple[str, str, str, str, str]:
    """(date, outcome, RTO, RPO, drill id) for the drill history table."""
    started = parse_time(report.get("started_at"))
    date = started.astimezone().strftime("%Y-%m-%d %H:%M") if started else "—"
    rto, rpo = (_number(report.get(key)) for key in ("rto_seconds", "rpo_seconds"))
    return (
        date,
        str(report.get("outcome", "?")).upper(),
        "—" if rto is None else fmt_elapsed(rto),
        "—" if rpo is None else fmt_elapsed(rpo),
        str(report.get("drill_id", "?")),
    )


def _number(value: object) -> float | None:
    """A figure from a report, or None when it is missing or not a number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def rto_trend(reports: list[dict]) -> tuple[float, ...]:
    """The RTO of every passed drill, oldest first."""
    return tuple(
        float(r["rto_seconds"])
        for r in reports
        if r.get("outcome") == "passed" and isinstance(r.get("rto_seconds"), (int, float))
    )

"""The guided restore drill: a procedure on one screen, not a log dump.

Before a drill it says what the drill does and what it overwrites, lists the seven steps and
offers ``s`` (start, after typing the science host name). During it, each step shows its
state and time, the current one highlighted, with a progress bar during the redo and the
newest log line. At the end: the verification table and the summary (outcome, RTO, RPO, the
report's path). An interrupted drill offers ``u`` (resume where it stopped).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer

from ...actions.drill import drill_plan
from ...actions.runs import Run, RunStore, effective_state
from ...clock import utc_now
from ..host import ConsoleScreen
from ..keys import bindings
from ..messages import DrillLoaded
from ..present import last_drill_line
from ..present_runs import (
    ACTIVE,
    STATE_WORDS,
    StepRow,
    current_step,
    drill_outcome,
    drill_summary,
    fmt_elapsed,
    progress_view,
    run_elapsed,
    step_rows,
    verify_rows,
)
from ..runs import Attachment, read_report
from ..widgets.header import StatusHeader
from ..widgets.steps import ProgressRow, StepList
from ..widgets.table import SteadyTable
from ..widgets.text import Line, show_if
from .confirm import ConfirmScreen

FAIL = Text("FAIL", style="bold reverse")


class DrillScreen(ConsoleScreen[None]):
    """One drill: ``attachment`` when the console follows it, ``run`` for a drill directory shown as it is;
    with neither, the newest drill if it is unfinished, else a new drill ready to start."""

    SCOPES = ("view", "drill")
    BINDINGS = bindings(*SCOPES)

    def __init__(self, attachment: Attachment | None = None, *, run: Run | None = None) -> None:
        super().__init__(id="drill-view", classes="drill-view")
        self.attachment = attachment
        self.run = attachment.run if attachment else run
        self.record: dict = attachment.record if attachment else {}
        self.state = attachment.state if attachment else "loading"
        self.report: dict | None = attachment.report if attachment else None
        self._now_line = ""
        self.progress_row = ProgressRow()

    def compose(self) -> ComposeResult:
        yield StatusHeader(classes="detail-header")
        with VerticalScroll(classes="drill-body"):
            yield Line("", classes="drill-intro")
            yield Line("steps", classes="section")
            yield StepList(classes="drill-steps")
            yield self.progress_row
            yield Line("", classes="drill-now")
            yield Line("verification", classes="section verify-title")
            yield SteadyTable("check", "value", "expect", "result", id="drill-verify", cursor_type="none")
            yield Line("", classes="drill-summary")
        yield Line("", classes="drill-hint")
        yield Footer()

    def on_mount(self) -> None:
        if self.attachment is not None:
            self._now_line = self.attachment.lines[-1].plain if self.attachment.lines else ""
        else:
            self.host.run_thread(self._load, "load drill")
        self.show()
        self.set_interval(1.0, self._tick, name="drill elapsed")

    # -- data ------------------------------------------------------------------------------------

    def _load(self) -> None:
        """(thread) Read the drill to show: the given one, else the newest if it has not finished."""
        run = self.run
        if run is None:
            drills = RunStore(self.host.config.state_dir, "drills").all()
            newest = drills[-1] if drills else None
            if newest is not None and newest.state in ("interrupted", *ACTIVE):
                run = newest
        if run is None:
            self.post_message(DrillLoaded(None, {}, "ready", None))
            return
        record = run.record()
        self.post_message(DrillLoaded(run, record, effective_state(record), read_report(run)))

    def on_drill_loaded(self, message: DrillLoaded) -> None:
        if self.attachment is not None:  # adopted while loading: the live data wins
            return
        self.run, self.record, self.state, self.report = message.run, message.record, message.state, message.report
        self.show()
        self.refresh_bindings()

    def shows(self, run_id: str) -> bool:
        return self.attachment is not None and self.attachment.run.id == run_id

    def may_adopt(self, run_id: str) -> bool:
        """Whether this screen waits for (or shows, unfollowed) the drill ``run_id``."""
        return (self.attachment is None or self.attachment.ended) and (self.run is None or self.run.id == run_id)

    def adopt(self, attachment: Attachment) -> None:
        """Follow ``attachment`` from now on (a drill started or resumed from here, or re-attached)."""
        self.attachment, self.run = attachment, attachment.run
        self.show()
        self.refresh_bindings()

    def add_lines(self, lines: list[Text]) -> None:
        if lines:
            self._now_line = lines[-1].plain

    # -- view ------------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.state in ACTIVE:
            self.show()

    def show(self) -> None:
        """Bring the wizard up to the drill's record and report (cheap when nothing changed)."""
        a = self.attachment
        if a is not None:
            self.record, self.state, self.report = a.record, a.state, a.report
        config, now = self.host.config, utc_now()
        s = config.science
        header = self.query_one(StatusHeader)
        if self.run is None:
            steps = drill_plan(config)["steps"]
            header.show(
                "READY" if self.state == "ready" else "LOADING", f"restore drill of {s.host} (profile {s.profile})"
            )
            self.query_one(".drill-intro", Line).set(
                f"It stops {s.container} on {s.host} and overwrites science's database (volume {s.volume}) from "
                f"the nightly copy, starts it, follows the redo, runs {len(s.verify)} verification "
                f"quer{'y' if len(s.verify) == 1 else 'ies'} and writes a report with the RTO and the RPO."
            )
            self.query_one(StepList).set(
                [StepRow(i + 1, len(steps), step["name"], "pending", "", False) for i, step in enumerate(steps)]
            )
            summary = [last_drill_line((self.host.restore_facts() or {}).get("last_drill"))]
        else:
            outcome = drill_outcome(self.report, self.state)
            took = fmt_elapsed(run_elapsed(self.record, now))
            header.show(
                STATE_WORDS.get(outcome, outcome.upper()),
                f"restore drill {self.run.id}",
                (f"running for {took}" if self.state in ACTIVE else f"took {took}") if took else "",
            )
            overwrites = (self.record.get("drill") or {}).get("overwrites")
            verb = "overwrites" if self.state in ACTIVE else "overwrote"
            self.query_one(".drill-intro", Line).set(
                f"{verb} {overwrites}" if overwrites else f"restore drill of {s.host} (profile {s.profile})"
            )
            self.query_one(StepList).set(step_rows(self.record, self.state, now))
            summary = (
                drill_summary(self.report, str(self.run.path / "report.md"))
                if self.report and self.state not in ACTIVE
                else []
            )
        progress = progress_view(self.record, self.state, self.host.restore_facts())
        self.progress_row.show(progress)
        now_line = self.query_one(".drill-now", Line)
        now_line.set(f"now: {self._now_line}" if self.state in ACTIVE and self._now_line else "")
        show_if(now_line, bool(now_line.text))
        verify = (self.report or {}).get("verify") or (self.record.get("drill") or {}).get("verify") or []
        rows = verify_rows(verify)
        show_if(self.query_one(".verify-title"), bool(rows))
        table = self.query_one("#drill-verify", SteadyTable)
        show_if(table, bool(rows))
        table.set_rows([(name, value, expect, "PASS" if passed else FAIL) for name, value, expect, passed in rows])
        self.query_one(".drill-summary", Line).set("\n".join(summary))
        self.query_one(".drill-hint", Line).set(self._hint())

    def _hint(self) -> str:
        host = self.host.config.science.host
        key = self.host.key_of
        if self.state == "loading":
            return "reading the drills on record…"
        if self.state in ACTIVE:
            return f"{key('cancel-run')} cancels the drill · {key('back')} back (the drill goes on, detached)"
        if self.state == "interrupted":
            return (
                f"{key('resume-drill')} resumes at {current_step(self.record) or 'its first step'} "
                f"(finished steps are not repeated) · {key('back')} back"
            )
        start = f"{key('start-drill')} starts {'another' if self.run else 'the'} drill (you will type {host})"
        if self.host.read_only:
            start = "read-only: no drill can start from this console"
        return f"{start} · {key('drill-history')} history · {key('back')} back"

    # -- keys ------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return None if self.host.read_only or self.state in ACTIVE or self.state == "loading" else True
        if action == "resume":
            if self.state != "interrupted":
                return False
            return None if self.host.read_only else True
        return True

    def explain(self, binding_id: str) -> None:
        """Say why a dimmed key of this screen does nothing."""
        if self.host.read_only:
            self.host.say(
                "drill refused: read-only mode (--read-only or read_only: true in the config)",
                severity="warning",
                toast=True,
            )
        elif binding_id == "start-drill" and self.state in ACTIVE:
            self.host.say(f"a drill is running ({self.run.id if self.run else '?'}): one at a time", toast=True)

    def action_start(self) -> None:
        s = self.host.config.science
        lines = [
            f"It stops {s.container} on {s.host} and overwrites science's database (volume {s.volume}).",
            "Steps: " + ", ".join(step["name"].split(":")[0] for step in drill_plan(self.host.config)["steps"]) + ".",
        ]
        self.host.ask(
            ConfirmScreen(f"Restore drill of {s.host}", lines, typed=s.host, yes="Start the drill"),
            self._start_confirmed,
        )

    def _start_confirmed(self, answer: str | None) -> None:
        if answer is None:
            self.host.say("drill not started (cancelled at the confirmation)")
            return
        self.attachment, self.run, self.record, self.report, self.state = None, None, {}, None, "ready"
        self._now_line = ""
        self.show()
        self.host.start_drill(answer)

    def action_resume(self) -> None:
        if self.run is None:
            return
        lines = [
            f"It continues at {current_step(self.record) or 'its first step'}; finished steps are not repeated.",
            "A restore that had not finished starts again and overwrites science's database.",
        ]
        self.host.ask(ConfirmScreen(f"Resume drill {self.run.id}?", lines, yes="Resume"), self._resume_confirmed)

    def _resume_confirmed(self, answer: str | None) -> None:
        if answer is not None and self.run is not None:
            self.host.resume_drill(self.run.id)

    def action_back(self) -> None:
        self.dismiss()

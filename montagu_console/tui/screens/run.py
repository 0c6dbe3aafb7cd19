"""The run view: one action's steps with their state and time, its progress, and the live log.

The app feeds it: :meth:`RunScreen.show` when the run's record changes, :meth:`RunScreen.add_lines`
with each batch from the tailer. Escape goes back; the run goes on, detached.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer

from ...clock import utc_now
from ..host import ConsoleScreen
from ..keys import bindings
from ..present_runs import ACTIVE, STATE_WORDS, describe, fmt_elapsed, progress_view, run_elapsed, step_rows
from ..runs import LOG_LINES, Attachment
from ..widgets.header import StatusHeader
from ..widgets.log import RunLog
from ..widgets.steps import ProgressRow, StepList
from ..widgets.text import Line


class RunScreen(ConsoleScreen[None]):
    """Header (state word, action, run id), summary, steps, progress bar and the log."""

    SCOPES = ("view",)
    BINDINGS = bindings(*SCOPES)

    def __init__(self, attachment: Attachment) -> None:
        super().__init__(id="run-view", classes="run-view")
        self.attachment = attachment
        self.progress_row = ProgressRow()

    def compose(self) -> ComposeResult:
        yield StatusHeader(classes="detail-header")
        yield Line("", classes="run-summary")
        yield StepList(classes="run-steps")
        yield self.progress_row
        log = RunLog(id="run-log", max_lines=LOG_LINES)
        log.border_title = "log"
        yield log
        yield Footer()

    def on_mount(self) -> None:
        log = self.query_one(RunLog)
        log.write_texts(self.attachment.lines)
        self.call_after_refresh(log.scroll_end, animate=False)  # sized only now: follow the end from here
        self.show()
        self.set_interval(1.0, self.show, name="run elapsed")

    def shows(self, run_id: str) -> bool:
        return self.attachment.run.id == run_id

    def show(self) -> None:
        """Bring everything but the log up to the attachment's record (cheap when nothing changed)."""
        a, now = self.attachment, utc_now()
        record = a.record
        took = fmt_elapsed(run_elapsed(record, now))
        self.query_one(StatusHeader).show(
            STATE_WORDS.get(a.state, a.state.upper()),
            f"run {a.run.id}",
            f"{'running for' if a.state in ACTIVE else 'took'} {took}" if took else "",
        )
        summary = [f"{a.plan_title} on {a.plan_host}" if a.plan_title else describe(record)]
        if a.state not in ACTIVE and record.get("error"):
            summary.append(f"error: {record['error']}")
        self.query_one(".run-summary", Line).set("\n".join(summary))
        self.query_one(StepList).set(step_rows(record, a.state, now))
        progress = progress_view(record, a.state, self.host.restore_facts(), self.host.barman_facts())
        self.progress_row.show(progress)

    def add_lines(self, lines: list[Text]) -> None:
        """Append a batch of log lines."""
        if lines:
            self.query_one(RunLog).write_texts(lines)

    def action_back(self) -> None:
        self.dismiss()

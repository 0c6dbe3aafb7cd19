"""Drill history: every drill's date, outcome, RTO and RPO, the RTO trend, and each drill's report."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Markdown

from ...actions.drill import list_drills
from ...actions.runs import RunStore
from ...errors import ConsoleError
from ..keys import bindings
from ..messages import DrillsListed, ReportLoaded
from ..present_runs import fmt_elapsed, history_row, rto_trend
from ..widgets.header import StatusHeader
from ..widgets.table import SteadyTable
from ..widgets.text import Line, show_if
from ..widgets.trend import Trend


class HistoryScreen(Screen):
    """The drills on record, newest first; Enter shows the selected drill's report."""

    SCOPES = ("view", "history")
    BINDINGS = bindings(*SCOPES)

    def __init__(self) -> None:
        super().__init__(id="history", classes="history")
        self.reports: list[dict] = []

    def compose(self) -> ComposeResult:
        yield StatusHeader(classes="detail-header")
        yield Line("reading the drills on record…", classes="detail-summary")
        yield Line("", classes="trend-label")
        yield Trend(classes="rto-trend")
        yield SteadyTable("started", "outcome", "RTO", "RPO", "drill id", id="drills")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusHeader).show("DRILLS", f"restore drills of {self.app.config.science.host}")
        self.run_worker(self._list, name="list drills", thread=True, exit_on_error=False)
        self.query_one(SteadyTable).focus()

    def _list(self) -> None:
        """(thread) Every drill's report."""
        self.post_message(DrillsListed(list_drills(self.app.config.state_dir)))

    def on_drills_listed(self, message: DrillsListed) -> None:
        self.reports = list(reversed(message.reports))  # newest first
        passed = sum(r.get("outcome") == "passed" for r in self.reports)
        self.query_one(".detail-summary", Line).set(
            f"{len(self.reports)} drill{'' if len(self.reports) == 1 else 's'} on record, {passed} passed"
            if self.reports else "no drill on record: d starts the first")
        trend = rto_trend(message.reports)
        show_if(self.query_one(".trend-label"), bool(trend))
        show_if(self.query_one(Trend), bool(trend))
        if trend:
            top = max(trend)
            self.query_one(".trend-label", Line).set(
                f"RTO of the passed drills, oldest → newest: the last {fmt_elapsed(trend[-1])}, "
                f"a full block {fmt_elapsed(top)}")
            self.query_one(Trend).set(trend, top)
        self.query_one(SteadyTable).set_rows([(str(r.get("drill_id")), history_row(r)) for r in self.reports])

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_report()

    def action_report(self) -> None:
        table = self.query_one(SteadyTable)
        if not self.reports or table.cursor_row is None or not 0 <= table.cursor_row < len(self.reports):
            return
        self.app.push_screen(ReportScreen(str(self.reports[table.cursor_row].get("drill_id"))))

    def action_back(self) -> None:
        self.dismiss()


class ReportScreen(Screen):
    """One drill's report.md, rendered as Markdown (links are not opened)."""

    SCOPES = ("view",)
    BINDINGS = bindings(*SCOPES)

    def __init__(self, drill_id: str) -> None:
        super().__init__(id="report", classes="report")
        self.drill_id = drill_id

    def compose(self) -> ComposeResult:
        yield StatusHeader(classes="detail-header")
        with VerticalScroll(classes="report-body"):
            yield Markdown("", open_links=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusHeader).show("REPORT", f"restore drill {self.drill_id}")
        self.run_worker(self._read, name="read report", thread=True, exit_on_error=False)
        self.query_one(VerticalScroll).focus()

    def _read(self) -> None:
        """(thread) The report's text, or why there is none."""
        try:
            run = RunStore(self.app.config.state_dir, "drills").get(self.drill_id)
            text = (run.path / "report.md").read_text()
        except ConsoleError as e:
            text = f"**{e}**"
        except OSError:
            text = f"**drill {self.drill_id} has no report yet** (it is still running, or it stopped before its end)"
        self.post_message(ReportLoaded(text))

    async def on_report_loaded(self, message: ReportLoaded) -> None:
        await self.query_one(Markdown).update(message.text)

    def action_back(self) -> None:
        self.dismiss()

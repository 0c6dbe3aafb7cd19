"""Drill history: every drill's date, outcome, RTO and RPO, the RTO trend, and each drill's report."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Markdown

from ...actions import files
from ...actions.drill import list_drills
from ...actions.runs import RunStore
from ...errors import ConsoleError
from ...text import MAX_FILE_BYTES, clean
from ..host import ConsoleScreen
from ..keys import bindings
from ..messages import DrillsListed, ReportLoaded
from ..present_runs import fmt_elapsed, history_row, rto_trend
from ..widgets.header import StatusHeader
from ..widgets.table import SteadyTable
from ..widgets.text import Line, show_if
from ..widgets.trend import Trend


class HistoryScreen(ConsoleScreen[None]):
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
        self.query_one(StatusHeader).show("DRILLS", f"restore drills of {self.host.config.science.host}")
        self.host.run_thread(self._list, "list drills")
        self.query_one(SteadyTable).focus()

    def _list(self) -> None:
        """(thread) Every drill's report."""
        self.post_message(DrillsListed(list_drills(self.host.config.state_dir)))

    def on_drills_listed(self, message: DrillsListed) -> None:
        self.reports = list(reversed(message.reports))  # newest first
        passed = sum(r.get("outcome") == "passed" for r in self.reports)
        self.query_one(".detail-summary", Line).set(
            f"{len(self.reports)} drill{'' if len(self.reports) == 1 else 's'} on record, {passed} passed"
            if self.reports
            else "no drill on record: d starts the first"
        )
        trend = rto_trend(message.reports)
        show_if(self.query_one(".trend-label"), bool(trend))
        show_if(self.query_one(Trend), bool(trend))
        if trend:
            top = max(trend)
            self.query_one(".trend-label", Line).set(
                f"RTO of the passed drills, oldest → newest: the last {fmt_elapsed(trend[-1])}, "
                f"a full block {fmt_elapsed(top)}"
            )
            self.query_one(Trend).set(trend, top)
        self.query_one(SteadyTable).set_rows([history_row(r) for r in self.reports])

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_report()

    def action_report(self) -> None:
        table = self.query_one(SteadyTable)
        if not self.reports or table.cursor_row is None or not 0 <= table.cursor_row < len(self.reports):
            return
        self.host.open_screen(ReportScreen(str(self.reports[table.cursor_row].get("drill_id"))))

    def action_back(self) -> None:
        self.dismiss()


class ReportScreen(ConsoleScreen[None]):
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
        self.host.run_thread(self._read, "read report")
        self.query_one(VerticalScroll).focus()

    def _read(self) -> None:
        """(thread) The report's text, or why there is none."""
        try:
            run = RunStore(self.host.config.state_dir, "drills").get(self.drill_id)
            text = clean(files.read_text(run.path / "report.md", limit=MAX_FILE_BYTES))
        except FileNotFoundError:
            text = f"**drill {self.drill_id} has no report yet** (it is still running, or it stopped before its end)"
        except ConsoleError as e:
            text = f"**{clean(str(e))}**"
        except OSError:
            text = f"**drill {self.drill_id} has no report yet** (it is still running, or it stopped before its end)"
        self.post_message(ReportLoaded(text))

    async def on_report_loaded(self, message: ReportLoaded) -> None:
        await self.query_one(Markdown).update(message.text)

    def action_back(self) -> None:
        self.dismiss()

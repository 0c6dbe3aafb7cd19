"""Detail views, one per panel (Enter on a panel opens it, Escape goes back).

Each shows the panel's status and summary on top and the typed facts below; all remote text is
shown without markup. Like the panels, they update live and only repaint what changed.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Footer

from ... import humanfmt
from ...snapshot import BarmanFacts, PanelResult, RestoreFacts, StarportFacts, WalFacts
from ..host import ConsoleScreen
from ..keys import bindings
from ..present import PanelView, bar, facts_source, fmt_age, fmt_ago, fmt_time, yes_no
from ..widgets.header import StatusHeader
from ..widgets.log import TextLog
from ..widgets.table import SteadyTable
from ..widgets.text import Line
from ..widgets.trend import Trend

FAILED = Text("FAILED", style="bold reverse")


class DetailScreen(ConsoleScreen[None]):
    """Base of the detail views: header, summary, the panel-specific body, footer."""

    SCOPES = ("view",)
    BINDINGS = bindings(*SCOPES)

    def __init__(self, panel: str, title: str) -> None:
        super().__init__(id=f"detail-{panel}", classes="detail")
        self.panel = panel
        self.panel_title = title

    def compose(self) -> ComposeResult:
        yield StatusHeader(classes="detail-header")
        yield Line("", classes="detail-summary")
        with Vertical(classes="detail-body"):
            yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The panel-specific widgets."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.host.show_detail(self)

    def show(self, result: PanelResult | None, last_good: PanelResult | None, view: PanelView, now: datetime) -> None:
        """Show the newest ``result``, its facts or, when it failed, the last good ones."""
        self.query_one(StatusHeader).show(view.word, self.panel_title, view.age)
        summary = view.summary
        if result is not None and result.error and result.error not in summary:
            summary += f"\n{result.error}"
        shown = facts_source(result, last_good)
        if shown is not None and shown is not result:
            summary += f"\nbelow: the last known facts, from {fmt_time(shown.taken_at)}"
        self.query_one(".detail-summary", Line).set(summary)
        if shown is not None:
            self.show_body(shown.detail, now)

    def show_body(self, detail, now: datetime) -> None:
        """Fill the body from the typed facts object."""
        raise NotImplementedError

    def action_back(self) -> None:
        self.dismiss()


def _pairs(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


class BarmanDetail(DetailScreen):
    """barman: server facts, every ``barman check`` with its hint, the backup list."""

    def compose_body(self) -> ComposeResult:
        yield Line("", classes="facts")
        yield Line("barman check (FAILED first)", classes="section")
        yield SteadyTable("check", "status", "hint", id="checks")
        yield Line("backups (newest first)", classes="section")
        yield SteadyTable("backup id", "end time", "age", "size", "WAL size", "status", id="backups")

    def show_body(self, facts: BarmanFacts, now: datetime) -> None:
        container = (
            yes_no(facts.container_running, "running", "NOT RUNNING")
            if facts.container_running is not None
            else "not configured"
        )
        self.query_one(".facts", Line).set(
            _pairs(
                [
                    ("server", f"{facts.server} (barman {facts.barman_version})"),
                    (
                        "PostgreSQL",
                        f"{facts.pg_version or 'version unknown'}, "
                        f"{'reachable' if facts.pg_reachable else 'UNREACHABLE'}, "
                        f"data {humanfmt.size(facts.data_size_bytes)}",
                    ),
                    ("barman container", container),
                    ("backup running", "yes" if facts.backup_running else "no"),
                ]
            )
        )
        checks = sorted(facts.checks, key=lambda c: c.ok)
        self.query_one("#checks", SteadyTable).set_rows([(c.name, "OK" if c.ok else FAILED, c.hint) for c in checks])
        rows = []
        for b in facts.backups:
            status = FAILED if b.status == "FAILED" else b.status
            age = fmt_ago((now - b.end_time).total_seconds()) if b.end_time else "—"
            backup_id = Text(b.backup_id, style="bold") if b.status == "FAILED" else b.backup_id
            rows.append(
                (
                    backup_id,
                    fmt_time(b.end_time, date=True),
                    age,
                    humanfmt.size(b.size_bytes),
                    humanfmt.size(b.wal_size_bytes),
                    status,
                )
            )
        self.query_one("#backups", SteadyTable).set_rows(rows)


class WalDetail(DetailScreen):
    """WAL: receive-wal, the replication slot, LSNs, the last archived WAL, the lag trend."""

    def compose_body(self) -> ComposeResult:
        yield Line("", classes="facts")
        yield Line("lag trend", classes="section")
        yield Line("", classes="trend-note")
        yield Trend(classes="lag-trend")

    def show_body(self, facts: WalFacts, now: datetime) -> None:
        archived_at = facts.last_archived_at
        archived = f"{fmt_time(archived_at)} ({fmt_ago((now - archived_at).total_seconds())})" if archived_at else "—"
        self.query_one(".facts", Line).set(
            _pairs(
                [
                    ("receive-wal", yes_no(facts.receive_wal_running, "running", "NOT RUNNING")),
                    ("replication slot", f"{facts.slot_name}: {yes_no(facts.slot_active, 'active', 'INACTIVE')}"),
                    ("streaming state", facts.streaming_state or "unknown"),
                    ("primary's LSN", facts.server_lsn or "unknown"),
                    ("barman flushed to", facts.flush_lsn or "unknown"),
                    ("lag", humanfmt.size(facts.lag_bytes)),
                    ("last archived WAL", facts.last_archived_wal or "none"),
                    ("archived at", archived),
                ]
            )
        )
        trend = self.host.lag_trend()
        note = (
            (
                f"one block per poll, the last {len(trend.values)}: highest {humanfmt.size(int(max(trend.values)))}; "
                f"a full block is the WARNING threshold, {humanfmt.size(int(trend.top))}"
            )
            if trend.values
            else "no samples yet"
        )
        self.query_one(".trend-note", Line).set(note)
        self.query_one(".lag-trend", Trend).set(trend.values, trend.top)


class StarportDetail(DetailScreen):
    """starport: the nightly recovered copy and every target with its last backup."""

    def compose_body(self) -> ComposeResult:
        yield Line("", classes="facts")
        yield Line("starport targets", classes="section")
        yield SteadyTable("target", "last backup", "age", "nightly copy in it", "problem", id="targets")

    def show_body(self, facts: StarportFacts, now: datetime) -> None:
        nightly = facts.nightly_restored_at
        when = f"{fmt_time(nightly, date=True)} ({fmt_ago((now - nightly).total_seconds())})" if nightly else "never"
        rows = [("nightly copy restored", when)]
        if facts.nightly_error:
            rows.append(("nightly copy problem", facts.nightly_error))
        self.query_one(".facts", Line).set(_pairs(rows))
        self.query_one("#targets", SteadyTable).set_rows(
            [
                (
                    t.name,
                    fmt_time(t.last_backup, date=True) if t.last_backup else "never",
                    fmt_ago((now - t.last_backup).total_seconds()) if t.last_backup else "—",
                    fmt_time(t.carried_restore_at, date=True) if t.carried_restore_at else "—",
                    t.error or "",
                )
                for t in facts.targets
            ]
        )


class RestoreDetail(DetailScreen):
    """science restore: phase and progress, redo LSN against the target, the postgres log tail."""

    def compose_body(self) -> ComposeResult:
        yield Line("", classes="facts")
        yield Line("postgres log (tail)", classes="section")
        yield TextLog(id="log-tail", max_lines=500)

    def on_mount(self) -> None:
        self._tail: tuple[str, ...] | None = None
        super().on_mount()

    def show_body(self, facts: RestoreFacts, now: datetime) -> None:
        progress = "—"
        if facts.percent is not None:
            progress = f"{bar(facts.percent, 20)} {facts.percent:.0f}%"
            if facts.eta_seconds is not None:
                progress += f", ETA {fmt_age(facts.eta_seconds)}"
        data_from = facts.data_restored_from
        last = facts.last_restore_at
        self.query_one(".facts", Line).set(
            _pairs(
                [
                    ("database container", f"{facts.container}: {facts.container_status or 'NO SUCH CONTAINER'}"),
                    ("phase", facts.phase),
                    ("progress", progress),
                    ("redo LSN → target", f"{facts.redo_lsn or '—'} → {facts.target_lsn or '—'}"),
                    ("accepting connections", yes_no(facts.db_accepting, "yes", "NO")),
                    ("in recovery", yes_no(facts.in_recovery, "yes", "no")),
                    (
                        "science data from",
                        f"{fmt_time(data_from, date=True)} ({fmt_ago((now - data_from).total_seconds())})"
                        if data_from
                        else "unknown",
                    ),
                    (
                        "last restore",
                        (
                            f"{fmt_time(last, date=True)} ({fmt_ago((now - last).total_seconds())})"
                            if last
                            else "unknown"
                        )
                        + (", FAILED" if facts.last_restore_failed else ""),
                    ),
                ]
            )
        )
        if facts.log_tail != self._tail:
            self._tail = facts.log_tail
            self.query_one("#log-tail", TextLog).replace_lines(Text(line) for line in facts.log_tail)


DETAIL_SCREENS: dict[str, type[DetailScreen]] = {
    "barman": BarmanDetail,
    "wal": WalDetail,
    "starport": StarportDetail,
    "restore": RestoreDetail,
}

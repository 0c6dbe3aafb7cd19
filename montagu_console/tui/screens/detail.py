"""Detail views, one per panel (Enter on a panel opens it, Escape goes back).

Each shows the panel's status and summary on top and the typed facts below; all remote text is
shown without markup. Like the panels, they update live and only repaint what changed. With
several barman instances the barman and WAL views have a section per instance, in a scrolling body.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer

from ... import humanfmt
from ...snapshot import BarmanFacts, InstanceResult, PanelResult, RestoreFacts, StarportFacts, WalFacts
from ..host import ConsoleScreen
from ..keys import bindings
from ..present import (
    PanelView,
    bar,
    facts_source,
    fmt_age,
    fmt_ago,
    fmt_time,
    progress_line,
    progress_source,
    room_text,
    slot_rows,
    yes_no,
)
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
        if self.sections > 1:
            with VerticalScroll(classes="detail-body detail-estate"):
                yield from self.compose_body()
        else:
            with Vertical(classes="detail-body"):
                yield from self.compose_body()
        yield Footer()

    @property
    def sections(self) -> int:
        """How many barman instances this view has a section for (1 but for the barman and WAL views)."""
        return 1

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
        if self.sections > 1 and result is not None and result.instances:
            self.show_instances(result, now)  # each instance carries its own facts, or why it has none
        elif shown is not None:
            self.show_body(shown.detail, now)

    def show_instances(self, result: PanelResult, now: datetime) -> None:
        """Fill the sections, one per barman instance (views with ``sections > 1``)."""
        raise NotImplementedError

    def show_body(self, detail, now: datetime) -> None:
        """Fill the body from the typed facts object."""
        raise NotImplementedError

    def action_back(self) -> None:
        self.dismiss()


def _pairs(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _suffix(index: int) -> str:
    """Widget ids of an instance's section: the first instance's are the plain ones (``#checks``)."""
    return "" if index == 0 else f"-{index + 1}"


def _instance_heading(instance: InstanceResult) -> str:
    where = instance.name if instance.name == instance.host else f"{instance.name} on {instance.host}"
    return f"{where}: {instance.result.status.value}"


def _compose_instance(index: int) -> ComposeResult:
    """The top of an instance's section: heading (name and status word), its summary, its facts."""
    n = _suffix(index)
    yield Line("", id=f"instance{n}", classes="instance-heading")
    yield Line("", id=f"summary{n}", classes="instance-summary")
    yield Line("", id=f"facts{n}", classes="facts")


def _show_instance(screen: DetailScreen, index: int, instance: InstanceResult, pairs: list[tuple[str, str]]) -> None:
    n = _suffix(index)
    screen.query_one(f"#instance{n}", Line).set(_instance_heading(instance))
    screen.query_one(f"#summary{n}", Line).set(instance.result.summary)
    # a probe that failed has no facts: its summary says why, and nothing stale is shown as current
    screen.query_one(f"#facts{n}", Line).set(_pairs(pairs) if pairs else "")


def _barman_pairs(facts: BarmanFacts) -> list[tuple[str, str]]:
    container = (
        yes_no(facts.container_running, "running", "NOT RUNNING")
        if facts.container_running is not None
        else "not configured"
    )
    progress = facts.backup_progress
    running = [("backup running", "yes" if facts.backup_running else "no")]
    if progress is not None:
        fact = progress.as_fact()
        running = [
            ("backup running", f"{progress.backup_id or 'id not known yet'}, {progress_source(fact, short=True)}"),
            ("progress", progress_line(fact)),
        ]
    return [
        ("server", f"{facts.server} (barman {facts.barman_version})"),
        (
            "PostgreSQL",
            f"{facts.pg_version or 'version unknown'}, "
            f"{'reachable' if facts.pg_reachable else 'UNREACHABLE'}, "
            f"data {humanfmt.size(facts.data_size_bytes)}",
        ),
        ("barman container", container),
        *running,
        ("retention policy", facts.retention_policy or "unknown"),
    ]


def _check_rows(facts: BarmanFacts) -> list[tuple[str | Text, ...]]:
    checks = sorted(facts.checks, key=lambda c: c.ok)
    return [(c.name, "OK" if c.ok else FAILED, c.hint) for c in checks]


def _backup_rows(facts: BarmanFacts, now: datetime) -> list[tuple[str | Text, ...]]:
    rows: list[tuple[str | Text, ...]] = []
    for b in facts.backups:
        status = FAILED if b.status == "FAILED" else b.status
        age = fmt_age((now - b.end_time).total_seconds()) if b.end_time else "—"
        backup_id = Text(b.backup_id, style="bold") if b.status == "FAILED" else b.backup_id
        kept = b.retention_status or "—"
        retention = Text(kept, style="bold") if kept == "OBSOLETE" else kept
        rows.append((backup_id, fmt_time(b.end_time, date=True), age, humanfmt.size(b.size_bytes), status, retention))
    return rows


BACKUP_COLUMNS = ("backup id", "end time", "age", "size", "status", "retention")


class BarmanDetail(DetailScreen):
    """barman: server facts, retention policy and backup progress, every ``barman check`` with its
    hint, the backup list with each backup's retention status; a section per barman instance."""

    @property
    def sections(self) -> int:
        return len(self.host.config.barmans)

    def compose_body(self) -> ComposeResult:
        if self.sections == 1:
            yield Line("", classes="facts")
            yield Line("barman check (FAILED first)", classes="section")
            yield SteadyTable("check", "status", "hint", id="checks")
            yield Line("backups (newest first)", classes="section")
            yield SteadyTable(*BACKUP_COLUMNS, id="backups")
            return
        for i in range(self.sections):
            n = _suffix(i)
            yield from _compose_instance(i)
            yield Line("barman check (FAILED first)", classes="section")
            yield _unfocused(SteadyTable("check", "status", "hint", id=f"checks{n}"))
            yield Line("backups (newest first)", classes="section")
            yield _unfocused(SteadyTable(*BACKUP_COLUMNS, id=f"backups{n}"))

    def show_body(self, facts: BarmanFacts, now: datetime) -> None:
        self.query_one(".facts", Line).set(_pairs(_barman_pairs(facts)))
        self.query_one("#checks", SteadyTable).set_rows(_check_rows(facts))
        self.query_one("#backups", SteadyTable).set_rows(_backup_rows(facts, now))

    def show_instances(self, result: PanelResult, now: datetime) -> None:
        for i, instance in enumerate(result.instances[: self.sections]):
            n = _suffix(i)
            facts = instance.result.detail
            ok = isinstance(facts, BarmanFacts)
            _show_instance(self, i, instance, _barman_pairs(facts) if ok else [])
            self.query_one(f"#checks{n}", SteadyTable).set_rows(_check_rows(facts) if ok else [])
            self.query_one(f"#backups{n}", SteadyTable).set_rows(_backup_rows(facts, now) if ok else [])


def _unfocused(table: SteadyTable) -> SteadyTable:
    """A table inside the scrolling body of several sections: the body scrolls, not the table."""
    table.can_focus = False
    return table


def _wal_pairs(facts: WalFacts, now: datetime) -> list[tuple[str, str]]:
    archived_at = facts.last_archived_at
    archived = f"{fmt_time(archived_at)} ({fmt_ago((now - archived_at).total_seconds())})" if archived_at else "—"
    return [
        ("receive-wal", yes_no(facts.receive_wal_running, "running", "NOT RUNNING")),
        ("replication slot", f"{facts.slot_name}: {yes_no(facts.slot_active, 'active', 'INACTIVE')}"),
        ("streaming state", facts.streaming_state or "unknown"),
        ("primary's LSN", facts.server_lsn or "unknown"),
        ("barman flushed to", facts.flush_lsn or "unknown"),
        ("lag", humanfmt.size(facts.lag_bytes)),
        ("last archived WAL", facts.last_archived_wal or "none"),
        ("archived at", archived),
    ]


class WalDetail(DetailScreen):
    """WAL: receive-wal, the replication slot, LSNs, the last archived WAL (a section per barman
    instance), every slot on the primary when ``primary`` is configured, the lag trend."""

    @property
    def sections(self) -> int:
        return len(self.host.config.barmans)

    def compose_body(self) -> ComposeResult:
        if self.sections == 1:
            yield Line("", classes="facts")
        else:
            for i in range(self.sections):
                yield from _compose_instance(i)
        if self.host.config.primary is not None:
            yield Line("replication slots on the primary (inactive first)", classes="section")
            yield Line("", classes="slots-note")
            table = SteadyTable("slot", "state", "WAL retained", id="slots")
            yield _unfocused(table) if self.sections > 1 else table
        yield Line("lag trend", classes="section trend-title")
        yield Line("", classes="trend-note")
        yield Trend(classes="lag-trend")

    def show_body(self, facts: WalFacts, now: datetime) -> None:
        self.query_one(".facts", Line).set(_pairs(_wal_pairs(facts, now)))
        self._show_trend()

    def show(self, result: PanelResult | None, last_good: PanelResult | None, view: PanelView, now: datetime) -> None:
        super().show(result, last_good, view, now)
        if self.host.config.primary is not None:
            self._show_slots(result if result is not None and result.facts else last_good)

    def show_instances(self, result: PanelResult, now: datetime) -> None:
        for i, instance in enumerate(result.instances[: self.sections]):
            facts = instance.result.detail
            _show_instance(self, i, instance, _wal_pairs(facts, now) if isinstance(facts, WalFacts) else [])
        self.query_one(".trend-title", Line).set(f"lag trend ({result.instances[0].name})")
        self._show_trend()

    def _show_slots(self, result: PanelResult | None) -> None:
        slots = None if result is None else result.facts.get("slots")
        rows = slot_rows(slots)
        if slots is None:
            note = "not read: see the summary above"
        else:
            inactive = sum(1 for _, state, _ in rows if state == "INACTIVE")
            note = f"{len(rows)} slot{'' if len(rows) == 1 else 's'}, {inactive} INACTIVE" if rows else "none"
        self.query_one(".slots-note", Line).set(note)
        inactive_word = Text("INACTIVE", style="bold reverse")  # stands out without colour, too
        self.query_one("#slots", SteadyTable).set_rows(
            [(name, inactive_word if state == "INACTIVE" else state, held) for name, state, held in rows]
        )

    def _show_trend(self) -> None:
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
        if room := room_text(facts):
            rows.append(("room under the copy", room))
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

"""Trends (``t``): the chain's history over the last 24 hours or 30 days, read from the history database.

One section per series: backup age and WAL lag per barman instance, the nightly copy's age, the
proofs of the nightly copy, and the RTO and RPO of every drill on record. Each has a chart (one
column per hour or day, the letter of the new status under a column where the status changed)
and beside it the same figures as a plain-text table. The history is read in a worker thread;
``t`` again switches between hours and days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Static

from ... import humanfmt
from ...clock import duration, parse_iso_or_none
from ...config import Config
from ...history import History, HistoryError
from ..host import ConsoleScreen
from ..keys import bindings
from ..messages import TrendsRead
from ..widgets.header import StatusHeader
from ..widgets.text import Line
from ..widgets.trend import trend_text

NO_READING = "·"
UNKNOWN_VALUE = "?"
CHANGE_MARK = {"OK": "O", "WARNING": "W", "CRITICAL": "C", "UNKNOWN": "U"}
DRILLS_SHOWN = 30
LEGEND = (
    "· no reading, ? value unknown; O W C U under a column: the status changed to OK, WARNING, CRITICAL, "
    "UNKNOWN; ◆ in a table: a status change"
)


@dataclass(frozen=True)
class Span:
    """How far back the charts go and how wide a column is."""

    name: str
    step: float  # seconds per column
    count: int  # columns
    title: str

    def start(self, now: datetime) -> datetime:
        """The first column's start: clock hours, or local midnights, so columns are whole hours or days."""
        local = now.astimezone()
        if self.step >= 86400:
            end = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        else:
            end = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return end - timedelta(seconds=self.step * self.count)

    def label(self, at: datetime, *, day: bool = False) -> str:
        """A column's time: "Nov 24" for days, "07:00" for hours ("Tue 07:00" with ``day``)."""
        return at.astimezone().strftime("%b %d" if self.step >= 86400 else "%a %H:%M" if day else "%H:%M")


SPANS = (
    Span("hours", 3600, 24, "the last 24 hours, a column an hour"),
    Span("days", 86400, 30, "the last 30 days, a column a day"),
)


@dataclass(frozen=True)
class Series:
    """One readings chart: a panel's fact, per instance or for the panel as a whole."""

    key: str  # section id
    title: str
    panel: str
    fact: str
    instance: str | None
    top: float  # a full block: the WARNING threshold
    fmt: Callable[[float], str]


def series_of(config: Config) -> list[Series]:
    """The readings charts this config has: backup age and WAL lag per barman, the nightly copy's age."""
    out = []
    for i, b in enumerate(config.barmans):
        name = b.name or b.host
        out.append(
            Series(
                f"backup-{i}",
                f"Backup age · {name} (full column: WARNING at {b.backup_warning_days:g} days)",
                "barman",
                "last_backup_age_seconds",
                name,
                b.backup_warning_days * 86400,
                duration,
            )
        )
    for i, b in enumerate(config.barmans):
        name = b.name or b.host
        warn = config.wal.lag_warning_bytes
        out.append(
            Series(
                f"lag-{i}",
                f"WAL lag · {name} (full column: WARNING at {humanfmt.size(warn)})",
                "wal",
                "lag_bytes",
                name,
                float(warn),
                humanfmt.size,
            )
        )
    out.append(
        Series(
            "nightly",
            f"Nightly copy age (full column: WARNING at {config.nightly.warning_hours:g} h)",
            "starport",
            "nightly_age_seconds",
            None,
            config.nightly.warning_hours * 3600,
            duration,
        )
    )
    return out


# -- what each section shows (pure: computed in the worker thread) ------------------------------


def readings_section(series: Series, buckets: list[dict[str, Any]], span: Span, start: datetime) -> tuple[str, str]:
    """The chart (bars, change marks, time axis) and the table of one readings series."""
    by_column = {b["bucket"]: b for b in buckets if b["instance"] == series.instance}
    values = [b["value"] for b in by_column.values() if b["value"] is not None]
    top = max([series.top, *values]) if values else series.top
    bars, marks = [], []
    for column in range(span.count):
        b = by_column.get(column)
        if b is None:
            bars.append(NO_READING)
        elif b["value"] is None:
            bars.append(UNKNOWN_VALUE)
        else:
            bars.append(trend_text((float(b["value"]),), 1, top) or NO_READING)
        marks.append(CHANGE_MARK.get(b["last"], "?") if b is not None and b["changes"] else " ")
    chart = "\n".join(("".join(bars), "".join(marks).rstrip() or " ", _axis(span, start)))
    rows = []
    for column in sorted(by_column, reverse=True):
        b = by_column[column]
        when = span.label(start + timedelta(seconds=span.step * column))
        value = "unknown" if b["value"] is None else series.fmt(float(b["value"]))
        rows.append(f"{when:<6} {value:>9} {b['worst']:<8} {change_text(b)}".rstrip())
    if not rows:
        rows.append(f"no reading in {span.title.split(',')[0]}")
    return chart, "\n".join(rows)


def change_text(bucket: dict[str, Any]) -> str:
    """``◆ OK→WARNING`` for one status change in a column, ``◆ 3 changes, now OK`` for more; "" for none."""
    n = bucket["changes"]
    if not n:
        return ""
    return f"◆ {bucket['first']}→{bucket['last']}" if n == 1 else f"◆ {n} changes, now {bucket['last']}"


def _axis(span: Span, start: datetime) -> str:
    first = span.label(start, day=True)
    last = span.label(start + timedelta(seconds=span.step * (span.count - 1)))
    return first + last.rjust(span.count - len(first))


def proofs_section(proofs: list[dict[str, Any]], span: Span, start: datetime) -> tuple[str, str]:
    """A column per hour or day: ✓ every proof in it passed, ✗ one failed; the proofs as a table."""
    columns: dict[int, list[dict[str, Any]]] = {}
    for p in proofs:
        at = parse_iso_or_none(p["at"])
        if at is None:
            continue
        column = int((at - start).total_seconds() // span.step)
        if 0 <= column < span.count:
            columns.setdefault(column, []).append(p)
    marks = "".join(
        NO_READING if c not in columns else "✗" if any(p["status"] != "passed" for p in columns[c]) else "✓"
        for c in range(span.count)
    )
    chart = "\n".join((marks, " ", _axis(span, start)))
    rows = []
    for column in sorted(columns, reverse=True):
        for p in reversed(columns[column]):
            at = parse_iso_or_none(p["at"])
            when = span.label(at) if at else "?"
            facts = p["facts"]
            newest = parse_iso_or_none(facts.get("data_newest"))
            what = f"data {newest.astimezone():%b %d %H:%M}" if newest else "no data time"
            if p["status"] != "passed" and facts.get("reason"):
                what = str(facts["reason"])
            rows.append(f"{when:<6} {p['status']:<8} {what}")
    if not rows:
        rows.append(f"no proof in {span.title.split(',')[0]}")
    return chart, "\n".join(rows)


def drills_section(drills: list[dict[str, Any]]) -> tuple[str, str]:
    """RTO and RPO of the drills on record, oldest to newest (a column each); a ◆ where the outcome changed."""
    shown = drills[-DRILLS_SHOWN:]
    if not shown:
        return "no drill on record", "d starts the first"

    def figures(key: str) -> str:
        values = [d["facts"].get(key) for d in shown]
        known = [float(v) for v in values if isinstance(v, (int, float))]
        top = max(known, default=1.0) or 1.0
        return "".join(
            trend_text((float(v),), 1, top) or NO_READING if isinstance(v, (int, float)) else UNKNOWN_VALUE
            for v in values
        )

    changed = [i > 0 and d["status"] != shown[i - 1]["status"] for i, d in enumerate(shown)]
    chart = "\n".join((figures("rto_seconds") + "  RTO", figures("rpo_seconds") + "  RPO"))
    rows = []
    for d, moved in reversed(list(zip(shown, changed, strict=True))):
        at = parse_iso_or_none(d["at"])
        rto, rpo = d["facts"].get("rto_seconds"), d["facts"].get("rpo_seconds")
        when = f"{at.astimezone():%b %d}" if at else "?"
        rows.append(
            f"{when:<6} {('◆' if moved else ' ')}{d['status']:<7} RTO {duration(rto):>11} RPO {duration(rpo):>11}"
        )
    return chart, "\n".join(rows)


def read_trends(config: Config, span: Span, now: datetime) -> tuple[dict[str, tuple[str, str, str]], str | None]:
    """(thread) Every section's title, chart and table from the history; and a problem line or None."""
    history = History.of(config)
    start = span.start(now)
    sections: dict[str, tuple[str, str, str]] = {}
    problem = None
    try:
        try:
            history.import_records(now=now)
        except HistoryError as e:
            problem = f"{e}; runs, drills and proofs since the last write are not shown"
        cache: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
        for s in series_of(config):
            per_instance = s.instance is not None
            found = cache.get((s.panel, s.fact, per_instance))
            if found is None:
                found = history.buckets(
                    s.panel, s.fact, start=start, step=span.step, count=span.count, per_instance=per_instance
                )
                cache[(s.panel, s.fact, per_instance)] = found
            sections[s.key] = (s.title, *readings_section(s, found, span, start))
        proofs = history.rows(panels=["proofs"], since=start)
        sections["proofs"] = ("Proof of the nightly copy (✓ passed, ✗ failed)", *proofs_section(proofs, span, start))
        drills = history.rows(panels=["drills"])
        sections["drills"] = (
            f"Restore drills: RTO and RPO of the last {DRILLS_SHOWN} on record, oldest → newest",
            *drills_section(drills),
        )
    except HistoryError as e:
        problem = str(e)
    finally:
        history.close()
    return sections, problem


# -- the screen ----------------------------------------------------------------------------------


class TrendSection(Vertical):
    """A title, then the chart and its table side by side."""

    def __init__(self, key: str) -> None:
        super().__init__(id=f"trend-{key}", classes="trend-section")

    def compose(self) -> ComposeResult:
        yield Line("", classes="trend-title")
        with Horizontal(classes="trend-body"):
            yield Static("", markup=False, classes="trend-chart")
            yield Static("", markup=False, classes="trend-table")

    def show(self, title: str, chart: str, table: str) -> None:
        self.query_one(".trend-title", Line).set(title)
        self.query_one(".trend-chart", Static).update(Text(chart))
        self.query_one(".trend-table", Static).update(Text(table))

    @property
    def text(self) -> str:
        """Everything the section shows, as plain text (for tests)."""
        parts = [self.query_one(".trend-title", Line).text]
        parts += [str(w.render()) for w in self.query(Static).filter(".trend-chart, .trend-table")]
        return "\n".join(parts)


class TrendsScreen(ConsoleScreen[None]):
    """The trends of the chain; ``t`` switches hours and days, Escape goes back."""

    SCOPES = ("view",)
    BINDINGS = bindings(*SCOPES)
    DEFAULT_CSS = """
    TrendsScreen .trend-note { height: 1; padding: 0 1; color: $text-muted; }
    TrendsScreen .trend-scroll { height: 1fr; scrollbar-size-vertical: 1; }
    TrendsScreen .trend-legend { padding: 0 1; color: $text-muted; }
    TrendsScreen .trend-section { height: auto; padding: 0 0 0 1; margin-bottom: 1; }
    TrendsScreen .trend-title { height: 1; text-style: bold; text-wrap: nowrap; text-overflow: ellipsis; }
    TrendsScreen .trend-body { height: auto; }
    TrendsScreen .trend-chart { width: 31; height: auto; }
    TrendsScreen .trend-table { width: 1fr; height: auto; }
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__(id="trends", classes="trends")
        self.clock = clock
        self.span = SPANS[0]

    def compose(self) -> ComposeResult:
        yield StatusHeader(classes="detail-header")
        yield Line("reading the history…", classes="trend-note")
        with VerticalScroll(classes="trend-scroll"):
            for key in self._section_keys():
                yield TrendSection(key)
            yield Line(LEGEND, classes="trend-legend")
        yield Footer()

    def _section_keys(self) -> list[str]:
        return [s.key for s in series_of(self.host.config)] + ["proofs", "drills"]

    def on_mount(self) -> None:
        self._read()
        self.query_one(VerticalScroll).focus()

    def _read(self) -> None:
        span, now, config = self.span, self.clock(), self.host.config
        self.query_one(StatusHeader).show("TRENDS", f"{span.title} · t: {self._other().name}")

        def read() -> None:
            self.post_message(TrendsRead(span.name, *read_trends(config, span, now)))

        self.host.run_thread(read, "read history")

    def _other(self) -> Span:
        return SPANS[(SPANS.index(self.span) + 1) % len(SPANS)]

    def switch_span(self) -> None:
        """Hours to days and back (the ``t`` key on this screen)."""
        self.span = self._other()
        self.query_one(".trend-note", Line).set(f"reading {self.span.title}…")
        self._read()

    def on_trends_read(self, message: TrendsRead) -> None:
        if message.span != self.span.name:
            return  # an older read, overtaken by a switch
        for key, (title, chart, table) in message.sections.items():
            for section in self.query(f"#trend-{key}").results(TrendSection):
                section.show(title, chart, table)
        note = f"from {self.host.config.state_dir}/history.sqlite3 at {self.clock().astimezone():%H:%M:%S}"
        if message.problem:
            note = f"WARNING: {message.problem}"
        self.query_one(".trend-note", Line).set(note)

    def action_back(self) -> None:
        self.dismiss()

"""Turn panel results into what the screens show: status words, ages and facts in human form.

Pure functions of (result, now, refresh period): the widgets compare what these return with
what they show and repaint only what changed, so every text here is deliberately coarse
(an age reads "just now" until it is 10 s old, then moves in 10 s steps, then in the core's
:mod:`montagu_console.humanfmt` units, as do sizes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import humanfmt
from ..clock import parse_iso_or_none
from ..config import Config
from ..snapshot import BarmanFacts, PanelResult, RestoreFacts, StarportFacts, Status, WalFacts

STALE = "STALE"
STALE_PERIODS = 3  # data older than this many refresh periods is STALE
TREND_DAYS = 30  # the backup-age trend covers this many days


@dataclass(frozen=True)
class PanelView:
    """Everything a panel shows, as plain text (never markup)."""

    word: str  # OK, WARNING, CRITICAL, UNKNOWN or STALE
    effective: Status  # the status this panel contributes to the overall one
    age: str
    summary: str
    lines: tuple[str, ...]
    more: tuple[str, ...] = ()  # extra facts for tall terminals, from the typed facts
    trend: tuple[float, ...] | None = None
    trend_label: str = ""
    trend_top: float = 1.0  # the value drawn as a full block (the WARNING threshold)


@dataclass(frozen=True)
class TrendData:
    """A panel's trend: values, what they are, and the reference drawn as a full block."""

    values: tuple[float, ...]
    label: str
    top: float


def panel_titles(config: Config) -> dict[str, str]:
    """Panel titles naming the host each panel is about."""
    return {
        "barman": f"barman · {config.barman.host}",
        "wal": f"WAL backlog · {config.barman.host}",
        "starport": f"starport · {config.starport.host}",
        "restore": f"science restore · {config.science.host}",
    }


def panel_hosts(config: Config) -> dict[str, str]:
    """The host each panel's probes talk to."""
    return {
        "barman": config.barman.host,
        "wal": config.barman.host,
        "starport": config.starport.host,
        "restore": config.science.host,
    }


# -- small formatters ------------------------------------------------------------------------


def fmt_age(seconds: float | None, *, short: bool = False) -> str:
    """A coarse age: "just now", "20 s", "1 minute", then the core's units ("12 minutes", "30 hours",
    "36 days"), abbreviated ("12 min", "30 h") when ``short``."""
    if seconds is None:
        return "unknown"
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{int(seconds) // 10 * 10} s"
    text = "1 minute" if seconds < 120 else humanfmt.age(seconds)
    if short:
        for long, abbreviated in ((" minutes", " min"), (" minute", " min"), (" hours", " h"), (" hour", " h")):
            text = text.replace(long, abbreviated)
    return text


def fmt_ago(seconds: float | None) -> str:
    """``fmt_age`` as a point in the past: "just now", "20 s ago", "3 days ago"."""
    age = fmt_age(seconds)
    return age if age in ("just now", "unknown") else f"{age} ago"


def fmt_period(seconds: float) -> str:
    """A refresh period: "10 s", "1.5 s", "2 min"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def fmt_time(dt: datetime | None, *, date: bool = False) -> str:
    """A timestamp in the local zone: "07:09:05", or "2026-11-24 07:09" with ``date``."""
    if dt is None:
        return "—"
    return dt.astimezone().strftime("%Y-%m-%d %H:%M" if date else "%H:%M:%S")


def parse_time(value: Any) -> datetime | None:
    """An aware ISO 8601 string (as in ``check --json`` facts, see :func:`montagu_console.clock.parse_iso`)
    or an aware datetime; None otherwise (a stamp without a zone has no age)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    return parse_iso_or_none(value) if isinstance(value, str) else None


def since(value: Any, now: datetime) -> float | None:
    """Seconds from an ISO time (or datetime) to ``now``; None when unknown."""
    when = parse_time(value)
    return None if when is None else (now - when).total_seconds()


def bar(percent: float, width: int = 10) -> str:
    """A text progress bar that reads without colour: "█████░░░░░"."""
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def yes_no(value: bool | None, yes: str, no: str) -> str:
    """``yes``/``no`` for a tri-state fact; "unknown" for None."""
    return "unknown" if value is None else (yes if value else no)


# -- panel views -----------------------------------------------------------------------------


def panel_view(
    name: str,
    result: PanelResult | None,
    last_good: PanelResult | None,
    *,
    now: datetime,
    period: float,
    host: str,
    polling_for: float | None,
    trend: TrendData | None = None,
) -> PanelView:
    """What panel ``name`` shows now.

    ``last_good`` is the newest result with facts: when the newest result is a failure its facts
    are still shown, labelled with their time. ``polling_for`` is how long the poll in flight has
    been running (None when idle); ``trend`` the sparkline data, if this panel has one.
    """
    slow = polling_for is not None and polling_for > period
    polling = f" · polling {fmt_age(polling_for, short=True)}" if slow else ""
    if result is None:
        return PanelView(
            "UNKNOWN", Status.UNKNOWN, "no data yet" + polling, f"waiting for the first answer from {host}", ()
        )
    age_s = (now - result.taken_at).total_seconds()
    age = f"data {fmt_age(age_s, short=True)} old" if age_s >= 10 else "data just now"
    if age_s > STALE_PERIODS * period:
        word, effective = STALE, Status.worst([result.status, Status.UNKNOWN])
        summary = (
            f"no fresh answer from {host} for {fmt_age(age_s)}; it last said {result.status.value}: {result.summary}"
        )
    else:
        word, effective, summary = result.status.value, result.status, result.summary
    shown = facts_source(result, last_good)
    lines: tuple[str, ...] = ()
    more: tuple[str, ...] = ()
    if shown is not None and shown.facts:
        lines = tuple(_LINES[name](shown.facts, now))
        if shown is not result:
            lines = (f"last known, from {fmt_time(shown.taken_at)}:",) + lines
    if shown is not None and shown.detail is not None:
        more = tuple(_MORE[name](shown.detail, now))
    if trend is None or not trend.values:
        return PanelView(word, effective, age + polling, summary, lines, more)
    return PanelView(word, effective, age + polling, summary, lines, more, trend.values, trend.label, trend.top)


def facts_source(result: PanelResult | None, last_good: PanelResult | None) -> PanelResult | None:
    """The result whose facts to show: the newest, or the last good one when the newest failed."""
    return result if result is not None and result.detail is not None else last_good


def overall(views: dict[str, PanelView]) -> Status:
    """The worst effective status of all panels (UNKNOWN when there are none)."""
    return Status.worst(v.effective for v in views.values())


def _barman_lines(f: dict[str, Any], now: datetime) -> list[str]:
    if f.get("last_backup_id"):
        age = since(f.get("last_backup_end"), now)
        last = f"last backup {fmt_ago(f.get('last_backup_age_seconds') if age is None else age)}"
    else:
        last = "no backups available"
    n = f.get("backups_available", 0)
    count = f"{n} backup{'' if n == 1 else 's'} · data {humanfmt.size(f.get('data_size_bytes'))}"
    if f.get("backup_running"):
        count += " · backup RUNNING"
    failed = f.get("failed_checks") or []
    checks = f"FAILED checks: {', '.join(failed)}" if failed else "barman check: all OK"
    return [last, count, checks]


def _wal_lines(f: dict[str, Any], now: datetime) -> list[str]:
    receive = yes_no(f.get("receive_wal_running"), "running", "STOPPED")
    slot = yes_no(f.get("slot_active"), "active", "INACTIVE")
    archived = (
        f"last WAL archived {fmt_ago(f.get('last_archived_age_seconds'))}"
        if f.get("last_archived_wal")
        else "no WAL archived yet"
    )
    return [f"receive-wal {receive} · slot {slot}", f"lag {humanfmt.size(f.get('lag_bytes'))}", archived]


def _starport_lines(f: dict[str, Any], now: datetime) -> list[str]:
    nightly = since(f.get("nightly_restored_at"), now)
    lines = [f"nightly copy restored {fmt_ago(nightly)}" if nightly is not None else "nightly copy: never restored"]
    for t in f.get("targets") or []:
        age = since(t.get("last_backup"), now)
        if age is None:
            age = t.get("age_seconds")
        lines.append(f"{t.get('name')}: {fmt_ago(age)}" if age is not None else f"{t.get('name')}: never copied")
    return lines


def _restore_lines(f: dict[str, Any], now: datetime) -> list[str]:
    phase = f.get("phase") or "unknown"
    line = f"phase {phase}"
    if phase not in ("idle", "ready", "failed"):  # a restore under way
        if f.get("percent") is not None:
            line = f"{phase} {f['percent']:.0f}% {bar(f['percent'])}"
        if f.get("eta_seconds") is not None:
            line += f" ETA {fmt_age(f['eta_seconds'])}"
    data = since(f.get("data_restored_from"), now)
    last = since(f.get("last_restore_at"), now)
    return [
        line,
        f"database {yes_no(f.get('db_accepting'), 'accepting connections', 'NOT accepting connections')}",
        f"science data from {fmt_ago(data)}" if data is not None else "science data: age unknown",
        f"last restore {fmt_ago(last)}" if last is not None else "last restore: unknown",
        last_drill_line(f.get("last_drill")),
    ]


def last_drill_line(drill: dict | None) -> str:
    """The restore panel's drill line: "last drill passed 3 days ago (RTO 45 s)" or "no drill on record"."""
    if not drill:
        return "no drill on record"
    line = f"last drill {drill.get('outcome', '?')} {fmt_ago(drill.get('age_seconds'))}"
    rto = drill.get("rto_seconds")
    if rto is not None:
        line += f" (RTO {rto:.0f} s)" if rto < 60 else f" (RTO {rto / 60:.1f} min)"
    return line


_LINES: dict[str, Callable[[dict[str, Any], datetime], list[str]]] = {
    "barman": _barman_lines,
    "wal": _wal_lines,
    "starport": _starport_lines,
    "restore": _restore_lines,
}

MORE_BACKUPS = 5  # backups listed in the barman panel on tall terminals
MORE_LOG_LINES = 4  # postgres log lines in the restore panel on tall terminals


def _barman_more(d: BarmanFacts, now: datetime) -> list[str]:
    container = (
        "" if d.container_running is None else f" · container {'running' if d.container_running else 'NOT RUNNING'}"
    )
    lines = [
        f"PostgreSQL {d.pg_version or '?'} {'reachable' if d.pg_reachable else 'UNREACHABLE'} · "
        f"barman {d.barman_version}{container}",
        "",
        "recent backups:",
    ]
    for b in d.backups[:MORE_BACKUPS]:
        ended = fmt_time(b.end_time, date=True) if b.end_time else "—"
        lines.append(f"  {b.backup_id}  {ended:<16}  {humanfmt.size(b.size_bytes):>9}  {b.status}")
    return lines


def _wal_more(d: WalFacts, now: datetime) -> list[str]:
    return [
        f"last WAL {d.last_archived_wal or '—'} at {fmt_time(d.last_archived_at)}",
        f"slot {d.slot_name} · streaming state {d.streaming_state or 'unknown'}",
        f"primary at {d.server_lsn or '?'} · barman flushed to {d.flush_lsn or '?'}",
    ]


def _starport_more(d: StarportFacts, now: datetime) -> list[str]:
    lines = [f"nightly copy problem: {d.nightly_error}"] if d.nightly_error else []
    for t in d.targets:
        carried = fmt_time(t.carried_restore_at, date=True) if t.carried_restore_at else "unknown"
        lines.append(f"{t.name}: last backup {fmt_time(t.last_backup, date=True)}")
        lines.append(f"  carries the nightly copy restored {carried}")
        if t.error:
            lines.append(f"  problem: {t.error}")
    return lines


def _restore_more(d: RestoreFacts, now: datetime) -> list[str]:
    lines = [f"container {d.container}: {d.container_status or 'NO SUCH CONTAINER'}"]
    if d.redo_lsn or d.target_lsn:
        lines.append(f"redo at {d.redo_lsn or '?'} of target {d.target_lsn or '?'}")
    if d.log_tail:
        lines += ["", "postgres log:"] + [f"  {line}" for line in d.log_tail[-MORE_LOG_LINES:]]
    return lines


_MORE: dict[str, Callable[[Any, datetime], list[str]]] = {
    "barman": _barman_more,
    "wal": _wal_more,
    "starport": _starport_more,
    "restore": _restore_more,
}


def lag_trend(history: tuple[float, ...], config: Config) -> TrendData:
    """WAL lag per poll, drawn against the lag WARNING threshold (a full block)."""
    warn = config.wal.lag_warning_bytes
    return TrendData(history, "lag", float(warn))


def backup_age_trend(facts: BarmanFacts, now: datetime, config: Config, days: int = TREND_DAYS) -> TrendData:
    """Age in whole days of the newest finished backup at each midnight (UTC) of the last ``days``,
    drawn against the backup-age WARNING threshold (a full block).

    Derived from the backup list, so it is there from the first poll and changes once a day.
    """
    ends = sorted(b.end_time for b in facts.available_backups if b.end_time is not None)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    points = []
    for back in range(days - 1, -1, -1):
        at = midnight - timedelta(days=back)
        done = [e for e in ends if e <= at]
        if done:  # days before the first backup have no age
            points.append(float((at - done[-1]).days))
    warn = config.barman.backup_warning_days
    return TrendData(tuple(points), "backup age", float(warn))

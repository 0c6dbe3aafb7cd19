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
from ..snapshot import BarmanFacts, InstanceResult, PanelResult, RestoreFacts, StarportFacts, Status, WalFacts

STALE = "STALE"
STALE_PERIODS = 3  # data older than this many refresh periods is STALE
TREND_DAYS = 30  # the backup-age trend covers this many days


@dataclass(frozen=True)
class InstanceRow:
    """One barman instance's row in the barman or WAL panel: its name, status word and what matters."""

    name: str
    word: str  # the instance's own status: OK, WARNING, CRITICAL or UNKNOWN
    text: str  # OK: last backup / lag; otherwise its own summary (the reason)


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
    rows: tuple[InstanceRow, ...] = ()  # one per barman instance when there are several (barman, WAL)


@dataclass(frozen=True)
class TrendData:
    """A panel's trend: values, what they are, and the reference drawn as a full block."""

    values: tuple[float, ...]
    label: str
    top: float


def barman_hosts(config: Config) -> str:
    """The hosts of every barman instance: "annex", or "annex, aws"."""
    return ", ".join(dict.fromkeys(b.host for b in config.barmans))


def panel_titles(config: Config) -> dict[str, str]:
    """Panel titles naming the host (or hosts) each panel is about."""
    return {
        "barman": f"barman · {barman_hosts(config)}",
        "wal": f"WAL backlog · {barman_hosts(config)}",
        "starport": f"starport · {config.starport.host}",
        "restore": f"science restore · {config.science.host}",
    }


def panel_hosts(config: Config) -> dict[str, str]:
    """The host (or hosts) each panel's probes talk to."""
    return {
        "barman": barman_hosts(config),
        "wal": barman_hosts(config),
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


def fmt_eta(seconds: float | None) -> str:
    """An ETA, coarse like every age: "ETA 2 h", "ETA 15 min", "ETA under 10 s"; "" when unknown."""
    if seconds is None:
        return ""
    return "ETA under 10 s" if seconds < 10 else f"ETA {fmt_age(seconds, short=True)}"


def progress_lines(progress: dict[str, Any]) -> list[str]:
    """A base backup under way, most important first: "backup 42% ███░░░ ETA 2 h" and
    "  1.2 GiB of 2.9 GiB" (of "about" the last backup's size when measured on its directory)."""
    percent = progress.get("percent")
    head = f"backup {percent:.0f}% {bar(percent, 6)}" if percent is not None else "backup running"
    eta = fmt_eta(progress.get("eta_seconds"))
    if eta:
        head += f" {eta}"
    done, total = progress.get("bytes_done"), progress.get("bytes_total")
    about = "" if progress.get("source") == "primary" else "about "
    amount = f"{humanfmt.size(done)} of {about}{humanfmt.size(total)}" if total else f"{humanfmt.size(done)} so far"
    return [head, f"  {amount}"]


def progress_line(progress: dict[str, Any]) -> str:
    """:func:`progress_lines` in one line, for wide places."""
    head, amount = progress_lines(progress)
    return f"{head} · {amount.strip()}"


def progress_source(progress: dict[str, Any], *, short: bool = False) -> str:
    """Where a backup's progress figures come from, in words."""
    if progress.get("source") == "primary":
        return "from the primary" if short else "from pg_stat_progress_basebackup on the primary"
    return "from its directory" if short else "from the growing backup directory, against the last backup's size"


def _instance_title(instance: InstanceResult) -> str:
    """ "annex", or "aws on montagu-aws" when the host has another name."""
    return instance.name if instance.name == instance.host else f"{instance.name} on {instance.host}"


def slot_lines(slots: list[dict[str, Any]] | None) -> list[str]:
    """The primary's replication slots in a panel: each inactive one named (a word, not a colour),
    then the active ones; nothing when ``primary`` is not configured (``slots`` is None)."""
    if slots is None:
        return []
    if not slots:
        return ["no replication slots on the primary"]
    lines = [f"INACTIVE slot {s.get('name')}: {_held(s)}" for s in slots if not s.get("active")]
    active = [str(s.get("name")) for s in slots if s.get("active")]
    if active:
        lines.append(f"slot{'s' if len(active) > 1 else ''} active: {', '.join(active)}")
    return lines


def _held(slot: dict[str, Any]) -> str:
    held = slot.get("retained_bytes")
    return "no WAL" if not held else humanfmt.size(held)


def slot_rows(slots: list[dict[str, Any]] | None) -> list[tuple[str, str, str]]:
    """(name, "active" | "INACTIVE", WAL retained) of every slot on the primary, inactive first."""
    ordered = sorted(slots or [], key=lambda s: bool(s.get("active")))
    return [(str(s.get("name")), "active" if s.get("active") else "INACTIVE", _held(s)) for s in ordered]


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
    rows: tuple[InstanceRow, ...] = ()
    lines: tuple[str, ...] = ()
    more: tuple[str, ...] = ()
    if len(result.instances) > 1:
        # each instance carries its own status and facts: a dead one is its own UNKNOWN row, the
        # others show what they see now (no fallback to an older result)
        rows = tuple(instance_row(name, i, now) for i in result.instances)
        lines = tuple(_ESTATE_LINES[name](result, now))
        more = tuple(_ESTATE_MORE[name](result, now))
    else:
        shown = facts_source(result, last_good)
        if shown is not None and shown.facts:
            lines = tuple(_LINES[name](shown.facts, now))
            if shown is not result:
                lines = (f"last known, from {fmt_time(shown.taken_at)}:",) + lines
        if shown is not None and shown.detail is not None:
            more = tuple(_MORE[name](shown.detail, now))
            if name == "wal" and shown.facts.get("slots") is not None:
                more += ("", "slots on the primary:", *_slot_table(shown.facts["slots"]))
    if trend is None or not trend.values:
        return PanelView(word, effective, age + polling, summary, lines, more, rows=rows)
    return PanelView(
        word, effective, age + polling, summary, lines, more, trend.values, trend.label, trend.top, rows=rows
    )


def facts_source(result: PanelResult | None, last_good: PanelResult | None) -> PanelResult | None:
    """The result whose facts to show: the newest, or the last good one when the newest failed."""
    return result if result is not None and result.detail is not None else last_good


def overall(views: dict[str, PanelView]) -> Status:
    """The worst effective status of all panels (UNKNOWN when there are none)."""
    return Status.worst(v.effective for v in views.values())


def _last_backup_age(f: dict[str, Any], now: datetime) -> float | None:
    age = since(f.get("last_backup_end"), now)
    return f.get("last_backup_age_seconds") if age is None else age


def _barman_lines(f: dict[str, Any], now: datetime) -> list[str]:
    last = f"last backup {fmt_ago(_last_backup_age(f, now))}" if f.get("last_backup_id") else "no backups available"
    n = f.get("backups_available", 0)
    count = f"{n} backup{'' if n == 1 else 's'} · data {humanfmt.size(f.get('data_size_bytes'))}"
    progress = f.get("backup_progress")
    if f.get("backup_running") and not progress:
        count += " · backup RUNNING"
    failed = f.get("failed_checks") or []
    checks = f"FAILED checks: {', '.join(failed)}" if failed else "barman check: all OK"
    lines = [last, *progress_lines(progress), count, checks] if progress else [last, count, checks]
    if f.get("retention_policy"):
        lines.append(f"retains {f['retention_policy']}")
    return lines


def _wal_lines(f: dict[str, Any], now: datetime) -> list[str]:
    receive = yes_no(f.get("receive_wal_running"), "running", "STOPPED")
    slot = yes_no(f.get("slot_active"), "active", "INACTIVE")
    archived = (
        f"last WAL archived {fmt_ago(f.get('last_archived_age_seconds'))}"
        if f.get("last_archived_wal")
        else "no WAL archived yet"
    )
    lines = [f"receive-wal {receive} · slot {slot}", f"lag {humanfmt.size(f.get('lag_bytes'))}", archived]
    return lines + slot_lines(f.get("slots"))


# -- several barman instances ------------------------------------------------------------------


def instance_row(panel: str, instance: InstanceResult, now: datetime) -> InstanceRow:
    """An instance's row: an OK one says its last backup (barman) or its lag and receive-wal (WAL),
    any other its own summary, which names what is wrong (for a probe that failed: why)."""
    r = instance.result
    if r.status is not Status.OK or not r.facts:
        return InstanceRow(instance.name, r.status.value, r.summary)
    f = r.facts
    if panel == "barman":
        n = f.get("backups_available", 0)
        text = f"last {fmt_ago(_last_backup_age(f, now))} · {n} backup{'' if n == 1 else 's'}"
        if f.get("backup_progress") or f.get("backup_running"):
            text += " · backup RUNNING"
    else:
        archived = f.get("last_archived_age_seconds")
        ago = "" if fmt_age(archived) in ("just now", "unknown") else " ago"
        receiving = yes_no(f.get("receive_wal_running"), "running", "STOPPED")
        text = (
            f"lag {humanfmt.size(f.get('lag_bytes'))} · receive-wal {receiving} · "
            f"WAL {fmt_age(archived, short=True)}{ago}"
        )
    return InstanceRow(instance.name, r.status.value, text)


def _estate_barman_lines(result: PanelResult, now: datetime) -> list[str]:
    """Below the rows: each running backup's progress, then the retention policy (once when every
    instance has the same)."""
    lines: list[str] = []
    for i in result.instances:
        if i.result.facts.get("backup_progress"):
            head, amount = progress_lines(i.result.facts["backup_progress"])
            lines += [f"{i.name}: {head}", amount]
    policies = {i.name: i.result.facts.get("retention_policy") for i in result.instances}
    known = {n: p for n, p in policies.items() if p}
    if known and len(set(policies.values())) == 1:
        lines.append(f"retains {next(iter(known.values()))}")
    else:
        lines += [f"{n} retains {p}" for n, p in known.items()]
    return lines


def _estate_wal_lines(result: PanelResult, now: datetime) -> list[str]:
    return slot_lines(result.facts.get("slots"))


def _estate_barman_more(result: PanelResult, now: datetime) -> list[str]:
    lines: list[str] = []
    per_instance = max(1, MORE_BACKUPS // len(result.instances))
    for i in result.instances:
        d = i.result.detail
        lines.append("")
        if not isinstance(d, BarmanFacts):
            lines.append(f"{_instance_title(i)}: {i.result.summary}")
            continue
        lines.append(f"{_instance_title(i)} · {_barman_versions(d)}")
        if d.backup_progress is not None:
            lines.append(f"  {_progress_more(d)}")
        lines += _backup_lines(d, per_instance)
    return lines[1:]


def _estate_wal_more(result: PanelResult, now: datetime) -> list[str]:
    """Every slot on the primary first (a forgotten one fills its disk), then each instance's stream."""
    lines: list[str] = []
    slots = result.facts.get("slots")
    if slots is not None:
        lines += ["", "slots on the primary:", *_slot_table(slots)]
    for i in result.instances:
        d = i.result.detail
        lines.append("")
        if not isinstance(d, WalFacts):
            lines.append(f"{_instance_title(i)}: {i.result.summary}")
            continue
        lines.append(f"{_instance_title(i)} · slot {d.slot_name} · streaming state {d.streaming_state or 'unknown'}")
        lines.append(f"  last WAL {d.last_archived_wal or '—'} at {fmt_time(d.last_archived_at)}")
        lines.append(f"  primary at {d.server_lsn or '?'} · barman flushed to {d.flush_lsn or '?'}")
    return lines[1:]


def _slot_table(slots: list[dict[str, Any]]) -> list[str]:
    rows = slot_rows(slots)
    width = max((len(name) for name, _, _ in rows), default=0)
    return [f"  {name:<{width}}  {state:<8}  {held:>9}" for name, state, held in rows] or ["  none"]


def _starport_lines(f: dict[str, Any], now: datetime) -> list[str]:
    nightly = since(f.get("nightly_restored_at"), now)
    lines = [f"nightly copy restored {fmt_ago(nightly)}" if nightly is not None else "nightly copy: never restored"]
    for t in f.get("targets") or []:
        age = since(t.get("last_backup"), now)
        if age is None:
            age = t.get("age_seconds")
        lines.append(f"{t.get('name')}: {fmt_ago(age)}" if age is not None else f"{t.get('name')}: never copied")
    return [*lines, *proof_lines(f, now)]


def proof_lines(f: dict[str, Any], now: datetime) -> list[str]:
    """The starport panel's proof: "proven restorable 3 hours ago" and "newest data 2026-11-25
    02:59", "proof FAILED 2 min ago: <check>", or "not proven (run prove-nightly)"."""
    outcome, proven = f.get("proof_outcome"), since(f.get("proven_at"), now)
    if outcome == "passed":
        newest = parse_time(f.get("proven_data_newest"))
        data = [f"newest data {fmt_time(newest, date=True)}"] if newest is not None else []
        return [f"proven restorable {fmt_ago(proven)}", *data]
    if outcome == "failed":
        failing = ", ".join(str(n) for n in f.get("proof_failing") or []) or "see the run log"
        return [f"proof FAILED {fmt_ago(proven)}: {failing}"]
    return ["not proven (run prove-nightly)"]


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
    copy_proven = f.get("science_copy_proven")
    proven = "" if copy_proven is None else " (a proven copy)" if copy_proven else " (copy NOT proven)"
    return [
        line,
        f"database {yes_no(f.get('db_accepting'), 'accepting connections', 'NOT accepting connections')}",
        (f"science data from {fmt_ago(data)}" if data is not None else "science data: age unknown") + proven,
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


def _barman_versions(d: BarmanFacts) -> str:
    container = (
        "" if d.container_running is None else f" · container {'running' if d.container_running else 'NOT RUNNING'}"
    )
    return (
        f"PostgreSQL {d.pg_version or '?'} {'reachable' if d.pg_reachable else 'UNREACHABLE'} · "
        f"barman {d.barman_version}{container}"
    )


def _progress_more(d: BarmanFacts) -> str:
    p = d.backup_progress
    assert p is not None
    fact = p.as_fact()
    return f"{progress_line(fact)} ({p.backup_id or 'id not known yet'}, {progress_source(fact, short=True)})"


def _backup_lines(d: BarmanFacts, count: int) -> list[str]:
    lines = []
    for b in d.backups[:count]:
        ended = fmt_time(b.end_time, date=True) if b.end_time else "—"
        kept = f" {b.retention_status}" if b.retention_status else ""
        lines.append(f"  {b.backup_id}  {ended:<16}  {humanfmt.size(b.size_bytes):>9}  {b.status}{kept}")
    return lines


def _barman_more(d: BarmanFacts, now: datetime) -> list[str]:
    lines = [_barman_versions(d)]
    if d.backup_progress is not None:
        lines.append(_progress_more(d))
    return [*lines, "", "recent backups:", *_backup_lines(d, MORE_BACKUPS)]


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
    if room := room_text(d):
        lines.append(f"room under the copy: {room}")
    return lines


def room_text(d: StarportFacts) -> str | None:
    """The room under the nightly copy in words: "12.0 GiB free beside the copy of 3.1 GiB"
    (a leftover dump named), why it is unknown, or None when it was not read."""
    if (room := d.space) is not None:
        dump = f" (+{humanfmt.size(room.dump_bytes)} in an old dump)" if room.dump_bytes else ""
        free, copy = humanfmt.size(room.free_bytes), humanfmt.size(room.copy_bytes)
        return f"{free} free{dump} beside the copy of {copy}"
    return f"unknown: {d.space_error}" if d.space_error else None


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
_ESTATE_LINES: dict[str, Callable[[PanelResult, datetime], list[str]]] = {
    "barman": _estate_barman_lines,
    "wal": _estate_wal_lines,
}
_ESTATE_MORE: dict[str, Callable[[PanelResult, datetime], list[str]]] = {
    "barman": _estate_barman_more,
    "wal": _estate_wal_more,
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

"""The one time module: the current UTC time, one ISO 8601 parser, ages and one duration format.

Every timestamp the console writes or reads goes through here, so the CLI, the TUI, the health
rules and the reports agree on what "now" is, how a stamp is read and how a duration reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# a timestamp further ahead than this is not "fresh": it is a clock problem worth a WARNING
FUTURE_TOLERANCE_SECONDS = 300

_FRACTION = re.compile(r"(\.\d{6})\d+")


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds (what run.json and reports keep)."""
    return utc_now().isoformat(timespec="milliseconds")


def rfc3339_ns(moment: datetime, nanosecond: int | None = None) -> str:
    """``moment`` as ``date --rfc-3339=ns`` writes it, the form of ``.barman-last-restore``:
    ``2026-11-25 05:01:02.123456789+00:00`` (naive means UTC; ``nanosecond`` replaces the
    microseconds when given)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ns = moment.microsecond * 1000 if nanosecond is None else nanosecond
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ns:09d}{offset[:3]}:{offset[3:5]}"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a time zone; raise ValueError otherwise.

    Accepts ``date --rfc-3339=ns`` (``2020-03-02 01:25:03.123456789+00:00``), a trailing ``Z``
    and Python's isoformat. A stamp without a zone is refused: its age would be a guess.
    """
    t = _FRACTION.sub(r"\1", text.strip())
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    value = datetime.fromisoformat(t)
    if value.tzinfo is None:
        raise ValueError(f"no time zone in {text.strip()[:64]!r}")
    return value


def parse_iso_or_none(text: str | None) -> datetime | None:
    """:func:`parse_iso`, or None for a missing or unreadable stamp."""
    if not text:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        return None


def age_seconds(now: datetime, then: datetime | None) -> int | None:
    """Whole seconds from ``then`` to ``now`` (negative when ``then`` is in the future); None if unknown."""
    return None if then is None else int((now - then).total_seconds())


def in_future(seconds_ago: int | None) -> bool:
    """Whether an age says the stamp lies more than the tolerance ahead of this clock."""
    return seconds_ago is not None and seconds_ago < -FUTURE_TOLERANCE_SECONDS


def seconds_between(earlier: str | None, later: str | None) -> float | None:
    """Seconds from one ISO stamp to another (one decimal); None when either is missing or unreadable."""
    a, b = parse_iso_or_none(earlier), parse_iso_or_none(later)
    if a is None or b is None:
        return None
    return round((b - a).total_seconds(), 1)


def duration(seconds: float | None) -> str:
    """A duration for people, the same in the CLI, the TUI and reports: ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds is None:
        return "unknown"
    s = round(seconds)
    sign, s = ("-", -s) if s < 0 else ("", s)
    if s < 60:
        return f"{sign}{s} s"
    if s < 3600:
        return f"{sign}{s // 60} min {s % 60:02d} s"
    if s < 172800:
        return f"{sign}{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{sign}{s // 86400} d {s % 86400 // 3600:02d} h"

"""Human forms of sizes and durations (humanize), shared by summaries and views."""

from __future__ import annotations

import humanize


def size(n: int | float | None) -> str:
    """Bytes as "182.7 MiB"; "unknown" for None."""
    return "unknown" if n is None else humanize.naturalsize(n, binary=True)


def age(seconds: int | float | None) -> str:
    """Seconds in the unit the thresholds use: "45 seconds", "12 minutes", "30 hours", "36 days".

    Hours up to two days and days beyond, so "30 hours" can be read against "warn at 26 h".
    """
    if seconds is None:
        return "unknown"
    s = max(0, int(seconds))
    for limit, unit, size_ in ((120, "second", 1), (7200, "minute", 60), (172800, "hour", 3600)):
        if s < limit:
            n = s // size_
            return f"{n} {unit}{'' if n == 1 else 's'}"
    n = s // 86400
    return f"{n} days"

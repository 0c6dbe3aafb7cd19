"""Human forms of sizes and durations (humanize), shared by summaries and views."""

from __future__ import annotations

import humanize


def size(n: int | float | None) -> str:
    """Bytes as "182.7 MiB"; "unknown" for None."""
    return "unknown" if n is None else humanize.naturalsize(n, binary=True)


def age(seconds: int | float | None) -> str:
    """Seconds as "3 days" / "5 minutes"; "unknown" for None."""
    if seconds is None:
        return "unknown"
    return humanize.naturaldelta(max(0, seconds), months=False)

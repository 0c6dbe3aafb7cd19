"""Timestamps written by the chain's tools: ``date --rfc-3339=ns`` and bb8's isoformat."""

from __future__ import annotations

import re
from datetime import datetime

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(text: str) -> datetime:
    """Parse ``2020-03-02 01:25:03.123456789+00:00`` or ``2026-11-25T05:01:02+00:00``.

    Raises ValueError for anything else, including a timestamp without a time zone.
    """
    t = text.strip()
    t = _FRACTION.sub(r"\1", t)  # nanoseconds -> microseconds
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    value = datetime.fromisoformat(t)
    if value.tzinfo is None:
        raise ValueError(f"no time zone in {text.strip()!r}")
    return value

"""science.verify and science.rpo_sql against a database in a container: drills, proofs, PITR.

Each query runs as ``psql -XAtqc SQL`` inside the container (an argv list through the Docker
SDK's ``exec_run``; the container's environment, e.g. the replay's PGHOST and PGPORT, applies),
its output cleaned and bounded by :mod:`montagu_console.text`, and judged by :func:`evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..clock import parse_iso
from ..config import Config, parse_expect
from ..text import clean, one_line

MAX_VALUE_CHARS = 4000  # a verification value or an RPO timestamp, as read from the database


class NoTimestamp(ValueError):
    """science.rpo_sql answered with no timestamp; the message quotes what it gave."""


def evaluate(expect: str, value: str | None) -> bool:
    """Whether a verification value meets ``expect`` ("not null" or a numeric comparison)."""
    parsed = parse_expect(expect)
    if parsed is None or value is None or value == "":
        return False
    op, number = parsed
    if op == "not null":
        return True
    if number is None:
        return False
    try:
        v = float(value)
    except ValueError:
        return False
    return {
        ">": v > number,
        ">=": v >= number,
        "==": v == number,
        "!=": v != number,
        "<": v < number,
        "<=": v <= number,
    }[op]


def psql(config: Config, container: Any, sql: str) -> tuple[int, str]:
    """Run ``sql`` with psql in ``container`` as science's user and database: (exit code, clean text)."""
    s = config.science
    rc, out = container.exec_run(["psql", "-U", s.db_user, "-d", s.db_name, "-XAtqc", sql])
    return rc, clean(out or b"", limit=MAX_VALUE_CHARS).strip()


def run_verify(config: Config, container: Any, write: Callable[[str], None]) -> list[dict]:
    """Every science.verify query against ``container``: ``{name, sql, expect, value, passed}``
    each (an error's first line as its value), one log line per query through ``write``."""
    results = []
    for q in config.science.verify:
        rc, text = psql(config, container, q.sql)
        value = text if rc == 0 else None
        passed = evaluate(q.expect, value)
        results.append(
            {
                "name": q.name,
                "sql": q.sql,
                "expect": q.expect,
                "value": value if rc == 0 else f"error: {one_line(text, limit=200)}",
                "passed": passed,
            }
        )
        write(f"verify: {q.name}: {value!r} (expect {q.expect}): {'PASS' if passed else 'FAIL'}\n")
    if not config.science.verify:
        write("verify: no science.verify queries are configured\n")
    return results


def failed(results: list[dict]) -> list[str]:
    """The names of the queries that did not pass."""
    return [r["name"] for r in results if not r.get("passed")]


def newest_data(config: Config, container: Any) -> datetime | None:
    """science.rpo_sql's answer in ``container`` (the newest committed timestamp), None when it
    is not configured; :class:`NoTimestamp` when it gives no timestamp."""
    sql = config.science.rpo_sql
    if not sql:
        return None
    rc, text = psql(config, container, sql)
    try:
        if rc == 0 and text:
            return parse_pg_time(text)
    except ValueError:
        pass
    raise NoTimestamp(f"science.rpo_sql gave no timestamp: {one_line(text, limit=200) or 'empty result'}")


def parse_pg_time(text: str) -> datetime:
    """PostgreSQL's timestamp text (``2026-11-25 05:01:02.123+00``) as an aware datetime; a
    timestamp without time zone is taken as UTC. ValueError when it is not a timestamp."""
    first = (text.strip().splitlines() or [""])[0].strip()
    try:
        return parse_iso(first)
    except ValueError:
        value = datetime.fromisoformat(first)  # ValueError again when it is no timestamp at all
        if value.tzinfo is not None:
            raise
        return value.replace(tzinfo=UTC)

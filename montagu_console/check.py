"""``montagu-console check``: one headless refresh rendered as text, JSON, Nagios or Prometheus.

Host text reaching a summary was cleaned where it entered (transports, probes); the renderers
still pass every string through :mod:`montagu_console.text` once more, because their output
is read by machines that trust its shape: a Nagios status line and each panel line are one
line each (a newline in a summary cannot forge a second ``MONTAGU OK``), perfdata labels are
``[A-Za-z0-9_]`` and values finite numbers, and JSON carries only clean strings.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from .snapshot import Snapshot, Status
from .text import clean_data, one_line

NAGIOS_LABEL = "MONTAGU"
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def to_json(snap: Snapshot) -> dict:
    """The stable ``check --json`` document (spec 2.1)."""
    return {
        "status": snap.status.value,
        "checked_at": snap.checked_at.isoformat(timespec="seconds"),
        "panels": {
            name: {"status": p.status.value, "summary": one_line(p.summary), "facts": clean_data(p.facts)}
            for name, p in snap.panels.items()
        },
    }


def to_text(snap: Snapshot) -> str:
    """The human ``check`` output: the overall status, then one line per panel."""
    lines = [f"{snap.status.value}  (checked {snap.checked_at:%Y-%m-%d %H:%M:%S %Z})"]
    lines += [
        f"  {one_line(p.name, limit=40):<9} {p.status.value:<9} {one_line(p.summary)}" for p in snap.panels.values()
    ]
    return "\n".join(lines)


def to_nagios(snap: Snapshot) -> str:
    """``MONTAGU <STATUS> - <summary> | <perfdata>`` then one detail line per panel."""
    bad = [p for p in snap.panels.values() if p.status is not Status.OK]
    if bad:
        worst_first = sorted(bad, key=lambda p: -p.status.rank)
        summary = "; ".join(f"{p.name} {p.status.value}: {p.summary}" for p in worst_first)
    else:
        summary = "backup chain healthy: " + ", ".join(snap.panels)
    perf = " ".join(_perfdata(snap))
    lines = [f"{NAGIOS_LABEL} {snap.status.value} - {_nagios_text(summary, 4000)} | {perf}".rstrip(" |")]
    lines += [
        f"{_nagios_text(p.name, 40)}: {p.status.value} - {_nagios_text(p.summary, 1000)}" for p in snap.panels.values()
    ]
    return "\n".join(lines)


def _nagios_text(text: str, limit: int) -> str:
    """One line, no ``|`` (which starts perfdata)."""
    return one_line(text, limit=limit).replace("|", "/")


def _perfdata(snap: Snapshot) -> list[str]:
    out = []
    facts = {n: p.facts for n, p in snap.panels.items()}

    def add(label, value, unit):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return  # unknown, or not a number: no perfdata rather than a broken one
        out.append(f"{_LABEL_UNSAFE.sub('_', str(label))[:100]}={value}{unit};;;")

    b, w, s = facts.get("barman", {}), facts.get("wal", {}), facts.get("starport", {})
    add("last_backup_age", b.get("last_backup_age_seconds"), "s")
    add("backups", b.get("backups_available"), "")
    add("wal_lag", w.get("lag_bytes"), "B")
    add("last_archived_age", w.get("last_archived_age_seconds"), "s")
    add("nightly_age", s.get("nightly_age_seconds"), "s")
    for t in s.get("targets", []):
        if isinstance(t, dict):
            add(f"starport_{t.get('name')}_age", t.get("age_seconds"), "s")
    return out


def write_prometheus(snap: Snapshot, path: Path) -> None:
    """Write a node-exporter textfile atomically (temporary file in the same dir, then rename)."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    status = Gauge(
        "montagu_console_panel_status",
        "Panel status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
        ["panel"],
        registry=registry,
    )
    for name, p in snap.panels.items():
        status.labels(panel=name).set(p.status.exit_code)
    Gauge("montagu_console_status", "Overall status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", registry=registry).set(
        snap.status.exit_code
    )
    Gauge("montagu_console_checked_timestamp_seconds", "When the check ran", registry=registry).set(
        snap.checked_at.timestamp()
    )
    facts = {n: p.facts for n, p in snap.panels.items()}
    b, w, s, r = (facts.get(k, {}) for k in ("barman", "wal", "starport", "restore"))
    _gauge(
        registry,
        "montagu_barman_last_backup_age_seconds",
        "Age of the newest DONE base backup",
        b.get("last_backup_age_seconds"),
    )
    _gauge(registry, "montagu_barman_backups_available", "Base backups available", b.get("backups_available"))
    _gauge(
        registry,
        "montagu_barman_failed_checks",
        "barman checks FAILED",
        len(b["failed_checks"]) if "failed_checks" in b else None,
    )
    _gauge(
        registry,
        "montagu_barman_backup_running",
        "1 while a base backup runs",
        int(b["backup_running"]) if "backup_running" in b else None,
    )
    _gauge(registry, "montagu_wal_lag_bytes", "WAL kept on the primary for barman's slot", w.get("lag_bytes"))
    _gauge(
        registry,
        "montagu_wal_receive_running",
        "1 if barman receive-wal runs",
        int(w["receive_wal_running"]) if "receive_wal_running" in w else None,
    )
    _gauge(
        registry,
        "montagu_wal_last_archived_age_seconds",
        "Age of the last archived WAL",
        w.get("last_archived_age_seconds"),
    )
    _gauge(registry, "montagu_nightly_age_seconds", "Age of the nightly recovered copy", s.get("nightly_age_seconds"))
    target_age = Gauge(
        "montagu_starport_age_seconds", "Age of each starport target's last backup", ["target"], registry=registry
    )
    for t in s.get("targets", []):
        if t.get("age_seconds") is not None:
            target_age.labels(target=t["name"]).set(t["age_seconds"])
    _gauge(
        registry,
        "montagu_science_db_accepting",
        "1 if the science database accepts connections",
        int(r["db_accepting"]) if r.get("db_accepting") is not None else None,
    )
    _gauge(registry, "montagu_science_data_age_seconds", "Age of the data science runs on", r.get("data_age_seconds"))
    # write_to_textfile writes a temporary file beside the target and renames it into place.
    write_to_textfile(str(path), registry)


def _gauge(registry, name: str, doc: str, value) -> None:
    from prometheus_client import Gauge

    if value is not None:
        Gauge(name, doc, registry=registry).set(value)


def dumps(snap: Snapshot) -> str:
    """JSON text of :func:`to_json` (ASCII only: every non-ASCII character, cleaned or not, is escaped)."""
    return json.dumps(to_json(snap), indent=2, ensure_ascii=True, default=str)

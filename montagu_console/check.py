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
    # with several barmans, each instance's own figures too, prefixed with its name
    for panel, keys in (("barman", _BARMAN_PERF), ("wal", _WAL_PERF)):
        instances = _instances(facts.get(panel, {}))
        for i in instances if len(instances) > 1 else []:
            for label, key, unit in keys:
                add(f"{i.get('name')}_{label}", i.get(key), unit)
    for slot in w.get("slots") or []:
        if isinstance(slot, dict):
            add(f"slot_{slot.get('name')}_retained", slot.get("retained_bytes"), "B")
    add("nightly_age", s.get("nightly_age_seconds"), "s")
    add("proof_age", s.get("proof_age_seconds"), "s")
    add("nightly_free", s.get("nightly_free_bytes"), "B")
    for t in s.get("targets", []):
        if isinstance(t, dict):
            add(f"starport_{t.get('name')}_age", t.get("age_seconds"), "s")
    return out


_BARMAN_PERF = (("last_backup_age", "last_backup_age_seconds", "s"), ("backups", "backups_available", ""))
_WAL_PERF = (("wal_lag", "lag_bytes", "B"), ("last_archived_age", "last_archived_age_seconds", "s"))


def _instances(facts: dict) -> list[dict]:
    """A panel's ``instances`` fact (barman, WAL): the dict entries only."""
    found = facts.get("instances")
    return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []


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
    instance_status = Gauge(
        "montagu_console_instance_status",
        "Status of one barman instance's part of a panel: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
        ["panel", "instance"],
        registry=registry,
    )
    for name in ("barman", "wal"):
        for inst in _instances(facts.get(name, {})):
            code = Status(inst["status"]).exit_code if inst.get("status") in Status.__members__ else 3
            instance_status.labels(panel=name, instance=str(inst.get("name"))).set(code)
    for metric, doc, key in _INSTANCE_GAUGES:
        panel_facts = b if metric.startswith("montagu_barman") else w
        gauge = Gauge(metric, doc, ["instance"], registry=registry)
        for inst in _instances(panel_facts):
            value = _number(inst.get(key))
            if value is not None:
                gauge.labels(instance=str(inst.get("name"))).set(value)
    retained = Gauge(
        "montagu_primary_slot_retained_bytes",
        "WAL each replication slot holds back on the primary (since its restart_lsn)",
        ["slot"],
        registry=registry,
    )
    active = Gauge(
        "montagu_primary_slot_active", "1 if the replication slot has a consumer", ["slot"], registry=registry
    )
    for slot in w.get("slots") or []:
        if isinstance(slot, dict) and isinstance(slot.get("name"), str):
            if slot.get("retained_bytes") is not None:
                retained.labels(slot=slot["name"]).set(slot["retained_bytes"])
            active.labels(slot=slot["name"]).set(int(bool(slot.get("active"))))
    _gauge(registry, "montagu_nightly_age_seconds", "Age of the nightly recovered copy", s.get("nightly_age_seconds"))
    target_age = Gauge(
        "montagu_starport_age_seconds", "Age of each starport target's last backup", ["target"], registry=registry
    )
    for t in s.get("targets", []):
        if t.get("age_seconds") is not None:
            target_age.labels(target=t["name"]).set(t["age_seconds"])
    _gauge(
        registry,
        "montagu_starport_proof_age_seconds",
        "Age of the newest proof of the current nightly copy (replayed and verified)",
        s.get("proof_age_seconds"),
    )
    outcome = s.get("proof_outcome")
    _gauge(
        registry,
        "montagu_starport_proof_passed",
        "1 if the newest proof of the current nightly copy passed, 0 if it failed",
        {"passed": 1, "failed": 0}.get(outcome) if isinstance(outcome, str) else None,
    )
    _gauge(
        registry,
        "montagu_nightly_free_bytes",
        "Free bytes on the filesystem under the nightly copy (a recover writes a new copy beside it)",
        s.get("nightly_free_bytes"),
    )
    _gauge(registry, "montagu_nightly_copy_bytes", "Size of the nightly copy", s.get("nightly_copy_bytes"))
    _gauge(
        registry,
        "montagu_science_db_accepting",
        "1 if the science database accepts connections",
        int(r["db_accepting"]) if r.get("db_accepting") is not None else None,
    )
    _gauge(registry, "montagu_science_data_age_seconds", "Age of the data science runs on", r.get("data_age_seconds"))
    # write_to_textfile writes a temporary file beside the target and renames it into place.
    write_to_textfile(str(path), registry)


# barman and WAL figures of each instance, labelled instance="<name>": (metric, help, fact key)
_INSTANCE_GAUGES = (
    ("montagu_barman_last_backup_age_seconds", "Age of the newest DONE base backup", "last_backup_age_seconds"),
    ("montagu_barman_backups_available", "Base backups available", "backups_available"),
    ("montagu_barman_failed_checks", "barman checks FAILED", "failed_checks"),
    ("montagu_barman_backup_running", "1 while a base backup runs", "backup_running"),
    ("montagu_barman_backup_progress_percent", "How far a running base backup is", "backup_progress"),
    ("montagu_wal_lag_bytes", "WAL kept on the primary for the instance's slot", "lag_bytes"),
    ("montagu_wal_receive_running", "1 if barman receive-wal runs", "receive_wal_running"),
    ("montagu_wal_last_archived_age_seconds", "Age of the last archived WAL", "last_archived_age_seconds"),
)


def _number(value) -> float | None:
    """A fact as a sample value: booleans as 0/1, lists by length, progress by percent."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return float(len(value))
    if isinstance(value, dict):
        value = value.get("percent")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _gauge(registry, name: str, doc: str, value) -> None:
    from prometheus_client import Gauge

    if value is not None:
        Gauge(name, doc, registry=registry).set(value)


def dumps(snap: Snapshot) -> str:
    """JSON text of :func:`to_json` (ASCII only: every non-ASCII character, cleaned or not, is escaped)."""
    return json.dumps(to_json(snap), indent=2, ensure_ascii=True, default=str)

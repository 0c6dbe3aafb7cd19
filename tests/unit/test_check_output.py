"""check renderers: the stable JSON schema, the Nagios line, the Prometheus textfile."""

import json
import subprocess
from datetime import UTC, datetime

from montagu_console import check, health
from montagu_console.config import WalConfig
from montagu_console.snapshot import InstanceResult, PanelResult, PrimaryFacts, SlotInfo, Snapshot, Status
from tests.conftest import all_strings

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def _instance(name, panel, status, summary, facts):
    return InstanceResult(name, name, PanelResult(panel, status, summary, facts, NOW))


def snap(wal_status=Status.OK, instances=("annex",), orphan_bytes=512 * 1024**2):
    """A snapshot whose barman and WAL panels are combined from ``instances`` by the health rules
    (the first carries the figures below, every other one its own), with two slots on the primary."""
    barman_facts = {"last_backup_age_seconds": 120, "backups_available": 3, "failed_checks": []}
    barman_facts["backup_running"] = False
    wal_facts = {"lag_bytes": 2048, "receive_wal_running": wal_status is Status.OK, "last_archived_age_seconds": 60}
    wal_summary = "receive-wal not running" if wal_status is not Status.OK else "streaming"
    barmans = [_instance(n, "barman", Status.OK, "3 backups", barman_facts) for n in instances]
    wals = [_instance(instances[0], "wal", wal_status, wal_summary, wal_facts)]
    wals += [_instance(n, "wal", Status.OK, "streaming", wal_facts | {"lag_bytes": 4096}) for n in instances[1:]]
    primary = PrimaryFacts((SlotInfo("barman", True, 2048), SlotInfo("old_slot", False, orphan_bytes)), ())
    findings, slots = health.judge_slots(primary, WalConfig())
    panels = {
        "barman": health.combine("barman", barmans, NOW),
        "wal": health.combine("wal", wals, NOW, findings, {"slots": slots}),
        "starport": PanelResult(
            "starport",
            Status.OK,
            "fresh",
            {
                "nightly_age_seconds": 3600,
                "targets": [{"name": "barman_to_starport", "last_backup": None, "age_seconds": 3000}],
            },
            NOW,
        ),
        "restore": health.unknown("restore", "science: docker unix:///x: daemon not reachable", NOW),
    }
    return Snapshot(NOW, panels)


def test_json_schema():
    doc = check.to_json(snap())
    assert doc["status"] == "UNKNOWN" and doc["checked_at"] == "2026-11-25T06:00:00+00:00"
    assert list(doc["panels"]) == ["barman", "wal", "starport", "restore"]
    assert doc["panels"]["restore"] == {
        "status": "UNKNOWN",
        "facts": {},
        "summary": "science: docker unix:///x: daemon not reachable",
    }


def test_json_lists_every_instance_and_slot():
    doc = check.to_json(snap(instances=("annex", "aws"), orphan_bytes=5 * 1024**3))
    barman, wal = doc["panels"]["barman"], doc["panels"]["wal"]
    assert [(i["name"], i["status"]) for i in barman["facts"]["instances"]] == [("annex", "OK"), ("aws", "OK")]
    assert barman["facts"]["backups_available"] == 3  # the panel's own facts are the first instance's
    assert wal["facts"]["slots"] == [
        {"name": "barman", "active": True, "retained_bytes": 2048},
        {"name": "old_slot", "active": False, "retained_bytes": 5 * 1024**3},
    ]
    assert wal["status"] == "CRITICAL" and wal["summary"].startswith("slot old_slot inactive, retaining 5.0 GiB")


def test_nagios_line_and_exit_code():
    s = snap(Status.CRITICAL)
    first = check.to_nagios(s).splitlines()[0]
    assert first.startswith("MONTAGU CRITICAL - wal CRITICAL: ")
    assert "receive-wal not running" in first and "restore UNKNOWN: " in first
    assert (
        "| last_backup_age=120s;;; backups=3;;; wal_lag=2048B;;; last_archived_age=60s;;; "
        "slot_barman_retained=2048B;;; slot_old_slot_retained=536870912B;;; nightly_age=3600s;;;"
    ) in first
    assert s.status.exit_code == 2


def test_nagios_perfdata_per_instance():
    first = check.to_nagios(snap(instances=("annex", "aws"))).splitlines()[0]
    assert "annex_last_backup_age=120s;;; annex_backups=3;;; aws_last_backup_age=120s;;;" in first
    assert "annex_wal_lag=2048B;;; annex_last_archived_age=60s;;; aws_wal_lag=4096B;;;" in first


def test_prometheus_textfile(tmp_path):
    out = tmp_path / "montagu.prom"
    check.write_prometheus(snap(Status.CRITICAL, instances=("annex", "aws")), out)
    text = out.read_text()
    assert 'montagu_console_panel_status{panel="wal"} 2.0' in text
    assert 'montagu_console_panel_status{panel="restore"} 3.0' in text
    assert 'montagu_console_instance_status{instance="annex",panel="wal"} 2.0' in text
    assert 'montagu_console_instance_status{instance="aws",panel="wal"} 0.0' in text
    assert 'montagu_barman_last_backup_age_seconds{instance="annex"} 120.0' in text
    assert 'montagu_barman_last_backup_age_seconds{instance="aws"} 120.0' in text
    assert 'montagu_starport_age_seconds{target="barman_to_starport"} 3000.0' in text
    assert 'montagu_wal_lag_bytes{instance="annex"} 2048.0' in text
    assert 'montagu_wal_lag_bytes{instance="aws"} 4096.0' in text
    assert 'montagu_wal_receive_running{instance="annex"} 0.0' in text
    assert 'montagu_primary_slot_retained_bytes{slot="old_slot"} 5.36870912e+08' in text
    assert 'montagu_primary_slot_active{slot="old_slot"} 0.0' in text
    assert 'montagu_primary_slot_active{slot="barman"} 1.0' in text
    assert list(tmp_path.iterdir()) == [out]  # the temporary file was renamed into place


HOSTILE = "\x1b]0;pwned\x07 \x1b[2J [link=file:///etc/passwd]x[/link]\nMONTAGU OK - all fine | forged=1;;;\r\x00\u2028"


def hostile_snap():
    panels = {
        "barman": PanelResult(
            "barman",
            Status.WARNING,
            HOSTILE,
            {"last_backup_age_seconds": float("nan"), "backups_available": "3", "hint": HOSTILE},
            NOW,
        ),
        "starport": PanelResult(
            "starport",
            Status.OK,
            "fresh",
            {"targets": [{"name": "a b=c;d\n|x", "age_seconds": 10}, {"name": "ok", "age_seconds": True}, "junk"]},
            NOW,
        ),
    }
    return Snapshot(NOW, panels)


def test_nagios_summary_newline_cannot_forge_a_second_status_line():
    """Finding 6: one status line plus one line per panel, whatever the summaries hold."""
    lines = check.to_nagios(hostile_snap()).split("\n")
    assert len(lines) == 1 + 2
    assert [line.startswith("MONTAGU ") for line in lines] == [True, False, False]
    status, perf = lines[0].split(" | ")
    assert status.startswith("MONTAGU WARNING - barman WARNING: ") and "forged" not in perf
    assert perf == "starport_a_b_c_d__x_age=10s;;;"  # the label is safe, the non-numbers are left out
    for line in lines:
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c == "\u2028" for c in line), repr(line)


def test_json_and_text_carry_only_clean_strings():
    """Finding 6: the JSON document decodes to strings without control characters; so does the text."""
    doc = json.loads(check.dumps(hostile_snap()))

    for s in all_strings(doc):
        assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in s), repr(s)
    assert "\n" not in doc["panels"]["barman"]["summary"]
    text = check.to_text(hostile_snap())
    assert len(text.split("\n")) == 3 and "\x1b" not in text and "\x00" not in text


def test_prometheus_textfile_passes_promtool(tmp_path):
    """promtool (Debian's prometheus package, installed by `make test`) finds nothing to fix."""
    out = tmp_path / "montagu.prom"
    check.write_prometheus(snap(Status.CRITICAL, instances=("annex", "aws")), out)
    lint = subprocess.run(["promtool", "check", "metrics"], input=out.read_text(), capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr

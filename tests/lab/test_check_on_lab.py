"""`check` against the real lab: every panel OK on a fresh lab, then real failures and repairs.

Each test breaks one link of the chain for real (stops receive-wal, stops PostgreSQL, ages the
nightly copy, corrupts bb8's metadata, stops sshd), checks that the right panel turns the right
status with a clear summary, repairs it and checks the panel is OK again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import run_check, wait_for

pytestmark = pytest.mark.lab


def panel(config, name):
    _rc, doc, err = run_check(config, "--json", "--panel", name)
    assert isinstance(doc, dict), err
    return doc["panels"][name]


def panel_is(config, name, status):
    p = panel(config, name)
    return p if p["status"] == status else None


def test_fresh_lab_is_ok_on_every_panel_with_real_facts(lab_config):
    rc, doc, err = run_check(lab_config, "--json")
    assert doc["status"] == "OK", doc
    assert rc == 0 and err == ""
    b, w, s, r = (doc["panels"][k]["facts"] for k in ("barman", "wal", "starport", "restore"))
    assert b["server"] == "montagu" and b["backups_available"] >= 1 and b["failed_checks"] == []
    assert b["last_backup_age_seconds"] < 7 * 86400 and b["data_size_bytes"] > 1_000_000
    assert b["backup_running"] is False and b["last_backup_id"]
    assert w["receive_wal_running"] is True and w["slot_active"] is True and w["lag_bytes"] is not None
    assert w["last_archived_wal"] and w["last_archived_age_seconds"] is not None
    assert s["nightly_restored_at"] and s["nightly_age_seconds"] < 86400
    assert s["targets"][0]["name"] == "barman_to_starport" and s["targets"][0]["age_seconds"] < 86400
    assert r["phase"] == "ready" and r["db_accepting"] is True and r["data_restored_from"]


def test_nagios_and_prometheus_on_the_lab(lab_config, tmp_path):
    rc, out, _ = run_check(lab_config, "--nagios")
    assert rc == 0 and out.startswith("MONTAGU OK - ") and "wal_lag=" in out
    prom = tmp_path / "montagu.prom"
    rc, _, _ = run_check(lab_config, "--prometheus", str(prom))
    assert rc == 0 and 'montagu_console_panel_status{panel="barman"} 0.0' in prom.read_text()


def test_receive_wal_stopped_turns_wal_critical_and_back(lab, lab_config):
    lab.stop_receive_wal()
    try:
        p = wait_for(lambda: panel_is(lab_config, "wal", "CRITICAL"), timeout=30, what="WAL CRITICAL")
        assert "receive-wal not running" in p["summary"]
        assert p["facts"]["receive_wal_running"] is False
        rc, _, _ = run_check(lab_config, "--panel", "wal")
        assert rc == 2
    finally:
        lab.start_receive_wal()
    wait_for(lambda: panel_is(lab_config, "wal", "OK"), timeout=60, what="WAL OK again")


def test_postgres_stopped_turns_barman_critical_and_back(lab, lab_config):
    lab.stop_primary()
    try:
        p = wait_for(lambda: panel_is(lab_config, "barman", "CRITICAL"), timeout=30, what="barman CRITICAL")
        assert "PostgreSQL unreachable" in p["summary"]
    finally:
        lab.start_primary()
        lab.start_receive_wal()
    wait_for(lambda: panel_is(lab_config, "barman", "OK"), timeout=60, what="barman OK again")
    wait_for(lambda: panel_is(lab_config, "wal", "OK"), timeout=60, what="WAL OK again")


def test_old_nightly_copy_warns_then_goes_critical(lab, lab_config):
    now = datetime.now(UTC)
    original = panel(lab_config, "starport")["facts"]["nightly_restored_at"]
    try:
        lab.set_nightly_timestamp(now - timedelta(hours=30))
        p = panel(lab_config, "starport")
        assert p["status"] == "WARNING" and "nightly copy 30 hours old (warn at 26 h)" in p["summary"]
        lab.set_nightly_timestamp(now - timedelta(hours=60))
        p = panel(lab_config, "starport")
        assert p["status"] == "CRITICAL" and "limit 50 h" in p["summary"]
    finally:
        lab.set_nightly_timestamp(datetime.fromisoformat(original))
    assert panel(lab_config, "starport")["status"] == "OK"


def test_old_starport_metadata_then_corrupt_then_repaired(lab, lab_config):
    now = datetime.now(UTC)
    try:
        lab.write_starport_metadata("barman_to_starport", now - timedelta(hours=30))
        p = panel(lab_config, "starport")
        assert p["status"] == "WARNING" and "barman_to_starport 30 hours old (warn at 26 h)" in p["summary"]
        lab.write_starport_metadata("barman_to_starport", None, raw='{"last_backup": "2026-11-')
        p = panel(lab_config, "starport")
        assert p["status"] == "CRITICAL" and "corrupt" in p["summary"]
        rc, out, _ = run_check(lab_config, "--nagios", "--panel", "starport")
        assert rc == 2 and out.startswith("MONTAGU CRITICAL - starport CRITICAL: barman_to_starport:")
    finally:
        lab.write_starport_metadata("barman_to_starport", now)
    assert panel(lab_config, "starport")["status"] == "OK"


def test_starport_copy_older_than_the_nightly_copy(lab, lab_config):
    """A new nightly copy that has not been shipped yet: the starport lags behind it."""
    original = panel(lab_config, "starport")["facts"]["nightly_restored_at"]
    try:
        lab.set_nightly_timestamp(datetime.now(UTC))
        p = panel(lab_config, "starport")
        assert p["status"] == "WARNING" and "barman_to_starport is older than the nightly copy" in p["summary"]
    finally:
        lab.set_nightly_timestamp(datetime.fromisoformat(original))
    assert panel(lab_config, "starport")["status"] == "OK"


def test_unreachable_starport_host_is_unknown_only_for_its_panel(lab, lab_config):
    lab.stop_sshd()
    try:
        rc, doc, _ = run_check(lab_config, "--json")
        s = doc["panels"]["starport"]
        assert s["status"] == "UNKNOWN" and "starport" in s["summary"] and "127.0.0.1" in s["summary"]
        assert doc["panels"]["barman"]["status"] == "OK" and doc["panels"]["restore"]["status"] == "OK"
        assert rc == 3
    finally:
        lab.start_sshd()
    assert panel(lab_config, "starport")["status"] == "OK"


def test_science_stopped_turns_restore_critical_and_back(lab, lab_config):
    lab.stop_science()
    try:
        p = panel(lab_config, "restore")
        assert p["status"] == "CRITICAL" and "not accepting" in p["summary"]
        assert p["facts"]["db_accepting"] is False and p["facts"]["phase"] in ("idle", "failed")
    finally:
        lab.start_science()
    wait_for(lambda: panel_is(lab_config, "restore", "OK"), timeout=60, what="restore OK again")

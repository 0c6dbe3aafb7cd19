"""The whole estate on the lab: annex's and the off-site barman, every slot, retention, progress.

Each test drives a real fault (the off-site receive-wal stopped, the SSH tunnel it streams
through killed, its host's sshd stopped, a forgotten slot on the primary, a slowed base backup),
checks that only the right instance's rows turn the right status within one refresh and name
the cause, repairs it, and checks the panel recovers.
"""

from __future__ import annotations

import contextlib
import subprocess

import pytest
import yaml

from montagu_console.lab.layout import BARMAN_CONTAINER, BARMAN_SERVER
from tests.conftest import config_variant, console, run_check, wait_for

pytestmark = pytest.mark.lab

RETENTION = "RECOVERY WINDOW OF 3 MONTHS"


def check_json(config, *args):
    _rc, doc, err = run_check(config, "--json", *args)
    assert isinstance(doc, dict), err
    return doc


def rows(doc, panel):
    """``{instance name: its entry}`` of one panel."""
    return {i["name"]: i for i in doc["panels"][panel]["facts"]["instances"]}


def slots(doc):
    return {s["name"]: s for s in doc["panels"]["wal"]["facts"]["slots"]}


def wal_row_is(config, name, status):
    doc = check_json(config, "--panel", "wal")
    row = rows(doc, "wal")[name]
    return doc if row["status"] == status else None


def test_fresh_lab_lists_both_barmans_and_every_slot_all_ok(lab_config):
    doc = check_json(lab_config)
    assert doc["status"] == "OK", doc
    barman, wal = rows(doc, "barman"), rows(doc, "wal")
    assert list(barman) == ["annex", "aws"] and list(wal) == ["annex", "aws"]
    for name, slot in (("annex", "barman"), ("aws", "barman_aws")):
        assert barman[name]["status"] == "OK" and barman[name]["backups_available"] >= 1
        assert barman[name]["retention_policy"] == RETENTION
        assert {b["retention_status"] for b in barman[name]["backups"] if b["status"] == "DONE"} == {"VALID"}
        assert wal[name]["status"] == "OK" and wal[name]["slot_name"] == slot
        assert wal[name]["receive_wal_running"] is True and wal[name]["slot_active"] is True
    assert {"barman", "barman_aws"} <= set(slots(doc))
    assert all(s["active"] for s in slots(doc).values())
    assert doc["panels"]["barman"]["facts"]["retention_policy"] == RETENTION
    assert doc["panels"]["barman"]["facts"]["backup_progress"] is None


def test_check_instance_limits_the_barman_panels_to_one(lab_config):
    doc = check_json(lab_config, "--instance", "aws", "--panel", "barman", "--panel", "wal")
    assert list(rows(doc, "barman")) == ["aws"] and list(rows(doc, "wal")) == ["aws"]
    assert doc["panels"]["wal"]["facts"]["slot_name"] == "barman_aws"
    rc, out, _ = run_check(lab_config, "--nagios", "--instance", "aws", "--panel", "wal")
    assert rc == 0 and out.startswith("MONTAGU OK - ")
    rc, out, err = run_check(lab_config, "--instance", "nosuch")
    assert rc == 3 and "no barman instance 'nosuch'" in out + err and "Traceback" not in out + err


def test_prometheus_on_the_lab_labels_instances_and_slots_and_passes_promtool(lab_config, tmp_path):
    prom = tmp_path / "montagu.prom"
    rc, _, _ = run_check(lab_config, "--prometheus", str(prom))
    text = prom.read_text()
    assert rc == 0
    assert 'montagu_wal_receive_running{instance="aws"} 1.0' in text
    assert 'montagu_barman_backups_available{instance="annex"}' in text
    assert 'montagu_primary_slot_active{slot="barman_aws"} 1.0' in text
    assert 'montagu_primary_slot_retained_bytes{slot="barman"}' in text
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr


def test_offsite_receive_wal_stopped_turns_only_its_rows_critical_and_back(lab, lab_config):
    lab.pause_aws_cron()
    try:
        lab.stop_aws_receive_wal()
        doc = wait_for(lambda: wal_row_is(lab_config, "aws", "CRITICAL"), timeout=30, what="aws WAL CRITICAL")
        wal = rows(doc, "wal")
        assert "receive-wal not running" in wal["aws"]["summary"] and wal["annex"]["status"] == "OK"
        assert doc["panels"]["wal"]["status"] == "CRITICAL" and doc["panels"]["wal"]["summary"].startswith("aws: ")
    finally:
        lab.resume_aws_cron()
    wait_for(lambda: wal_row_is(lab_config, "aws", "OK"), timeout=90, what="aws WAL OK again after its cron")


def test_tunnel_killed_makes_offsite_critical_with_its_slot_inactive_and_retaining(lab, lab_config):
    lab.kill_tunnel()
    try:

        def broken():
            lab.psql("SELECT pg_switch_wal()")  # WAL the off-site slot must now hold back
            doc = check_json(lab_config)
            aws_slot = slots(doc)["barman_aws"]
            if rows(doc, "wal")["aws"]["status"] != "CRITICAL" or aws_slot["active"]:
                return None
            return doc if (aws_slot["retained_bytes"] or 0) > 0 else None

        doc = wait_for(broken, timeout=60, interval=2, what="aws CRITICAL, its slot inactive and retaining")
        wal, barman = rows(doc, "wal"), rows(doc, "barman")
        assert "replication slot barman_aws inactive" in wal["aws"]["summary"]
        assert wal["annex"]["status"] == "OK" and barman["annex"]["status"] == "OK"
        assert barman["aws"]["status"] == "CRITICAL" and "PostgreSQL unreachable" in barman["aws"]["summary"]
        assert "slot barman_aws inactive, retaining" in doc["panels"]["wal"]["summary"]
    finally:
        lab.start_tunnel()
    wait_for(lambda: wal_row_is(lab_config, "aws", "OK"), timeout=120, what="aws OK once the tunnel is back")


def test_offsite_host_unreachable_is_unknown_for_its_rows_only(lab, lab_config):
    lab.stop_aws_sshd()
    try:
        doc = check_json(lab_config)
        for panel in ("barman", "wal"):
            aws, annex = rows(doc, panel)["aws"], rows(doc, panel)["annex"]
            assert aws["status"] == "UNKNOWN" and "aws" in aws["summary"], aws
            assert annex["status"] == "OK", annex
            assert doc["panels"][panel]["status"] == "UNKNOWN"
        assert doc["panels"]["starport"]["status"] == "OK" and doc["panels"]["restore"]["status"] == "OK"
    finally:
        lab.start_aws_sshd()
    wait_for(lambda: wal_row_is(lab_config, "aws", "OK"), timeout=60, what="aws OK once its sshd is back")


def test_a_forgotten_slot_on_the_primary_is_named(lab, lab_config, tmp_path):
    lab.create_slot("forgotten_standby")
    try:
        doc = check_json(lab_config, "--panel", "wal")
        wal = doc["panels"]["wal"]
        assert slots(doc)["forgotten_standby"]["active"] is False
        assert wal["status"] == "WARNING" and "slot forgotten_standby inactive" in wal["summary"]
        assert all(r["status"] == "OK" for r in rows(doc, "wal").values())
        critical = config_variant(
            lab_config,
            tmp_path,
            lambda c: c.setdefault("wal", {}).setdefault("thresholds", {}).update(slot_retained_critical_bytes=1),
        )
        lab.psql("SELECT pg_switch_wal()")
        doc = wait_for(
            lambda: (d := check_json(critical, "--panel", "wal"))["panels"]["wal"]["status"] == "CRITICAL" and d,
            timeout=30,
            what="the forgotten slot CRITICAL past a 1-byte limit",
        )
        assert "slot forgotten_standby inactive, retaining" in doc["panels"]["wal"]["summary"]
    finally:
        lab.drop_slot("forgotten_standby")
    assert "forgotten_standby" not in slots(check_json(lab_config, "--panel", "wal"))


def test_base_backup_preflight_names_what_a_count_based_policy_obsoletes(lab, lab_config):
    # barman cron enforces the policy it reads: paused, it neither deletes backups under the
    # tighter policy below nor turns a WAITING_FOR_WALS backup DONE while the test reads them
    lab.pause_cron()
    try:
        before = rows(check_json(lab_config, "--panel", "barman"), "barman")["annex"]
        done = [b["backup_id"] for b in before["backups"] if b["status"] == "DONE"]
        conf = lab.barman_conf
        original = conf.read_text()
        # in place: barman.conf is bind-mounted into barman-montagu as a file
        conf.write_text(original.replace(f"retention_policy = {RETENTION}", "retention_policy = REDUNDANCY 1"))
        try:
            r = console(lab_config, "run", "base-backup")
            assert r.returncode == 2, r.stdout + r.stderr  # no terminal: refused before it starts
            line = next(x for x in r.stdout.splitlines() if "retention" in x)
            assert "once done, retention REDUNDANCY 1 makes" in line and "obsolete" in line
            assert all(backup_id in line for backup_id in done[:5]), (done, line)
            assert "needs confirmation" in r.stdout + r.stderr
        finally:
            conf.write_text(original)
    finally:
        lab.resume_cron()
    after = rows(check_json(lab_config, "--panel", "barman"), "barman")["annex"]
    assert after["retention_policy"] == RETENTION and after["backups_available"] == before["backups_available"]


def test_progress_of_a_slowed_base_backup_started_outside_the_console(lab, lab_config, tmp_path):
    """A backup started by hand (as cron or another operator would) at 2 MB/s shows its progress
    from the primary, and from its growing directory when no primary is configured."""
    backup = subprocess.Popen(
        [
            "docker",
            "-H",
            lab.docker_host,
            "exec",
            BARMAN_CONTAINER,
            "barman",
            "backup",
            "--bwlimit",
            "2000",
            BARMAN_SERVER,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    no_primary = config_variant(lab_config, tmp_path, lambda c: c.pop("primary"))
    try:

        def progress(config):
            facts = check_json(config, "--panel", "barman")["panels"]["barman"]["facts"]
            p = facts["backup_progress"]
            return (facts, p) if p and p["bytes_done"] > 0 and p["percent"] is not None else None

        facts, p = wait_for(lambda: progress(lab_config), timeout=60, interval=1, what="progress from the primary")
        assert facts["backup_running"] is True and p["source"] == "primary"
        assert 0 <= p["percent"] <= 100 and p["bytes_total"] > 0 and p["backup_id"]
        assert p["eta_seconds"] is not None
        facts, p = wait_for(lambda: progress(no_primary), timeout=60, interval=1, what="progress from the directory")
        assert p["source"] == "directory" and 0 <= p["percent"] < 100
        summary = check_json(lab_config, "--panel", "barman")["panels"]["barman"]["summary"]
        assert "%" in summary or backup.poll() is not None
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            backup.wait(timeout=240)
        if backup.poll() is None:
            backup.kill()
    out = backup.stdout.read() if backup.stdout else ""
    assert backup.returncode == 0, out
    wait_for(
        lambda: check_json(lab_config, "--panel", "barman")["panels"]["barman"]["facts"]["backup_progress"] is None,
        timeout=60,
        what="no progress once the backup is done",
    )


def test_lab_config_lists_both_barmans_and_sets_primary(lab_config):
    config = yaml.safe_load(lab_config.read_text())
    assert [b["name"] for b in config["barman"]] == ["annex", "aws"]
    assert [b["slot"] for b in config["barman"]] == ["barman", "barman_aws"]
    assert config["primary"]["host"] == "annex" and "psql" in config["primary"]["command"]
    assert config["hosts"]["aws"]["transport"] == "ssh"

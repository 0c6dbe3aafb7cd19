"""The whole estate's rules: several barmans in one panel, the primary's slots, retention, progress."""

from datetime import UTC, datetime, timedelta

import pytest

from montagu_console import health
from montagu_console.config import WalConfig
from montagu_console.errors import ProbeError
from montagu_console.probes import barman_json as bj
from montagu_console.probes.primary import parse_primary
from montagu_console.retention import outlook
from montagu_console.snapshot import BackupInfo, InstanceResult, PanelResult, PrimaryFacts, SlotInfo, Status

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GIB = 1024**3


def _inst(name, status, summary):
    return InstanceResult(name, name, PanelResult("wal", status, summary, {"lag_bytes": 1}, NOW))


def test_worst_instance_names_the_panel():
    panel = health.combine(
        "wal", [_inst("annex", Status.OK, "streaming"), _inst("aws", Status.CRITICAL, "receive-wal not running")], NOW
    )
    assert panel.status is Status.CRITICAL
    assert panel.summary == "aws: receive-wal not running; annex OK"
    assert [i["name"] for i in panel.facts["instances"]] == ["annex", "aws"]


def test_all_ok_instances_read_as_the_first_and_the_rest_ok():
    panel = health.combine("wal", [_inst("annex", Status.OK, "streaming"), _inst("aws", Status.OK, "streaming")], NOW)
    assert (panel.status, panel.summary) == (Status.OK, "annex: streaming; aws OK")


def test_one_instance_keeps_its_own_summary():
    panel = health.combine("wal", [_inst("annex", Status.WARNING, "WAL lag unknown")], NOW)
    assert (panel.status, panel.summary) == (Status.WARNING, "WAL lag unknown")


def test_an_unreachable_instance_is_unknown_beside_a_healthy_one():
    dead = InstanceResult("aws", "aws", health.unknown("wal", "aws: ssh 127.0.0.1:2223: connection refused", NOW))
    panel = health.combine("wal", [_inst("annex", Status.OK, "streaming"), dead], NOW)
    assert panel.status is Status.UNKNOWN and panel.summary.startswith("aws: aws: ssh 127.0.0.1:2223")
    assert panel.facts["lag_bytes"] == 1  # the first instance's facts stay


@pytest.mark.parametrize(
    ("active", "held", "status"),
    [(True, 5 * GIB, None), (False, 10 * 1024**2, Status.WARNING), (False, 2 * GIB, Status.CRITICAL)],
)
def test_slot_rules(active, held, status):
    findings, slots = health.judge_slots(PrimaryFacts((SlotInfo("forgotten", active, held),), ()), WalConfig())
    assert slots == [{"name": "forgotten", "active": active, "retained_bytes": held}]
    assert [s for s, _ in findings] == ([status] if status else [])
    assert all("slot forgotten inactive" in msg for _, msg in findings)


def test_no_primary_configured_means_no_slots_fact():
    assert health.judge_slots(None, WalConfig()) == ([], None)


def test_a_slot_finding_worse_than_every_instance_leads_the_summary():
    findings, slots = health.judge_slots(PrimaryFacts((SlotInfo("old", False, 3 * GIB),), ()), WalConfig())
    panel = health.combine("wal", [_inst("annex", Status.OK, "streaming")], NOW, findings, {"slots": slots})
    assert panel.status is Status.CRITICAL and panel.summary.startswith("slot old inactive, retaining 3.0 GiB")


def test_primary_rows_parse():
    text = (
        "slot|barman|true|16384||\nslot|barman_aws|false|||\n"
        "basebackup|4242|streaming database files|30000000|1500000|1796218552\n"
    )
    facts = parse_primary(text)
    assert [(s.name, s.active, s.retained_bytes) for s in facts.slots] == [
        ("barman", True, 16384),
        ("barman_aws", False, None),
    ]
    [stream] = facts.base_backups
    assert (stream.pid, stream.bytes_total, stream.bytes_streamed) == (4242, 30000000, 1500000)
    assert stream.started_at == datetime.fromtimestamp(1796218552, tz=UTC)


@pytest.mark.parametrize(
    "text",
    ["slot|barman|maybe|1||", "slot|barman|true|lots||", "a|b\n", "gossip|x|y|z|w|v", "slot|barman|true|1|||extra"],
)
def test_malformed_primary_rows_are_refused_in_one_line(text):
    with pytest.raises(ProbeError, match="psql on the primary") as e:
        parse_primary(text)
    assert "\n" not in str(e.value)


def test_retention_policy_from_status():
    message = "enforced (mode: auto, retention: RECOVERY WINDOW OF 3 MONTHS, WAL retention: MAIN)"
    assert bj.parse_retention({"retention_policies": message}) == ("RECOVERY WINDOW OF 3 MONTHS", True)
    assert bj.parse_retention({"retention_policies": "not enforced"}) == (None, False)
    assert bj.parse_retention({}) == (None, False)


def _backup(day, status="DONE"):
    end = NOW - timedelta(days=day)
    return BackupInfo(end.strftime("%Y%m%dT%H%M%S"), status, end, 100, 1)


def test_redundancy_names_the_backups_a_new_one_pushes_out():
    backups = (_backup(1), _backup(10), _backup(20, "FAILED"), _backup(40))
    o = outlook("REDUNDANCY 2", backups, NOW)
    assert o.obsoleted == (backups[1].backup_id, backups[3].backup_id)
    assert "makes " + backups[1].backup_id in o.sentence() and "obsolete" in o.sentence()


def test_a_kept_backup_is_never_obsoleted():
    kept = BackupInfo("20261101T000000", "DONE", NOW - timedelta(days=31), 1, 1, retention_status="KEEP_FULL")
    assert outlook("REDUNDANCY 1", (_backup(1), kept), NOW).obsoleted == (_backup(1).backup_id,)


def test_recovery_window_keeps_the_newest_backup_older_than_the_window():
    backups = (_backup(5), _backup(80), _backup(95), _backup(120), _backup(150))
    o = outlook("RECOVERY WINDOW OF 3 MONTHS", backups, NOW)
    assert o.obsoleted == ()  # a new backup changes nothing under a time window
    assert o.outside_window == (backups[3].backup_id, backups[4].backup_id)  # 95 days old stays: it is needed
    assert "no backup obsolete" in o.sentence() and backups[3].backup_id in o.sentence()


def test_unknown_or_missing_policy_says_so():
    assert "cannot tell" in outlook("CUSTOM THING", (), NOW).sentence()
    assert "no retention policy" in outlook(None, (), NOW).sentence()


def test_backup_id_time():
    assert bj.backup_id_time("20261202T133551") == datetime(2026, 12, 2, 13, 35, 51, tzinfo=UTC)
    assert bj.backup_id_time("../../etc") is None and bj.backup_id_time("20261399T000000") is None

"""barman JSON parsing on recorded output (barman 3.19.1 from the lab)."""

import json
from pathlib import Path

import pytest

from montagu_console.errors import ProbeError
from montagu_console.probes import barman_json as bj

DATA = Path(__file__).resolve().parents[1] / "data"
S319 = DATA / "barman-3.19"


def text(name, gen=S319):
    return (gen / name).read_text()


def test_status_healthy():
    st = bj.parse_status(text("status.json"), "montagu")
    assert st["backups_number"] == "3"
    assert st["last_backup"] == "20261124T071355"
    assert bj.parse_size(st["current_size"]) == int(183.4 * 1024**2)


def test_status_pg_down_drops_size_and_flags_version():
    st = bj.parse_status(text("status.pg-down.json"), "montagu")
    assert "current_size" not in st
    assert st["pg_version"].startswith("FAILED")


def test_check_healthy_all_ok():
    checks = bj.parse_check(text("check.json"), "montagu")
    assert len(checks) == 22
    assert all(c.ok for c in checks)
    assert {c.name for c in checks} >= {"receive wal running", "replication slot", "failed backups"}


def test_check_receive_wal_stopped():
    failed = [c for c in bj.parse_check(text("check.receive-wal-stopped.json"), "montagu") if not c.ok]
    assert {c.name for c in failed} == {"receive wal running", "replication slot"}
    assert "not active" in next(c.hint for c in failed if c.name == "replication slot")


def test_list_backups_newest_first_with_epoch_end_times():
    backups = bj.parse_list_backups(text("list-backups.json"), "montagu")
    assert [b.backup_id for b in backups] == ["20261124T071355", "20261124T071337", "20261124T070918"]
    assert backups[0].end_time.timestamp() == 1795504437
    assert backups[0].size_bytes == 191623474 and backups[0].wal_size_bytes == 12437484


def test_list_backups_in_progress_has_started_entry_without_size():
    backups = bj.parse_list_backups(text("list-backups.in-progress.json"), "montagu")
    assert backups[0].status == "STARTED" and backups[0].end_time is None and backups[0].size_bytes is None


def test_list_backups_empty():
    assert bj.parse_list_backups(text("list-backups.no-backups.json"), "montagu") == ()


def test_replication_status_filters_on_slot():
    repl = bj.parse_replication_status(text("replication-status.json"), "montagu", "barman")
    assert repl["client"]["flush_lsn"] == "0/2B000000"
    assert bj.parse_replication_status(text("replication-status.json"), "montagu", "barman_aws")["client"] is None


def test_replication_status_pg_down_is_a_probe_error():
    with pytest.raises(ProbeError, match="Unable to connect to server montagu"):
        bj.parse_replication_status(text("replication-status.pg-down.json"), "montagu", "barman")


def test_diagnose_keeps_only_wal_facts():
    d = bj.parse_diagnose(text("diagnose.json"), "montagu")
    assert d["slot"] == {"name": "barman", "active": True, "restart_lsn": "0/2B000000"}
    assert d["last_archived_wal"] == "00000001000000000000002A"
    assert d["last_archived_at"].timestamp() == pytest.approx(1795504534.33, abs=0.01)
    assert "conninfo" not in repr(d)


@pytest.mark.parametrize("bad", ["", "Traceback (most recent call last):", "<html>"])
def test_non_json_output_names_the_command(bad):
    with pytest.raises(ProbeError, match="barman check: output is not JSON"):
        bj.parse_check(bad, "montagu")


def test_wrong_server_name_is_explained():
    with pytest.raises(ProbeError, match="no server 'science'"):
        bj.parse_status(text("status.json"), "science")


@pytest.mark.parametrize(
    "out,version",
    [("3.19.1 Barman by EnterpriseDB (www.enterprisedb.com)", "3.19.1"), ("3.4.0 Barman by EnterpriseDB", "3.4.0")],
)
def test_supported_versions(out, version):
    assert bj.parse_version(out) == version


@pytest.mark.parametrize("out", ["2.19 Barman by EnterpriseDB", "3.20.1 Barman", "4.0.0"])
def test_unsupported_version_is_refused(out):
    with pytest.raises(ProbeError, match="not a supported version"):
        bj.parse_version(out)


def test_unreadable_version():
    with pytest.raises(ProbeError, match="cannot read a version"):
        bj.parse_version("barman: command not found")


def test_lsn_arithmetic():
    assert bj.lsn_to_int("0/2B170708") - bj.lsn_to_int("0/2B000000") == 0x170708
    assert bj.lsn_to_int("1/0") == 1 << 32
    assert bj.lsn_to_int(None) is None and bj.lsn_to_int("junk") is None


# -- odd shapes (finding 12): one ProbeError line, never another exception ----------------------

ODD = [
    "[]",
    "[1, 2]",
    '"text"',
    "3",
    "null",
    "true",
    '{"montagu": []}',
    '{"montagu": "x"}',
    '{"montagu": 7}',
    '{"montagu": null}',
    '{"montagu": {"x": []}}',
    '{"montagu": {"x": {"status": []}}}',
    '{"montagu": {"x": {"hint": "no status"}}}',
    '{"montagu": [1, "a", null]}',
    '{"montagu": [{"backup_id": []}]}',
    '{"montagu": [{"backup_id": "b", "end_time_timestamp": "soon", "size_bytes": "12", "wal_size_bytes": 1e400}]}',
    '{"montagu": [{"backup_id": "b", "end_time_timestamp": 1e300}]}',
    '{"montagu": {"streaming_clients": "x", "server_lsn": [1]}}',
    '{"montagu": {"streaming_clients": [{"replication_slot": "barman", "flush_lsn": {"a": 1}}]}}',
    '{"_ERROR": "just a string"}',
    '{"_ERROR": [{"nested": true}]}',
    '{"servers": []}',
    '{"servers": {"montagu": []}}',
    '{"servers": {"montagu": {"status": []}}}',
    '{"servers": {"montagu": {"status": {"replication_slot": [1]}, "wals": []}}}',
    '{"servers": {"montagu": {"status": {"replication_slot": ["s", 1, 2]}, '
    '"wals": {"last_archived_wal_per_timeline": {"1": {"name": 5, "time": "x"}, "2": []}}}}}',
    '{"servers": {"montagu": {"wals": {"last_archived_wal_per_timeline": [1]}}}}',
]
PARSERS = {
    "status": lambda t: bj.parse_status(t, "montagu"),
    "check": lambda t: bj.parse_check(t, "montagu"),
    "list-backup": lambda t: bj.parse_list_backups(t, "montagu"),
    "replication-status": lambda t: bj.parse_replication_status(t, "montagu", "barman"),
    "diagnose": lambda t: bj.parse_diagnose(t, "montagu"),
}


def _plain(value):
    return value is None or isinstance(value, (str, int, bool)) or hasattr(value, "tzinfo")


@pytest.mark.parametrize("out", ODD)
@pytest.mark.parametrize("command", PARSERS)
def test_odd_shapes_give_a_probe_error_or_typed_facts(command, out):
    try:
        result = PARSERS[command](out)
    except ProbeError as e:
        assert "\n" not in str(e) and str(e).startswith(f"barman {command}")
        return
    # a tolerated shape comes back typed: what the probes read is a string, a number or None
    if command == "status":
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())
    elif command in ("check", "list-backup"):
        assert all(_plain(v) for item in result for v in vars(item).values())
    elif command == "replication-status":
        assert _plain(result["server_lsn"])
        assert result["client"] is None or all(_plain(v) for v in result["client"].values())
    else:
        assert all(_plain(result[k]) for k in ("current_lsn", "last_archived_wal", "last_archived_at"))
        assert result["slot"] is None or all(_plain(v) for v in result["slot"].values())


def test_list_backup_numbers_as_strings_are_unknown_not_a_crash():
    (b,) = bj.parse_list_backups(
        '{"montagu": [{"backup_id": "b", "end_time_timestamp": "soon", "size_bytes": "12", "wal_size_bytes": 1e400}]}',
        "montagu",
    )
    assert (b.end_time, b.size_bytes, b.wal_size_bytes) == (None, None, None)


def test_escapes_inside_json_strings_are_cleaned():
    out = json.dumps(
        {"montagu": {"archiver_errors": {"status": "FAILED", "hint": "\u001b]0;pwned\u0007[/] \u001b[2J"}}}
    )
    (check,) = bj.parse_check(out, "montagu")
    assert check.hint == "\ufffd[/] \ufffd" and not check.ok

"""The same parsers on recorded output of Debian's barman 3.4.0 (the older field names)."""

from pathlib import Path

import pytest

from montagu_console.errors import ProbeError
from montagu_console.probes import barman_json as bj

S34 = Path(__file__).resolve().parents[1] / "data" / "barman-3.4"


def text(name):
    return (S34 / name).read_text()


def test_version():
    assert bj.parse_version(text("version.txt")) == "3.4.0"


def test_list_backup_done_and_failed():
    backups = bj.parse_list_backups(text("list-backups.failed.json"), "montagu")
    failed = [b for b in backups if b.status == "FAILED"]
    done = [b for b in backups if b.status == "DONE"]
    assert failed and failed[0].end_time is None and failed[0].size_bytes is None
    assert done and all(b.end_time and b.size_bytes and b.name is None for b in done)


def test_list_backup_and_list_backups_agree():
    assert bj.parse_list_backups(text("list-backup.json"), "montagu") == bj.parse_list_backups(
        text("list-backups.json"), "montagu"
    )


def test_check_failed_backup_and_receive_wal_stopped():
    failed = {c.name for c in bj.parse_check(text("check.failed-backup.json"), "montagu") if not c.ok}
    assert failed == {"failed backups"}
    stopped = {c.name for c in bj.parse_check(text("check.receive-wal-stopped.json"), "montagu") if not c.ok}
    assert stopped == {"replication slot", "receive wal running"}


def test_status_pg_down():
    assert bj.parse_status(text("status.pg-down.json"), "montagu")["pg_version"].startswith("FAILED")


def test_diagnose_has_slot_and_archive_time():
    d = bj.parse_diagnose(text("diagnose.json"), "montagu")
    assert d["slot"]["name"] == "barman" and d["slot"]["active"] is True
    assert d["last_archived_wal"] and d["last_archived_at"] is not None and d["current_lsn"]
    stopped = bj.parse_diagnose(text("diagnose.receive-wal-stopped.json"), "montagu")
    assert stopped["slot"]["active"] is False


def test_diagnose_pg_down_has_no_slot():
    d = bj.parse_diagnose(text("diagnose.pg-down.json"), "montagu")
    assert d["slot"] is None and d["current_lsn"] is None


def test_replication_status_pg_down():
    with pytest.raises(ProbeError):
        bj.parse_replication_status(text("replication-status.pg-down.json"), "montagu", "barman")


def test_replication_status_no_clients():
    repl = bj.parse_replication_status(text("replication-status.receive-wal-stopped.json"), "montagu", "barman")
    assert repl["client"] is None and repl["server_lsn"]

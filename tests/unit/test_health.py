"""Every row of the health rules table (spec section 4), on typed facts with a fixed clock."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from montagu_console import health
from montagu_console.config import BarmanConfig, NightlyConfig, ScienceConfig, StarportConfig, WalConfig
from montagu_console.snapshot import (
    BackupInfo,
    BarmanCheck,
    BarmanFacts,
    Proof,
    RestoreFacts,
    StarportFacts,
    StarportTarget,
    Status,
    WalFacts,
)

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
DAY, HOUR, MIB = timedelta(days=1), timedelta(hours=1), 1024**2


def backup(age, status="DONE", bid="20261124T071355"):
    return BackupInfo(bid, status, NOW - age if age is not None else None, 190 * MIB, 12 * MIB)


def barman_facts(**kw):
    base = dict(
        server="montagu",
        barman_version="3.19.1",
        pg_reachable=True,
        pg_version="15.18",
        data_size_bytes=183 * MIB,
        checks=(BarmanCheck("postgresql", True, ""), BarmanCheck("failed backups", True, "there are 0 failed backups")),
        backups=(backup(2 * HOUR),),
        backup_running=False,
        container_running=True,
    )
    base.update(kw)
    return BarmanFacts(**base)


def judge_barman(**kw):
    return health.judge_barman(barman_facts(**kw), BarmanConfig(host="annex", container="barman-montagu"), NOW)


def test_barman_ok_summary_and_facts():
    r = judge_barman()
    assert r.status is Status.OK
    assert "1 backup," in r.summary and "2 hours" in r.summary
    assert r.facts["last_backup_age_seconds"] == 7200
    assert r.facts["last_backup_end"] == (NOW - 2 * HOUR).isoformat()
    assert set(r.facts) >= {
        "server",
        "backups_available",
        "last_backup_id",
        "last_backup_end",
        "last_backup_age_seconds",
        "failed_checks",
        "backup_running",
        "data_size_bytes",
    }


def test_barman_pg_unreachable_is_critical():
    r = judge_barman(pg_reachable=False)
    assert r.status is Status.CRITICAL and "PostgreSQL unreachable" in r.summary


def test_barman_failed_check_is_critical():
    r = judge_barman(checks=(BarmanCheck("replication slot", False, "slot not active"),))
    assert r.status is Status.CRITICAL and "replication slot" in r.summary
    assert r.facts["failed_checks"] == ["replication slot"]


def test_barman_no_backups_is_critical():
    r = judge_barman(backups=())
    assert r.status is Status.CRITICAL and "no backups" in r.summary


@pytest.mark.parametrize("days,status", [(31.9, Status.OK), (32.5, Status.WARNING), (35.5, Status.CRITICAL)])
def test_barman_backup_age(days, status):
    r = judge_barman(backups=(backup(timedelta(days=days)),))
    assert r.status is status
    if status is not Status.OK:
        assert "last backup" in r.summary and "days" in r.summary


def test_barman_failed_backup_in_list_is_warning():
    r = judge_barman(
        backups=(backup(HOUR), backup(None, "FAILED", "20261101T000000")),
        checks=(BarmanCheck("failed backups", False, "there are 1 failed backups"),),
    )
    assert r.status is Status.WARNING and "20261101T000000" in r.summary


def test_barman_started_backup_is_not_counted_and_shown_running():
    r = judge_barman(backups=(backup(None, "STARTED", "20261125T050000"), backup(3 * HOUR)), backup_running=True)
    assert r.status is Status.OK and r.facts["backup_running"] is True
    assert r.facts["last_backup_id"] == "20261124T071355" and "backup is running" in r.summary


def wal(**kw):
    base = dict(
        slot_name="barman",
        receive_wal_running=True,
        slot_active=True,
        lag_bytes=2 * MIB,
        server_lsn="0/2B170708",
        flush_lsn="0/2B000000",
        streaming_state="streaming",
        last_archived_wal="00000001000000000000002A",
        last_archived_at=NOW - timedelta(seconds=70),
    )
    base.update(kw)
    return health.judge_wal(WalFacts(**base), WalConfig(), NOW)


def test_wal_ok():
    r = wal()
    assert r.status is Status.OK and "lag 2.0 MiB" in r.summary
    assert r.facts["last_archived_age_seconds"] == 70 and r.facts["receive_wal_running"] is True


def test_wal_receive_wal_not_running_is_critical():
    r = wal(receive_wal_running=False, slot_active=False)
    assert r.status is Status.CRITICAL and "receive-wal not running" in r.summary


def test_wal_slot_inactive_is_critical():
    r = wal(slot_active=False)
    assert r.status is Status.CRITICAL and "slot barman inactive" in r.summary


@pytest.mark.parametrize(
    "lag,status", [(63 * MIB, Status.OK), (65 * MIB, Status.WARNING), (1025 * MIB, Status.CRITICAL)]
)
def test_wal_lag(lag, status):
    assert wal(lag_bytes=lag).status is status


@pytest.mark.parametrize("secs,status", [(599, Status.OK), (601, Status.WARNING), (3601, Status.CRITICAL)])
def test_wal_archive_age(secs, status):
    r = wal(last_archived_at=NOW - timedelta(seconds=secs))
    assert r.status is status


def test_wal_unknown_archive_time_is_never_ok():
    assert wal(last_archived_at=None).status is Status.WARNING


def starport(nightly_age=10 * HOUR, target_age=9 * HOUR, carried=None, **kw):
    nightly_at = NOW - nightly_age if nightly_age is not None else None
    target = StarportTarget(
        "barman_to_starport",
        NOW - target_age if target_age is not None else None,
        None,
        carried if carried is not None else nightly_at,
    )
    proven = Proof("p-1", None, NOW - HOUR, "passed", nightly_at, NOW - 2 * HOUR, (), None, "prove-nightly")
    facts = StarportFacts(nightly_at, None, (target,), proof=proven, last_passed_proof=proven)  # a proven copy
    facts = replace(facts, **kw)
    return health.judge_starport(facts, NightlyConfig(host="annex", volume="v"), StarportConfig(host="annex"), NOW)


def test_starport_ok():
    r = starport()
    assert r.status is Status.OK
    assert r.facts["nightly_age_seconds"] == 36000
    assert r.facts["targets"][0] == {
        "name": "barman_to_starport",
        "last_backup": (NOW - 9 * HOUR).isoformat(),
        "age_seconds": 32400,
        "error": None,
        "carried_restore_at": (NOW - 10 * HOUR).isoformat(),
    }


@pytest.mark.parametrize("hours,status", [(25, Status.OK), (27, Status.WARNING), (51, Status.CRITICAL)])
def test_starport_nightly_age(hours, status):
    r = starport(nightly_age=timedelta(hours=hours), target_age=timedelta(hours=hours - 1))
    assert r.status is status


@pytest.mark.parametrize("hours,status", [(27, Status.WARNING), (51, Status.CRITICAL)])
def test_starport_target_age(hours, status):
    r = starport(nightly_age=timedelta(hours=hours + 1), target_age=timedelta(hours=hours))
    assert (r.status is status and "barman_to_starport" in r.summary) or "nightly" in r.summary


def test_starport_never_backed_up_is_critical():
    r = starport(targets=(StarportTarget("barman_to_starport", None),))
    assert r.status is Status.CRITICAL and "never backed up" in r.summary


def test_starport_metadata_missing_or_corrupt_is_critical():
    r = starport(targets=(StarportTarget("barman_to_starport", None, "meta/metadata.json is corrupt: b'{'"),))
    assert r.status is Status.CRITICAL and "corrupt" in r.summary


def test_starport_nightly_timestamp_missing_is_critical():
    r = starport(nightly_restored_at=None, nightly_error=".barman-last-restore missing in volume v")
    assert r.status is Status.CRITICAL and ".barman-last-restore missing" in r.summary


def test_starport_copy_older_than_nightly_is_warning():
    r = starport(nightly_age=2 * HOUR, target_age=20 * HOUR, carried=NOW - 21 * HOUR)
    assert r.status is Status.WARNING and "older than the nightly copy" in r.summary


def restore(**kw):
    base = dict(
        container="montagu-db",
        container_status="running",
        phase="ready",
        percent=100.0,
        eta_seconds=0,
        db_accepting=True,
        in_recovery=False,
        data_restored_from=NOW - 3 * DAY,
        last_restore_at=None,
        last_restore_failed=False,
        redo_lsn=None,
        target_lsn=None,
    )
    base.update(kw)
    return health.judge_restore(RestoreFacts(**base), ScienceConfig(host="science"), NOW)


def test_restore_ok():
    r = restore()
    assert r.status is Status.OK and "3 days" in r.summary
    assert set(r.facts) >= {"phase", "percent", "eta_seconds", "last_restore_at", "data_restored_from", "db_accepting"}


def test_restore_last_restore_failed_is_critical():
    assert restore(last_restore_failed=True).status is Status.CRITICAL


def test_restore_not_accepting_after_restore_is_critical():
    r = restore(container_status="exited", phase="failed", db_accepting=False)
    assert r.status is Status.CRITICAL and "not accepting" in r.summary


def test_restore_missing_container_is_critical():
    assert restore(container_status=None, phase="failed", db_accepting=None).status is Status.CRITICAL


def test_restore_old_data_is_warning():
    r = restore(data_restored_from=NOW - 36 * DAY)
    assert r.status is Status.WARNING and "36 days" in r.summary


def test_restore_in_progress_shows_percent():
    r = restore(phase="redo", percent=42.0, eta_seconds=120, db_accepting=False)
    assert r.status is Status.WARNING and "redo 42%" in r.summary


def test_unknown_is_never_ok():
    r = health.unknown("wal", "annex: barman: timed out after 30 s", NOW)
    assert r.status is Status.UNKNOWN and r.summary == "annex: barman: timed out after 30 s"


def test_worst_status_ordering():
    assert Status.worst([Status.OK, Status.WARNING]) is Status.WARNING
    assert Status.worst([Status.UNKNOWN, Status.WARNING]) is Status.UNKNOWN
    assert Status.worst([Status.UNKNOWN, Status.CRITICAL]) is Status.CRITICAL
    assert Status.worst([]) is Status.UNKNOWN


def drill(outcome="passed", days=10):
    return {
        "drill_id": "20261115T000000Z-drill-abcd",
        "outcome": outcome,
        "finished_at": (NOW - days * DAY).isoformat(),
        "rto_seconds": 60.0,
        "rpo_seconds": 30.0,
    }


def test_restore_no_drill_is_a_fact_not_a_warning_by_default():
    r = restore()
    assert r.status is Status.OK and r.facts["last_drill"] is None


def test_restore_no_drill_warns_where_required():
    from dataclasses import replace as _replace

    r = health.judge_restore(_replace(restore().detail), ScienceConfig(host="science", require_drill=True), NOW)
    assert r.status is Status.WARNING and "no restore drill on record" in r.summary


def test_restore_recent_passed_drill_is_ok():
    r = restore(last_drill=drill())
    assert r.status is Status.OK and r.facts["last_drill"]["outcome"] == "passed"
    assert r.facts["last_drill"]["age_seconds"] == 10 * 86400


def test_restore_failed_last_drill_warns():
    r = restore(last_drill=drill("failed", 1))
    assert r.status is Status.WARNING and "last restore drill failed" in r.summary


def test_restore_old_drill_warns():
    r = restore(last_drill=drill(days=91))
    assert r.status is Status.WARNING and "due every 90 days" in r.summary


# -- finding 7: a stamp in the future is a clock problem, never fresh ---------------------------

FUTURE = NOW + timedelta(days=365 * 73)  # a backup "ending" in 2099


def test_barman_backup_in_the_future_is_a_warning_not_fresh():
    r = judge_barman(backups=(backup(NOW - FUTURE),))
    assert r.status is Status.WARNING
    assert "in the future: clock skew?" in r.summary and "20261124T071355" in r.summary
    assert r.facts["last_backup_age_seconds"] < 0


def test_a_few_seconds_ahead_is_within_tolerance():
    assert judge_barman(backups=(backup(-timedelta(seconds=60)),)).status is Status.OK
    assert judge_barman(backups=(backup(-timedelta(seconds=301)),)).status is Status.WARNING


def test_future_stamp_never_hides_a_critical_of_another_fact():
    r = judge_barman(backups=(backup(NOW - FUTURE),), pg_reachable=False)
    assert r.status is Status.CRITICAL and "clock skew" in r.summary


def test_wal_archived_in_the_future_is_a_warning():
    r = wal(last_archived_at=NOW + HOUR)
    assert r.status is Status.WARNING and "last archived WAL 00000001000000000000002A" in r.summary
    assert "in the future: clock skew?" in r.summary


@pytest.mark.parametrize("which", ["nightly", "target"])
def test_starport_stamps_in_the_future_are_warnings(which):
    if which == "nightly":
        r = starport(nightly_age=-2 * DAY, target_age=HOUR, carried=NOW - HOUR)
        assert "nightly copy is" in r.summary
    else:
        r = starport(target_age=-2 * DAY)
        assert "barman_to_starport is" in r.summary
    assert r.status is Status.WARNING and "in the future: clock skew?" in r.summary


def test_restore_data_in_the_future_is_a_warning():
    r = restore(data_restored_from=NOW + 10 * DAY)
    assert r.status is Status.WARNING and "science data" in r.summary and "clock skew" in r.summary


def test_drill_in_the_future_is_a_warning():
    r = restore(last_drill=drill(days=-3))
    assert r.status is Status.WARNING and "last restore drill" in r.summary and "clock skew" in r.summary

"""Proofs of the nightly copy: the starport's proof rules and reading state_dir/proofs.jsonl."""

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from montagu_console import check, health
from montagu_console.actions import service
from montagu_console.config import NightlyConfig, StarportConfig
from montagu_console.probes import proofs, space
from montagu_console.snapshot import Proof, Snapshot, StarportFacts, StarportTarget, Status
from montagu_console.tui import present

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
COPY = NOW - 3 * HOUR  # the current copy's .barman-last-restore


def proof(outcome="passed", copy=COPY, at=NOW - 3 * HOUR, checks=None, reason=None, how="nightly-recover"):
    if checks is None:
        checks = ({"name": "api_access_log has rows", "value": "12", "expect": "> 0", "passed": outcome == "passed"},)
    return Proof(
        proof_id=f"p-{at:%H%M%S}",
        run_id="20261125T030000Z-nightly-recover-1a2b",
        proven_at=at,
        outcome=outcome,
        copy_restored_at=copy,
        data_newest=at - timedelta(minutes=1),
        checks=tuple(checks),
        reason=reason,
        how=how,
    )


def judge(current=None, last_passed=None, copy=COPY, error=None, max_age=50, **thresholds):
    target = StarportTarget("barman_to_starport", NOW - 2 * HOUR, None, copy)
    facts = StarportFacts(
        copy,
        error,
        (target,),
        proof=current,
        last_passed_proof=last_passed,
    )
    nightly = NightlyConfig(host="annex", volume="v", thresholds={"proof_max_age_hours": max_age, **thresholds})
    return health.judge_starport(facts, nightly, StarportConfig(host="starport"), NOW)


# -- rules ------------------------------------------------------------------------------------------


def test_a_passed_proof_of_this_copy_is_ok_and_said():
    p = proof()
    r = judge(p, p)
    assert r.status is Status.OK
    assert "proven restorable 3 hours ago" in r.summary
    assert r.facts["proven_at"] == p.proven_at.isoformat()
    assert r.facts["proven_data_newest"] == p.data_newest.isoformat()
    assert r.facts["proof_outcome"] == "passed" and r.facts["proof_age_seconds"] == 3 * 3600


def test_a_failed_proof_of_this_copy_is_critical_naming_the_check():
    p = proof("failed")
    r = judge(p, proof(copy=COPY - 24 * HOUR, at=NOW - 27 * HOUR))
    assert r.status is Status.CRITICAL
    assert "failed its proof" in r.summary and "'api_access_log has rows'" in r.summary
    assert r.facts["proof_outcome"] == "failed" and r.facts["proof_failing"] == ["api_access_log has rows"]


def test_a_failed_proof_without_a_failing_check_gives_its_reason():
    p = proof("failed", checks=(), reason="science.rpo_sql gave no timestamp: empty result")
    r = judge(p, None)
    assert r.status is Status.CRITICAL and "science.rpo_sql gave no timestamp" in r.summary


def test_a_copy_proven_too_long_ago_warns():
    p = proof(at=NOW - 51 * HOUR, copy=NOW - 52 * HOUR)
    r = judge(p, p, copy=NOW - 52 * HOUR, warning_hours=90, critical_hours=100)
    assert r.status is Status.WARNING
    assert "not proven restorable since 2026-11-23 03:00 UTC (2 days ago; limit 50 h)" in r.summary


def test_the_proof_age_limit_is_the_config_key():
    p = proof(at=NOW - 20 * HOUR)
    assert judge(p, p, max_age=50).status is Status.OK
    r = judge(p, p, max_age=10)
    assert r.status is Status.WARNING and "limit 10 h" in r.summary


def test_a_proof_of_an_older_copy_does_not_prove_this_one():
    older = proof(copy=COPY - 24 * HOUR, at=NOW - 26 * HOUR)
    r = judge(None, older)
    assert r.status is Status.WARNING
    assert "a proof of an older copy; this one has none" in r.summary
    assert r.facts["proof_outcome"] is None and r.facts["proven_at"] is None


def test_a_copy_never_proven_is_a_warning_not_ok_by_default():
    r = judge(None, None)
    assert r.status is Status.WARNING and "never proven restorable" in r.summary
    assert r.facts["proof_outcome"] is None and r.facts["proven_at"] is None and r.facts["proven_data_newest"] is None


def test_a_copy_without_its_stamp_and_a_failed_proof_is_critical_for_both():
    p = proof("failed", copy=None)
    r = judge(p, None, copy=None, error=".barman-last-restore missing in volume v (the copy is not usable)")
    assert r.status is Status.CRITICAL
    assert ".barman-last-restore missing" in r.summary and "failed its proof" in r.summary


# -- proofs.jsonl -----------------------------------------------------------------------------------


def line(p: Proof) -> str:
    return json.dumps(p.to_dict()) + "\n"


def test_no_file_is_no_proof(tmp_path):
    assert proofs.read_proofs(tmp_path) == []
    assert proofs.copy_proven(tmp_path, COPY) is False
    assert proofs.copy_proven(tmp_path, None) is None


def test_records_round_trip_with_exactly_the_contract_fields(tmp_path):
    p = proof()
    assert tuple(p.to_dict()) == proofs.FIELDS
    (tmp_path / "proofs.jsonl").write_text(line(p))
    assert proofs.read_proofs(tmp_path) == [p]


def test_bad_lines_are_skipped_and_the_good_ones_kept(tmp_path):
    good = proof()
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({"outcome": "maybe", "proven_at": NOW.isoformat()}),
        json.dumps({"outcome": "passed", "proven_at": "yesterday"}),
        json.dumps({"outcome": "passed", "proven_at": "2026-11-25T03:00:00"}),  # no zone
        json.dumps({"outcome": "passed", "proven_at": NOW.isoformat(), "checks": "all of them"}),
        json.dumps({"outcome": "passed", "proven_at": NOW.isoformat(), "copy_restored_at": 12}),
        '{"outcome": "passed", "proven_at": "' + NOW.isoformat() + '", "checks": [',
    ]
    data = "\n".join(bad).encode() + b"\n\xff\xfe garbage\n" + line(good).encode()
    (tmp_path / "proofs.jsonl").write_bytes(data)
    assert proofs.read_proofs(tmp_path) == [good]


def test_control_characters_in_a_record_are_cleaned(tmp_path):
    p = proof("failed", checks=({"name": "evil\x1b]0;title\x07", "value": None, "expect": "> 0", "passed": False},))
    (tmp_path / "proofs.jsonl").write_text(line(p))
    (read,) = proofs.read_proofs(tmp_path)
    assert "\x1b" not in read.failing[0] and "\x07" not in read.failing[0]


def test_a_huge_file_is_read_from_its_tail_only(tmp_path):
    old = proof("failed", at=NOW - 1000 * HOUR)
    newest = proof(at=NOW - HOUR)
    path = tmp_path / "proofs.jsonl"
    with open(path, "w") as f:
        f.write(line(old))
        f.write(("x" * 1000 + "\n") * 3000)  # 3 MB of junk, beyond the tail
        f.write(line(newest))
    got = proofs.read_proofs(tmp_path)
    assert got == [newest]
    assert proofs.read_proofs(tmp_path, tail_bytes=len(line(newest)) + 10) == [newest]


def test_a_fifo_or_a_symlink_is_not_read(tmp_path):
    target = tmp_path / "elsewhere.jsonl"
    target.write_text(line(proof()))
    (tmp_path / "proofs.jsonl").symlink_to(target)
    assert proofs.read_proofs(tmp_path) == []
    fifo_dir = tmp_path / "fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "proofs.jsonl")
    assert proofs.read_proofs(fifo_dir) == []  # returns at once, never blocks


def test_a_new_line_is_seen_on_the_next_read(tmp_path):
    path = tmp_path / "proofs.jsonl"
    first, second = proof("failed", at=NOW - 2 * HOUR), proof(at=NOW - HOUR)
    path.write_text(line(first))
    assert proofs.read_proofs(tmp_path) == [first]
    with open(path, "a") as f:
        f.write(line(second))
    assert proofs.read_proofs(tmp_path) == [first, second]


@pytest.mark.parametrize(
    "stamp,expected",
    [(COPY, "newest"), (COPY - HOUR, "older"), (COPY + HOUR, None)],
)
def test_the_proof_of_a_copy_is_the_newest_with_its_stamp(stamp, expected):
    older = proof(copy=COPY - HOUR, at=NOW - 4 * HOUR)
    failed = proof("failed", copy=COPY, at=NOW - 3 * HOUR)
    newest = proof(copy=COPY, at=NOW - 2 * HOUR)
    found = proofs.proof_of_copy([older, failed, newest], stamp)
    assert found == {"newest": newest, "older": older, None: None}[expected]


def test_a_copy_stamp_matches_whatever_its_written_form():
    p = proof(copy=datetime.fromisoformat("2026-11-25 03:00:00.123456+00:00"))
    same = datetime.fromisoformat("2026-11-25T04:00:00.123456+01:00")
    assert proofs.proof_of_copy([p], same) == p


def test_an_unstamped_copy_takes_only_the_newest_proof_when_it_is_unstamped_too():
    unstamped = proof("failed", copy=None, at=NOW - HOUR)
    stamped = proof(copy=COPY, at=NOW - 30 * 60 * timedelta(seconds=1))
    assert proofs.proof_of_copy([unstamped], None) == unstamped
    assert proofs.proof_of_copy([unstamped, stamped], None) is None


def test_science_on_a_proven_copy(tmp_path):
    (tmp_path / "proofs.jsonl").write_text(line(proof("failed", copy=COPY - HOUR)) + line(proof()))
    assert proofs.copy_proven(tmp_path, COPY) is True
    assert proofs.copy_proven(tmp_path, COPY - HOUR) is False


# -- what check, the TUI and the preflight make of it -----------------------------------------------


def snapshot_with(result):
    return Snapshot(NOW, {"starport": result})


@pytest.mark.parametrize("outcome,passed", [("passed", "1.0"), ("failed", "0.0")])
def test_prometheus_and_nagios_carry_the_proof(tmp_path, outcome, passed):
    p = proof(outcome)
    snap = snapshot_with(judge(p, p if outcome == "passed" else None))
    path = tmp_path / "m.prom"
    check.write_prometheus(snap, path)
    text = path.read_text()
    assert f"montagu_starport_proof_passed {passed}" in text
    assert "montagu_starport_proof_age_seconds 10800.0" in text
    assert " proof_age=10800s;;;" in check.to_nagios(snap).splitlines()[0]


def test_prometheus_and_nagios_without_a_proof_have_no_proof_figures(tmp_path):
    snap = snapshot_with(judge(None, None))
    path = tmp_path / "m.prom"
    check.write_prometheus(snap, path)
    assert "montagu_starport_proof" not in path.read_text()
    assert "proof_age" not in check.to_nagios(snap)


def test_the_panel_says_what_the_proof_says():
    p = proof()
    facts = judge(p, p).facts
    lines = present.proof_lines(facts, NOW)
    assert lines[0] == "proven restorable 3 hours ago" and lines[1].startswith("newest data 2026-11-25")
    failed = judge(proof("failed"), None).facts
    assert present.proof_lines(failed, NOW) == ["proof FAILED 3 hours ago: api_access_log has rows"]
    assert present.proof_lines(judge(None, None).facts, NOW) == ["not proven (run prove-nightly)"]


def test_space_for_the_scratch_copy():
    gib = 1024**3
    assert service.space_problem(10 * gib, 13 * gib) is None
    problem = service.space_problem(10 * gib, 11 * gib)
    assert problem is not None and "1.2 x the copy" in problem
    assert space.du_bytes("112340\t/nightly\n") == 112340 * 1024
    assert space.du_bytes("du: cannot read directory") is None

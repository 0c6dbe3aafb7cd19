"""The room under the nightly copy: parsing what the space script prints, and the rule that
the starport panel and the nightly recover's preflight share."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from montagu_console import check, health
from montagu_console.config import NIGHTLY_DUMP_DIR, NightlyConfig, StarportConfig
from montagu_console.probes.space import SPACE_SCRIPT, parse_space
from montagu_console.snapshot import NightlySpace, Snapshot, StarportFacts, StarportTarget, Status

MIB = 1024**2
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def nightly(**thresholds) -> NightlyConfig:
    return NightlyConfig(host="annex", volume="montagu_db_volume", thresholds=thresholds)


def space(free_mib: int, copy_mib: int = 100, dump_mib: int = 0) -> NightlySpace:
    return NightlySpace("volume montagu_db_volume", free_mib * MIB, copy_mib * MIB, dump_mib * MIB)


def test_the_script_on_a_real_directory(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "data").write_bytes(b"x" * 300_000)
    (tmp_path / NIGHTLY_DUMP_DIR).mkdir()
    (tmp_path / NIGHTLY_DUMP_DIR / "part").write_bytes(b"y" * 200_000)
    out = subprocess.run(
        ["sh", "-c", SPACE_SCRIPT, "sh", str(tmp_path), NIGHTLY_DUMP_DIR], capture_output=True, text=True, check=True
    ).stdout
    s = parse_space("here", out)
    assert 200_000 <= s.dump_bytes < 300_000
    assert 300_000 <= s.copy_bytes < 400_000  # without the dump
    assert s.free_bytes > 0 and s.available_bytes == s.free_bytes + s.dump_bytes


def test_no_dump_directory_counts_zero(tmp_path):
    out = subprocess.run(
        ["sh", "-c", SPACE_SCRIPT, "sh", str(tmp_path), NIGHTLY_DUMP_DIR], capture_output=True, text=True, check=True
    ).stdout
    assert parse_space("here", out).dump_bytes == 0


@pytest.mark.parametrize(
    "output",
    ["", "only one line", "a\nb\nc\nd", "/dev/x 100 50 abc 50% /n\n12\t.\n0 none", "/dev/x 100 50 50 50% /n\n.\n0"],
)
def test_output_that_is_not_the_scripts_is_refused(output):
    with pytest.raises(ValueError):
        parse_space("here", output)


def test_room_for_the_factor_is_ok():
    assert health.nightly_space_findings(space(120), nightly()) == []


def test_less_than_the_factor_is_a_warning_naming_the_volume_and_sizes():
    [(status, text)] = health.nightly_space_findings(space(110), nightly())
    assert status is Status.WARNING
    assert text.startswith("volume montagu_db_volume nearly full: 110.0 MiB free beside the copy of 100.0 MiB")
    assert "needs 1.2 x the copy = 120.0 MiB" in text


def test_less_than_one_copy_is_critical():
    [(status, text)] = health.nightly_space_findings(space(40), nightly())
    assert status is Status.CRITICAL and "volume montagu_db_volume full:" in text


def test_a_leftover_dump_counts_as_room_and_is_named():
    assert health.nightly_space_findings(space(20, dump_mib=100), nightly()) == []
    [(status, text)] = health.nightly_space_findings(space(20, dump_mib=50), nightly())
    assert status is Status.CRITICAL and "50.0 MiB in a dump the next recover removes" in text


def test_the_factor_is_configurable():
    assert health.nightly_space_findings(space(110), nightly(free_space_factor=1.1)) == []
    assert health.nightly_space_findings(space(150), nightly(free_space_factor=2))[0][0] is Status.WARNING


def judged(facts_space=None, error=None):
    target = StarportTarget("barman_to_starport", NOW - timedelta(hours=2), None, NOW - timedelta(hours=3))
    facts = StarportFacts(NOW - timedelta(hours=3), None, (target,), space=facts_space, space_error=error)
    return health.judge_starport(facts, nightly(), StarportConfig(host="annex"), NOW)


def test_the_starport_panel_carries_the_room_and_its_finding():
    r = judged(space(40))
    assert r.status is Status.CRITICAL and "volume montagu_db_volume full" in r.summary
    assert r.facts["nightly_free_bytes"] == 40 * MIB and r.facts["nightly_copy_bytes"] == 100 * MIB
    assert r.facts["nightly_needed_bytes"] == 120 * MIB


def test_room_that_cannot_be_read_is_a_warning_not_ok():
    r = judged(None, "annex: no running container mounts volume montagu_db_volume")
    assert r.status is Status.WARNING
    assert "room for the next nightly recover unknown: annex: no running container" in r.summary
    assert r.facts["nightly_free_bytes"] is None


def test_prometheus_and_nagios_carry_the_room(tmp_path):
    snap = Snapshot(NOW, {"starport": judged(space(40))})
    path = tmp_path / "m.prom"
    check.write_prometheus(snap, path)
    samples = dict(line.split() for line in path.read_text().splitlines() if not line.startswith("#"))
    assert float(samples["montagu_nightly_free_bytes"]) == 40 * MIB
    assert float(samples["montagu_nightly_copy_bytes"]) == 100 * MIB
    assert f" nightly_free={40 * MIB}B;;;" in check.to_nagios(snap).splitlines()[0]


def test_without_the_room_there_are_no_room_figures(tmp_path):
    snap = Snapshot(NOW, {"starport": judged(None, "no container")})
    path = tmp_path / "m.prom"
    check.write_prometheus(snap, path)
    assert "montagu_nightly_free_bytes" not in path.read_text()
    assert "nightly_free" not in check.to_nagios(snap)

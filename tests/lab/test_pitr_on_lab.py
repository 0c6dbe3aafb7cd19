"""Point-in-time recovery on the real lab: a target between two of the writer's commits lands on
the earlier one, the nightly copy and science are untouched, `runs cancel` removes the scratch
copy, and the preflight refuses a target in the future, one before the oldest backup, and
read-only mode before any step.

Run under the actions lock (common to every helper's action tests):
``flock /tmp/montagu-lab-actions.lock MONTAGU_KEEP_LAB=1 .venv/bin/pytest tests/lab/test_pitr_on_lab.py``
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from montagu_console.actions.verify import parse_pg_time
from montagu_console.lab.layout import (
    NIGHTLY_VOLUME,
    PG_BIN,
    PITR_VOLUME,
    SCIENCE_CONTAINER,
    SCIENCE_VOLUME,
    TIMESTAMP_FILE,
)
from tests.conftest import config_variant, console, wait_for

pytestmark = pytest.mark.lab

CONTAINER = "montagu-pitr"


def state_dir(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["state_dir"])


def pitr_id(output: str) -> str:
    m = re.search(r"run (\S+-pitr-[0-9a-f]{4}) started", output)
    assert m, output
    return m.group(1)


def report(config: Path, run_id: str) -> dict:
    return json.loads((state_dir(config) / "pitr" / run_id / "report.json").read_text())


def run_state(config: Path, run_id: str) -> str:
    return json.loads((state_dir(config) / "runs" / run_id / "run.json").read_text())["state"]


def two_consecutive_commits(lab) -> tuple[datetime, datetime]:
    """The timestamps of two consecutive rows the lab's writer committed (the newest pair)."""
    rows = lab.psql('SELECT "timestamp" FROM api_access_log ORDER BY id DESC LIMIT 2').splitlines()
    later, earlier = (parse_pg_time(r) for r in rows)
    return earlier, later


def untouched_facts(lab) -> dict:
    """What a PITR must leave as it was: the nightly copy's and science's .barman-last-restore,
    science's container state."""
    inspect = json.loads(lab.docker("inspect", SCIENCE_CONTAINER).stdout)[0]["State"]
    return {
        "nightly": (lab.volume_path(NIGHTLY_VOLUME) / TIMESTAMP_FILE).read_text(),
        "science": (lab.volume_path(SCIENCE_VOLUME) / TIMESTAMP_FILE).read_text(),
        "science_container": (inspect["Status"], inspect["StartedAt"], inspect["Pid"]),
    }


def scratch_newest(lab) -> datetime:
    out = lab.docker("exec", CONTAINER, "psql", "-XAtqc", 'SELECT max("timestamp") FROM api_access_log')
    assert out.returncode == 0, out.stderr
    return parse_pg_time(out.stdout)


def test_pitr_between_two_commits_lands_on_the_earlier(lab, lab_config):
    earlier, later = wait_for(
        lambda: (pair := two_consecutive_commits(lab))[1] > pair[0] and pair,
        timeout=30,
        what="two rows from the lab's writer",
    )
    target = earlier + (later - earlier) / 2
    before = untouched_facts(lab)
    r = console(lab_config, "run", "pitr", "--target-time", target.isoformat(), "--yes", timeout=600)
    run_id = pitr_id(r.stdout)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        rep = report(lab_config, run_id)
        assert rep["outcome"] == "passed" and rep["pitr_id"] == run_id
        assert parse_pg_time(rep["target_time"]) == target
        assert parse_pg_time(rep["achieved_time"]) == earlier  # the commit before T, not the one after
        assert rep["backup_id"] and rep["seconds"] > 0 and rep["verify"] and all(v["passed"] for v in rep["verify"])
        assert rep["port"] == yaml.safe_load(lab_config.read_text())["pitr"]["port"]
        assert f"psql -h 127.0.0.1 -p {rep['port']} -U vimc montagu" in r.stdout
        assert f"runs cancel {run_id}" in r.stdout
        assert run_state(lab_config, run_id) == "running"  # kept up for the operator
        assert scratch_newest(lab) == earlier
        ready = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(rep["port"])],
            capture_output=True,
            timeout=30,
        )
        assert ready.returncode == 0, ready.stdout
        md = (state_dir(lab_config) / "pitr" / run_id / "report.md").read_text()
        assert "PASSED" in md and rep["backup_id"] in md and "## Verification" in md
    finally:
        cancel = console(lab_config, "runs", "cancel", run_id)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    wait_for(lambda: run_state(lab_config, run_id) == "succeeded", timeout=120, what="the PITR run to end")
    assert lab.docker("inspect", CONTAINER).returncode != 0  # the scratch container is gone
    assert list(lab.volume_path(PITR_VOLUME).iterdir()) == []  # and the scratch volume is empty
    assert report(lab_config, run_id)["removed_at"]
    assert untouched_facts(lab) == before
    events = [json.loads(line) for line in (state_dir(lab_config) / "audit.jsonl").read_text().splitlines()]
    mine = [e["event"] for e in events if e.get("run_id") == run_id]
    assert "cancel requested" in mine and "scratch copy removal finished" in mine and mine[-1] == "finished"


def test_a_failed_verification_exits_1_and_still_keeps_the_copy_up(lab, lab_config, tmp_path):
    def failing(c):
        c["science"]["verify"] = [{"name": "impossible", "sql": "SELECT count(*) FROM api_access_log", "expect": "< 0"}]

    cfg = config_variant(lab_config, tmp_path, failing)
    target = datetime.now().astimezone() - timedelta(seconds=30)
    r = console(cfg, "run", "pitr", "--target-time", target.isoformat(), "--yes", timeout=600)
    run_id = pitr_id(r.stdout)
    try:
        assert r.returncode == 1, r.stdout + r.stderr
        rep = report(cfg, run_id)
        assert rep["outcome"] == "failed" and "impossible" in rep["failure"] and rep["achieved_time"]
        assert [v["passed"] for v in rep["verify"]] == [False]
        assert run_state(cfg, run_id) == "running" and scratch_newest(lab)  # there to look at
    finally:
        console(cfg, "runs", "cancel", run_id)
    wait_for(lambda: run_state(cfg, run_id) == "succeeded", timeout=120, what="the PITR run to end")
    assert report(cfg, run_id)["outcome"] == "failed"  # the removal does not change the verdict
    assert list(lab.volume_path(PITR_VOLUME).iterdir()) == []


@pytest.mark.parametrize(
    "case",
    ["future", "before the oldest backup", "read-only"],
)
def test_pitr_refusals_before_any_step(lab, lab_config, case):
    now = datetime.now().astimezone()
    target = {
        "future": now + timedelta(hours=1),
        "before the oldest backup": now - timedelta(days=3650),
        "read-only": now - timedelta(minutes=1),
    }[case]
    runs_before = set((state_dir(lab_config) / "runs").iterdir())
    extra = ["--read-only"] if case == "read-only" else []
    r = console(lab_config, "run", "pitr", "--target-time", target.isoformat(), "--yes", *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pitr refused" in lines[0], r.stderr
    assert {"future": "in the future", "before the oldest backup": "before the end of the oldest backup"}.get(
        case, "read-only"
    ) in lines[0]
    assert set((state_dir(lab_config) / "runs").iterdir()) == runs_before  # no run, no step
    m = re.search(r"report: (\S+)/report\.md", lines[0])
    assert m, lines[0]
    rep = json.loads((Path(m.group(1)) / "report.json").read_text())
    assert rep["outcome"] == "refused" and rep["steps"] == [] and rep["failure"]

"""Restore drills on the real lab: both profiles, a failing verification, resume, refusals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import config_variant as variant
from tests.conftest import console as run_console
from tests.conftest import run_check, wait_for

pytestmark = pytest.mark.lab


def console(config: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """A drill may take minutes: the shared helper with a longer bound."""
    return run_console(config, *args, timeout=timeout)


def drill_dir(config: Path, output: str) -> Path:
    """The directory of the drill a `run drill` printed ("drill ID started" or "(report: PATH)")."""
    state = Path(yaml.safe_load(config.read_text())["state_dir"])
    m = re.search(r"drill (\S+) started|report: (\S+)/report\.md", output)
    assert m, output
    return state / "drills" / m.group(1) if m.group(1) else Path(m.group(2))


def report_of(config: Path, r: subprocess.CompletedProcess) -> dict:
    return json.loads((drill_dir(config, r.stdout + r.stderr) / "report.json").read_text())


def assert_passed_report(report: dict, profile: str):
    assert report["outcome"] == "passed" and report["profile"] == profile
    assert 0 < report["rto_seconds"] < 600
    assert report["rpo_seconds"] is not None and 0 <= report["rpo_seconds"] < 7 * 86400
    assert [s["state"] for s in report["steps"]] == ["done"] * len(report["steps"])
    assert report["verify"] and all(v["passed"] for v in report["verify"])
    assert report["source"]["last_backup_id"] and report["source"]["nightly_restored_at"]
    assert report["versions"]["postgres"].startswith("15") and report["versions"]["barman"]
    assert set(report["measured"]) == {"rto", "rpo"}


def test_full_drill_bb8_profile(lab, lab_config):
    r = console(lab_config, "run", "drill", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    report = report_of(lab_config, r)
    assert_passed_report(report, "bb8")
    md = (drill_dir(lab_config, r.stdout) / "report.md").read_text()
    assert "PASSED" in md and "| RTO |" in md and "| RPO |" in md and "## Verification" in md
    secrets = [line.rsplit(":", 1)[1] for line in Path(lab.pgpass).read_text().splitlines() if line.strip()]
    for text in (md, json.dumps(report)):
        assert not any(s in text for s in secrets)
    listing = console(lab_config, "drills", "list")
    assert report["drill_id"] in listing.stdout and "passed" in listing.stdout
    shown = console(lab_config, "drills", "show", report["drill_id"])
    assert shown.stdout == md
    assert run_check(lab_config, "--panel", "restore")[0] == 0


def test_full_drill_privateer_profile(lab, lab_config, tmp_path):
    def edit(c):
        c["science"]["profile"] = "privateer"
        c["science"]["restore_command"] = [
            str(Path(lab.lab_dir) / "science" / "bin" / "privateer"),
            "restore",
            "barman_recover",
            "--server=annex",
            "--to-volume",
            c["science"]["volume"],
        ]

    cfg = variant(lab_config, tmp_path, edit)
    r = console(cfg, "run", "drill", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_passed_report(report_of(cfg, r), "privateer")


def test_failing_verification_exits_1_and_names_the_query(lab_config, tmp_path):
    def edit(c):
        c["science"]["verify"] = [
            {"name": "a million accesses", "sql": "SELECT count(*) FROM api_access_log", "expect": ">= 1000000"}
        ]

    cfg = variant(lab_config, tmp_path, edit)
    r = console(cfg, "run", "drill", "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    report = report_of(cfg, r)
    assert report["outcome"] == "failed" and report["rto_seconds"] is None
    assert report["verify"][0]["name"] == "a million accesses" and report["verify"][0]["passed"] is False
    assert "a million accesses" in r.stdout + (report["failure"] or "")


def test_read_only_drill_is_refused_before_any_step(lab_config):
    r = console(lab_config, "--read-only", "run", "drill", "--yes")
    assert r.returncode == 2 and "read-only" in r.stderr
    report = report_of(lab_config, r)
    assert report["outcome"] == "refused"
    assert all(s["state"] == "skipped" for s in report["steps"])


def slow_restore(lab_config: Path, tmp_path: Path, seconds: int) -> Path:
    def edit(c):
        c["science"]["restore_command"] = [
            "sh",
            "-c",
            f'sleep {seconds}; exec "$0" "$@"',
            *c["science"]["restore_command"],
        ]

    return variant(lab_config, tmp_path, edit)


def test_drill_killed_mid_restore_resumes_without_repeating_steps(lab_config, tmp_path):
    cfg = slow_restore(lab_config, tmp_path, 6)
    r = console(cfg, "run", "drill", "--yes", "--detach")
    assert r.returncode == 0, r.stderr
    run_dir = drill_dir(cfg, r.stdout)

    def restoring():
        rec = json.loads((run_dir / "run.json").read_text())
        return rec if rec["steps"][2]["state"] == "running" else None

    rec = wait_for(restoring, timeout=120, interval=0.2, what="the drill's restore step")
    os.killpg(rec["pid"], signal.SIGKILL)  # the machine "reboots": no cleanup at all
    wait_for(
        lambda: "interrupted" in console(cfg, "drills", "list").stdout,
        timeout=30,
        what="the drill shown as interrupted",
    )
    r = console(cfg, "run", "drill", "--resume")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["outcome"] == "passed" and report["gaps"] and report["gaps"][0]["seconds"] >= 0
    log = (run_dir / "log").read_text()
    assert log.count("==> [1/7] preflight") == 2 and "done before the interruption, not repeated" in log
    assert log.count("stop ") >= 1


def test_drill_while_another_action_runs_is_refused(lab_config, tmp_path):
    cfg = slow_restore(lab_config, tmp_path, 8)
    r = console(cfg, "run", "restore", "--yes", "--detach")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        d = console(cfg, "run", "drill", "--yes")
        assert d.returncode == 2 and "another run is in flight" in d.stderr
    finally:
        run_id = r.stdout.split("run ")[1].split()[0]
        attach = console(cfg, "runs", "attach", run_id)
        assert attach.returncode == 0, attach.stdout[-2000:]

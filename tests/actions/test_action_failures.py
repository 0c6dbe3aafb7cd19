"""Actions that fail, are cancelled or lose their console, on the real lab.

Each failure must stop the run at the failing step, name it, keep the previous good copy where
the profile allows, and leave the audit log saying so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONSOLE, annex_barman, config_variant, console, run_check, wait_for

pytestmark = pytest.mark.lab


def state_dir(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["state_dir"])


def run_id(output: str) -> str:
    return output.split("run ", 1)[1].split()[0]


def audit_for(config: Path, rid: str) -> list[dict]:
    lines = (state_dir(config) / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("run_id") == rid]


def starport_facts(config: Path) -> dict:
    return run_check(config, "--json", "--panel", "starport")[1]["panels"]["starport"]


def test_ship_to_a_dead_sshd_fails_that_step_and_keeps_the_starport_copy(lab, lab_config):
    before = starport_facts(lab_config)["facts"]["targets"][0]["last_backup"]
    lab.stop_sshd()
    try:
        r = console(lab_config, "run", "nightly-recover", "--yes")
    finally:
        lab.start_sshd()
    assert r.returncode == 1, r.stdout[-2000:]
    assert "ship to the starport" in r.stdout and "FAILED" in r.stdout
    assert starport_facts(lab_config)["facts"]["targets"][0]["last_backup"] == before
    records = audit_for(lab_config, run_id(r.stdout))
    assert records[-1]["event"] == "finished" and records[-1]["outcome"] == "failed"
    assert records[-1]["failed_step"].startswith("ship to the starport")
    assert console(lab_config, "run", "nightly-recover", "--yes").returncode == 0  # repair


def test_recover_into_a_directory_the_volume_is_not_mounted_at_is_refused(lab_config, tmp_path):
    before = starport_facts(lab_config)["facts"]["nightly_restored_at"]
    cfg = config_variant(lab_config, tmp_path, lambda c: c["nightly"].update(mount="/usr/share/nightly"))
    r = console(cfg, "run", "nightly-recover", "--yes")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "volume montagu_db_volume is not mounted at /usr/share/nightly in barman's container" in r.stderr
    assert " started" not in r.stdout
    after = starport_facts(lab_config)
    assert after["facts"]["nightly_restored_at"] == before and after["status"] == "OK"


def test_a_failing_barman_recover_keeps_the_previous_nightly_copy(lab_config, tmp_path):
    before = starport_facts(lab_config)["facts"]["nightly_restored_at"]
    cfg = config_variant(lab_config, tmp_path, lambda c: annex_barman(c).update(server="nosuchserver"))
    r = console(cfg, "run", "nightly-recover", "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "barman recover latest into the dump directory: FAILED" in r.stdout
    assert "move the recovered files up" not in r.stdout.split("FAILED")[0]
    after = starport_facts(lab_config)
    assert after["facts"]["nightly_restored_at"] == before and after["status"] == "OK"


def test_replay_that_never_becomes_ready_leaves_the_copy_marked_unusable(lab_config, tmp_path):
    def edit(c):
        c["nightly"]["replay"].update(ready_command=["false"], timeout_seconds=3)

    cfg = config_variant(lab_config, tmp_path, edit)
    r = console(cfg, "run", "nightly-recover", "--yes")
    try:
        assert r.returncode == 1
        assert "replay the WAL in a temporary postgres container: FAILED" in r.stdout
        assert "not ready after 3 s" in r.stdout
        s = starport_facts(lab_config)
        assert s["status"] == "CRITICAL" and ".barman-last-restore missing" in s["summary"]
    finally:
        assert console(lab_config, "run", "nightly-recover", "--yes").returncode == 0  # repair
    assert starport_facts(lab_config)["status"] == "OK"


def slow_ship(lab_config: Path, tmp_path: Path, seconds: int) -> Path:
    return config_variant(
        lab_config,
        tmp_path,
        lambda c: c["nightly"].update(
            ship_command=["sh", "-c", f'sleep {seconds}; exec "$0" "$@"', *c["nightly"]["ship_command"]]
        ),
    )


def step_running(config: Path, rid: str, index: int):
    rec = json.loads((state_dir(config) / "runs" / rid / "run.json").read_text())
    return rec if rec["steps"][index]["state"] == "running" else None


def test_cancel_stops_the_whole_run_and_is_recorded(lab_config, tmp_path):
    cfg = slow_ship(lab_config, tmp_path, 60)
    r = console(cfg, "run", "nightly-recover", "--yes", "--detach")
    rid = run_id(r.stdout)
    wait_for(lambda: step_running(cfg, rid, 5), timeout=120, interval=0.2, what="the ship step")
    c = console(cfg, "runs", "cancel", rid)
    assert c.returncode == 0, c.stderr
    wait_for(
        lambda: rid in (out := console(cfg, "runs", "list").stdout) and "cancelled" in out.split(rid)[1].split("\n")[0],
        timeout=30,
        what="the run shown as cancelled",
    )
    events = [(e["event"], e.get("outcome")) for e in audit_for(cfg, rid)]
    assert ("cancel requested", None) in events and events[-1] == ("finished", "cancelled")
    assert "ship" in (state_dir(cfg) / "runs" / rid / "log").read_text()


def test_the_run_survives_its_console_and_is_re_attached(lab_config, tmp_path):
    cfg = slow_ship(lab_config, tmp_path, 5)
    proc = subprocess.Popen(
        [CONSOLE, "run", "nightly-recover", "--yes", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        line = ""
        while " started" not in line:
            line = proc.stdout.readline()
            assert line, "the console ended before it started the run"
        rid = run_id(line)
        wait_for(lambda: step_running(cfg, rid, 5), timeout=120, interval=0.2, what="the ship step")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the operator's session drops
        proc.wait()
    time.sleep(0.5)
    attach = console(cfg, "runs", "attach", rid)
    assert attach.returncode == 0 and "all 6 steps done" in attach.stdout

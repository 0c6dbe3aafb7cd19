"""The action layer without a lab: plans, progress parsing, audit, locks, read-only refusal."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from montagu_console.actions import audit, locks, plans
from montagu_console.actions.progress import parse_line, split_lines
from montagu_console.actions.runs import RunStore
from montagu_console.actions.service import ActionRefused, ActionService
from montagu_console.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path):
    text = (
        (ROOT / "config.example.yml")
        .read_text()
        .replace("state_dir: ~/.local/state/montagu-console", f"state_dir: {tmp_path / 'state'}")
    )
    return parse_config(text, tmp_path / "config.yml")


def test_base_backup_plan(config):
    p = plans.plan(config, "base-backup")
    assert p["steps"] == [
        {
            "name": "barman backup",
            "kind": "command",
            "host": "annex",
            "argv": ["docker", "exec", "barman-montagu", "barman", "backup", "montagu", "--wait"],
        }
    ]


def test_nightly_plan_bb8_profile_runs_each_step_itself(config):
    p = plans.plan(config, "nightly-recover")
    kinds = [s["kind"] for s in p["steps"]]
    assert kinds == ["nightly_files", "command", "nightly_files", "replay", "nightly_files", "command"]
    assert [s.get("op") for s in p["steps"]] == ["prepare", None, "move-up", None, "timestamp", None]
    recover = p["steps"][1]["argv"]
    assert recover == [
        "docker",
        "exec",
        "barman-montagu",
        "barman",
        "recover",
        "--jobs",
        "4",
        "montagu",
        "latest",
        "/nightly/dump",
    ]
    assert p["steps"][3]["volume"] == "montagu_db_volume" and p["steps"][3]["container"] == "barman-replay-wal"
    assert p["steps"][4]["path"] == "/nightly/.barman-last-restore"
    assert p["steps"][-1]["argv"] == ["bb8", "backup"]
    assert not any("update-nightly" in json.dumps(s) for s in p["steps"])


def test_nightly_plan_privateer_profile_does_not_ship(config):
    from dataclasses import replace

    cfg = replace(
        config, nightly=replace(config.nightly, profile="privateer", volume="barman_recover", mount="/recover")
    )
    steps = plans.plan(cfg, "nightly-recover")["steps"]
    assert steps[-1]["op"] == "timestamp" and steps[1]["argv"][-1] == "/recover/dump"


def test_restore_plan(config):
    steps = plans.plan(config, "restore")["steps"]
    assert [s["kind"] for s in steps] == ["container_stop", "command", "container_start", "wait_ready"]
    assert steps[1]["argv"] == ["bb8", "restore"] and steps[0]["container"] == "montagu_db_1"


def test_typed_confirmations(config):
    assert plans.info(config, "nightly-recover").confirm_text == "montagu_db_volume"
    assert plans.info(config, "restore").confirm_text == "science"
    assert plans.info(config, "base-backup").confirm == "yn"


def test_rsync_progress2_lines_split_on_carriage_returns():
    chunk = (
        "  1,234,567  12%   85.30MB/s    0:01:23 (xfr#1, ir-chk=10/20)\r  9,999,999  42%   85.30MB/s    0:00:30 (xfr#2)"
    )
    lines = split_lines(chunk)
    assert len(lines) == 2
    p = parse_line(lines[-1])
    assert p.percent == 42 and p.eta_seconds == 30


def test_rsync_progress_behind_a_log_prefix():
    p = parse_line("INFO         45,678,901  67%   12.00MB/s    0:00:05 (xfr#3, to-chk=1/9)")
    assert p.percent == 67 and p.eta_seconds == 5


def test_barman_recover_stage_progress():
    p = parse_line("Copying required WAL segments.")
    assert p and 0 < p.percent < 100 and "wal" in p.label


def test_audit_is_append_only_jsonl_without_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "10.1.2.3 51234 10.0.0.1 22")
    audit.append(tmp_path, "started", action="base-backup", host="annex", args="password=hunter2")
    audit.append(tmp_path, "finished", action="base-backup", outcome="succeeded")
    records = audit.read(tmp_path)
    assert [r["event"] for r in records] == ["started", "finished"]
    assert records[0]["user"] == pwd.getpwuid(os.getuid()).pw_name
    # no utmp entry for this terminal (pytest has none): the variable is only a claim
    if records[0]["ssh_client"] is None:
        assert records[0]["ssh_client_claimed"] == "10.1.2.3"
    assert "hunter2" not in (tmp_path / "audit.jsonl").read_text()
    assert stat.S_IMODE(os.stat(tmp_path / "audit.jsonl").st_mode) == 0o600


def test_lock_is_single_flight(tmp_path):
    lock = locks.acquire(tmp_path, "restore", "science", run_id="r1")
    assert lock is not None
    assert locks.acquire(tmp_path, "restore", "science") is None
    held = locks.holder(tmp_path, "restore", "science")
    assert held is not None and held.pid == os.getpid() and held.run_id == "r1"
    other = locks.acquire(tmp_path, "restore", "annex")
    assert other is not None
    other.release()
    lock.release()
    # this test's process group has other members (pytest's parents): the released record stays
    # held while the group lives, as a supervisor's leftover child would keep it
    assert locks.holder(tmp_path, "restore", "science") is not None


def test_a_released_lock_is_free_while_its_process_still_runs(tmp_path):
    """A supervisor alone in its group gives the lock up before it says the run is over."""
    code = (
        "import sys, time; from montagu_console.actions import locks; "
        "l = locks.acquire(sys.argv[1], 'restore', 'science'); l.release(); print('released', flush=True); "
        "time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout.readline().strip() == "released"
        assert locks.holder(tmp_path, "restore", "science") is None
    finally:
        proc.kill()
        proc.wait()
    assert stat.S_IMODE(os.stat(locks.lock_path(tmp_path, "restore", "science")).st_mode) == 0o600


def test_a_lock_naming_a_reused_pid_is_free(tmp_path):
    """A pid alone never holds a lock: its start time must match too."""
    path = locks.lock_path(tmp_path, "restore", "science")
    path.write_text(json.dumps({"pid": os.getpid(), "start": 1, "pgid": 2**22 + 11}))
    assert locks.holder(tmp_path, "restore", "science") is None
    lock = locks.acquire(tmp_path, "restore", "science")
    assert lock is not None
    lock.release()


@pytest.mark.parametrize("action", ["base-backup", "nightly-recover", "restore"])
async def test_read_only_refuses_in_the_action_layer(config, action):
    from dataclasses import replace

    service = ActionService(replace(config, read_only=True))
    with pytest.raises(ActionRefused, match="read-only"):
        await service.preflight(action)
    with pytest.raises(ActionRefused, match="read-only"):
        service.start(action, confirmation="--yes")
    assert RunStore(config.state_dir).all() == []
    refused = [r for r in audit.read(config.state_dir) if r["event"] == "refused"]
    assert len(refused) == 2 and all("read-only" in r["reason"] for r in refused)


def test_wrong_typed_confirmation_is_refused(config):
    with pytest.raises(ActionRefused, match="type 'science'"):
        ActionService(config).start("restore", confirmation="sciense")
    assert RunStore(config.state_dir).all() == []


def test_last_run_for_the_restore_panel(tmp_path):
    from montagu_console.probes.runs_state import last_run

    assert last_run(tmp_path, ("restore", "drill")) is None
    plan = {"steps": [{"name": "x", "kind": "command", "host": "h", "argv": ["true"]}]}
    done = RunStore(tmp_path).create("restore", plan)
    done.update(state="failed", finished_at="2026-11-25T05:00:00+00:00")
    assert last_run(tmp_path, ("restore", "drill"))["state"] == "failed"
    dead = RunStore(tmp_path, "drills").create("drill", plan)
    dead.update(state="running", pid=2**22 + 7)  # no such process: its supervisor died
    assert last_run(tmp_path, ("restore", "drill"))["state"] == "interrupted"
    RunStore(tmp_path).create("restore", plan).update(state="refused")
    assert last_run(tmp_path, ("restore", "drill"))["id"] == dead.id

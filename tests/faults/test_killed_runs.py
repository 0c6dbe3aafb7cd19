"""The console and the run's supervisor SIGKILLed together (a reboot, the OOM killer) mid-nightly,
mid-restore and mid-drill: the run is then ``interrupted``, a new run is not refused forever, and
``drill --resume`` continues the drill."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from montagu_console.actions.runs import Run, RunState
from tests.conftest import CONSOLE, console, wait_for
from tests.faults.helpers import (
    RECOVERY,
    audit_for,
    check_panel,
    fault_variant,
    state_dir,
    wait_step_running,
)
from tests.faults.test_network_faults import slow_bb8

pytestmark = pytest.mark.lab


def start_console(config: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``montagu-console run ARGS`` in its own session, as an operator's terminal runs it; its run id."""
    proc = subprocess.Popen(
        [CONSOLE, "run", *args, "--yes", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    line = ""
    while " started" not in line:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            pytest.fail("the console ended before it started the run")
    return proc, line.split(" started", 1)[0].split()[-1]  # "run ID started" / "drill ID started"


def kill_both(proc: subprocess.Popen, rec: dict) -> None:
    """SIGKILL the console's and the supervisor's process groups: no cleanup of any kind."""
    for group in (proc.pid, rec["pgid"]):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    proc.wait(timeout=30)


def listed_as(config: Path, what: str, rid: str) -> str | None:
    out = console(config, what, "list").stdout
    line = next((ln for ln in out.splitlines() if rid in ln), "")
    return line or None


@pytest.mark.parametrize(
    "action, step",
    [("nightly-recover", "replay the WAL"), ("restore", "bb8")],
)
def test_console_and_supervisor_killed_mid_run_leave_it_interrupted_and_a_new_run_passes(
    fault_lab, fault_config, tmp_path, action, step
):
    def edit(c):
        if action == "nightly-recover":
            replay = c["nightly"]["replay"]
            replay["ready_command"] = ["sh", "-c", "sleep 6; " + replay["ready_command"][-1]]
        else:
            c["science"]["restore_command"][0] = slow_bb8(tmp_path, c["science"]["restore_command"][0], 6)

    cfg = fault_variant(fault_config, tmp_path / "slow", edit)
    proc, rid = start_console(cfg, action)
    rec = wait_step_running(cfg, rid, str(tmp_path / "bin" / "bb8") if action == "restore" else step)
    kill_both(proc, rec)
    line = wait_for(
        lambda: (x := listed_as(cfg, "runs", rid)) and "interrupted" in x and x,
        timeout=60,
        what="the run listed as interrupted",
    )
    assert "interrupted" in line, line
    assert Run(state_dir(cfg) / "runs" / rid).state is RunState.INTERRUPTED
    records = audit_for(cfg, rid)  # what the supervisor wrote before it was killed, nothing made up
    assert records[0]["event"] == "started" and records[-1]["event"] == "step started", records
    assert records[-1]["step"] == rec["steps"][rec["current_step"]]["name"], records[-1]
    again = wait_for(
        lambda: (r := console(fault_config, "run", action, "--yes")).returncode != 2 and r,
        timeout=RECOVERY,
        interval=5,
        what=f"a new {action} not refused",
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    panel = "starport" if action == "nightly-recover" else "restore"
    wait_for(lambda: check_panel(fault_config, panel)["status"] == "OK", timeout=RECOVERY, what=f"{panel} OK")


def test_console_and_supervisor_killed_mid_drill_then_drill_resume_passes(fault_lab, fault_config, tmp_path):
    cfg = fault_variant(
        fault_config,
        tmp_path / "slow",
        lambda c: c["science"]["restore_command"].__setitem__(
            0, slow_bb8(tmp_path, c["science"]["restore_command"][0], 6)
        ),
    )
    proc, rid = start_console(cfg, "drill")
    run_dir = state_dir(cfg) / "drills" / rid

    def restoring():
        try:
            r = json.loads((run_dir / "run.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return r if r["steps"][2]["state"] == "running" else None

    rec = wait_for(restoring, timeout=180, interval=0.2, what="the drill's restore step")
    kill_both(proc, rec)
    wait_for(
        lambda: (x := listed_as(cfg, "drills", rid)) and "interrupted" in x,
        timeout=60,
        what="the drill listed as interrupted",
    )
    r = console(cfg, "run", "drill", "--resume")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["outcome"] == "passed" and report["gaps"], report
    log = (run_dir / "log").read_text()
    assert "done before the interruption, not repeated" in log
    wait_for(lambda: check_panel(fault_config, "restore")["status"] == "OK", timeout=RECOVERY, what="restore OK")

"""Real runs without a lab, for the TUI tests and ``bench/tui_stream.py``.

A config on disk whose action steps run on a local host (the detached supervisor loads it),
plans made of ``sh -c`` command steps in place of the real ones, a preflight that checks
nothing, and run directories fed by :mod:`fake_supervisor` (a process that says it is the
run's supervisor and writes its log at a chosen rate).
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import tui_fakes

from montagu_console.actions import drill, plans, service
from montagu_console.actions.drill import write_reports
from montagu_console.actions.runs import Run, RunStore
from montagu_console.config import Config, load_config

HERE = Path(__file__).resolve().parent
FAKE_SUPERVISOR = HERE / "fake_supervisor.py"
PREFLIGHT_FACTS = ["no run of this action in flight (test preflight)", "1.0 TiB free (test preflight)"]

QUICK = [
    ("prepare", "echo preparing"),
    ("copy", "for i in 1 2 3 4 5; do echo copied part $i; sleep 0.05; done"),
    ("finish", "echo finished"),
]
DRILL = [
    (f"{name}: test step", f"echo {name} done; sleep 0.05")
    for name in ("preflight", "stop", "restore", "start", "redo", "verify", "report")
]


def write_config(directory: Path) -> Config:
    """The TUI test config, on disk, with its state_dir under ``directory``."""
    path = directory / "config.yml"
    path.write_text(tui_fakes.CONFIG_YAML + f"state_dir: {directory / 'state'}\n")
    return load_config(path)


def shell_plan(config: Config, action: str, steps: list[tuple[str, str]]) -> dict:
    """A plan for ``action`` whose steps are ``sh -c SCRIPT`` on the local host annex."""
    if action == "drill":
        title, host = f"restore drill of {config.science.host} (test plan)", config.science.host
    else:
        info = plans.info(config, action)
        title, host = f"{info.title} (test plan)", info.host
    return {
        "action": action,
        "host": host,
        "title": title,
        "config": str(config.path),
        "profile": None,
        "steps": [
            {"name": name, "kind": "command", "host": "annex", "argv": ["sh", "-c", script]} for name, script in steps
        ],
    }


async def passing_preflight(service_, pool) -> list[str]:
    return list(PREFLIGHT_FACTS)


def fake_actions(
    monkeypatch, steps: dict[str, list[tuple[str, str]]] | None = None, preflight=passing_preflight
) -> None:
    """Plans of shell steps (``steps`` by action, else :data:`QUICK`), and ``preflight`` for every action."""
    steps = steps or {}
    monkeypatch.setattr(
        plans,
        "plan",
        lambda config, action: shell_plan(
            config, action, steps.get(action, QUICK if action != "restore" else QUICK + [("start", "echo start")])
        ),
    )
    monkeypatch.setattr(drill, "drill_plan", lambda config: shell_plan(config, "drill", steps.get("drill", DRILL)))
    for action in list(service._CHECKS):
        monkeypatch.setitem(service._CHECKS, action, preflight)


def create_run(config: Config, action: str, steps: list[tuple[str, str]] | None = None, kind: str = "runs") -> Run:
    """A run directory as the action layer makes it, not started."""
    steps = steps or [(f"step {i}", "true") for i in range(1, 7)]
    return RunStore(config.state_dir, kind).create(action, shell_plan(config, action, steps))


def start_fake_supervisor(
    run: Run, *, rate: int = 100, seconds: float = 0, step: int = 0, end: str = "succeeded"
) -> subprocess.Popen:
    """Run :mod:`fake_supervisor` on ``run``; returns once it has recorded itself as running."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(FAKE_SUPERVISOR),
            str(run.path),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--step",
            str(step),
            "--end",
            end,
        ]
    )
    deadline = time.monotonic() + 10
    while run.record().get("pid") != proc.pid:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the fake supervisor did not start")
        time.sleep(0.02)
    return proc


def finished_drill(
    config: Config,
    *,
    outcome: str = "passed",
    rto: float = 45.0,
    started: str | None = None,
    failed_verify: bool = False,
) -> Run:
    """A drill directory as a finished drill leaves it: every step done, verification, reports."""
    run = create_run(config, "drill", [(name, "true") for name, _ in DRILL], kind="drills")
    begin = started or "2026-11-21T02:00:00+00:00"
    steps = [
        {
            "name": s["name"],
            "state": "done",
            "started_at": begin,
            "finished_at": begin,
            "output_tail": [f"{s['name']}: ok"],
        }
        for s in run.record()["steps"]
    ]
    verified, newest = _plus(begin, rto), _plus(begin, -90)
    verify = [
        {
            "name": "api_access_log has rows",
            "sql": "SELECT count(*) FROM api_access_log",
            "expect": "> 0",
            "value": "0" if failed_verify else "1204",
            "passed": not failed_verify,
        },
        {
            "name": "newest api_access_log entry",
            "sql": "SELECT max(timestamp) FROM api_access_log",
            "expect": "not null",
            "value": newest,
            "passed": True,
        },
    ]
    if failed_verify:
        steps[5]["state"], steps[6]["state"] = "failed", "pending"
    run.update(
        state="succeeded" if outcome == "passed" else "failed",
        started_at=begin,
        drill_started_at=begin,
        finished_at=_plus(begin, rto + 1),
        steps=steps,
        current_step=6,
        error="verification failed: api_access_log has rows" if failed_verify else None,
        failed_step=steps[5]["name"] if failed_verify else None,
        drill={
            "primary_clock_at_start": begin,
            "clock_source": "the test's clock",
            "verify": verify,
            "verified_at": None if failed_verify else verified,
            "newest_committed": newest,
            "overwrites": "the database of montagu-db on science (volume science_db_volume)",
        },
    )
    write_reports(run, outcome)
    return run


def _plus(iso: str, seconds: float) -> str:
    return (datetime.fromisoformat(iso) + timedelta(seconds=seconds)).isoformat()

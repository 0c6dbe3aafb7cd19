"""The detached supervisor of one run: ``python -m montagu_console.actions.supervisor RUN_DIR``.

Started in a session of its own with SIGHUP ignored, it outlives the console and the
operator's SSH session. It holds the action's lock, runs the plan's steps in order, and records
every step in ``run.json`` and the audit log before and after it runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

from ..config import load_config
from ..redact import redact
from . import audit, locks
from .drill import DrillRunner, write_reports
from .progress import Progress, tail
from .runs import Run, now_iso, seconds_between
from .steps import Cancelled, RunLog, StepFailed, StepRunner


def supervise(run_dir: Path, *, resume: bool = False) -> int:
    """Run every step of the run in ``run_dir`` (skipping finished ones on resume); 0 on success."""
    run = Run(run_dir)
    plan = run.plan()
    config = load_config(Path(plan["config"]))
    action, host = plan["action"], plan["host"]
    drill = action == "drill"
    started = time.monotonic()
    # A drill restores science: it shares the restore's lock, so the two can never overlap.
    fd = locks.acquire(config.state_dir, "restore" if drill else action, host)
    if fd is None:
        holder = locks.holder(config.state_dir, "restore" if drill else action, host)
        run.update(state="refused", finished_at=now_iso(), error=f"{action} on {host} is already running (pid {holder})")
        audit.append(config.state_dir, "refused", action=action, host=host, run_id=run.id,
                     reason=f"lock held by pid {holder}")
        if drill:
            write_reports(run, "refused")
        return 2
    cancelled = {"flag": False}

    def on_term(signum, frame):
        cancelled["flag"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    record = run.record()
    now = now_iso()
    if resume:
        stopped = record.get("last_activity") or record.get("started_at") or now
        gap = {"stopped_at": stopped, "resumed_at": now, "seconds": seconds_between(stopped, now)}
        run.update(gaps=record.get("gaps", []) + [gap])
    run.update(state="running", pid=os.getpid(), started_at=record.get("started_at") or now, error=None)
    if drill and not record.get("drill_started_at"):
        run.update(drill_started_at=now)
    steps = plan["steps"]
    outcome, error, failed_step = "succeeded", None, None
    with RunLog.open(run.log_path) as log:
        def progress(p: Progress) -> None:
            run.update(progress={"percent": p.percent, "eta_seconds": p.eta_seconds, "label": p.label})

        args = (config, log, progress, lambda: cancelled["flag"])
        runner = DrillRunner(run, *args) if drill else StepRunner(*args)
        for index, step in enumerate(steps):
            if resume and run.record()["steps"][index].get("state") == "done":
                runner.write(f"==> [{index + 1}/{len(steps)}] {step['name']}: done before the interruption, "
                             "not repeated\n")
                continue
            record = run.record()
            record["steps"][index] |= {"state": "running", "started_at": now_iso(), "finished_at": None}
            run.update(steps=record["steps"], current_step=index, progress=None, last_activity=now_iso())
            runner.write(f"==> [{index + 1}/{len(steps)}] {step['name']} ({step['host']})\n")
            offset = log.tell()
            audit.append(config.state_dir, "step started", action=action, host=host, run_id=run.id, step=step["name"])
            state = "done"
            try:
                if cancelled["flag"]:
                    raise Cancelled()
                runner.run(step)
            except Cancelled:
                state, outcome, error = "cancelled", "cancelled", "cancelled by an operator"
            except StepFailed as e:
                state, outcome, error, failed_step = "failed", "failed", redact(str(e)), step["name"]
            except Exception as e:  # report it as the step's failure, never lose the record
                state, outcome, failed_step = "failed", "failed", step["name"]
                error = redact(f"{type(e).__name__}: {e}")
            record = run.record()
            record["steps"][index] |= {"state": state, "finished_at": now_iso(),
                                       "output_tail": _tail(run.log_path, offset)}
            run.update(steps=record["steps"], last_activity=now_iso())
            audit.append(config.state_dir, "step finished", action=action, host=host, run_id=run.id,
                         step=step["name"], outcome=state)
            if state != "done":
                runner.write(f"==> {step['name']}: {state.upper()}: {error}\n")
                break
        else:
            runner.write(f"==> {plan['title']}: all {len(steps)} steps done\n")
    duration = round(time.monotonic() - started, 1)
    run.update(state=outcome, finished_at=now_iso(), error=error, failed_step=failed_step, duration_seconds=duration)
    if drill:
        report = write_reports(run, {"succeeded": "passed", "cancelled": "interrupted"}.get(outcome, "failed"))
        with RunLog.open(run.log_path) as log:
            log.write(f"==> drill {report['outcome'].upper()}: RTO {report['rto_seconds']} s, "
                      f"RPO {report['rpo_seconds']} s; report: {run.path / 'report.md'}\n")
    audit.append(config.state_dir, "finished", action=action, host=host, run_id=run.id, outcome=outcome,
                 duration_seconds=duration, error=error, failed_step=failed_step)
    _notify(config.notify, run)
    return 0 if outcome == "succeeded" else 1


def _tail(log_path: Path, offset: int, lines: int = 15) -> list[str]:
    """The last lines a step wrote to the log (already clean and redacted), progress redraws collapsed."""
    with open(log_path, "rb") as f:
        f.seek(max(offset, os.fstat(f.fileno()).st_size - 256 * 1024))
        text = f.read().decode("utf-8", "replace")
    return [redact(line) for line in tail(text, lines)]


def _notify(url: str | None, run: Run) -> None:
    if not url:
        return
    rec = run.record()
    body = json.dumps({k: rec.get(k) for k in ("id", "action", "state", "error", "failed_step", "started_at",
                                               "finished_at", "duration_seconds")}).encode()
    try:
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()
    except OSError as e:
        with RunLog.open(run.log_path) as log:
            log.write(f"warning: notify {redact(url)} failed: {e}\n")


def main() -> int:
    try:
        return supervise(Path(sys.argv[1]), resume="--resume" in sys.argv[2:])
    except Exception as e:  # the run directory says what happened; never a silent death
        Run(Path(sys.argv[1])).update(state="failed", finished_at=now_iso(), error=redact(f"supervisor: {e}"))
        return 1


if __name__ == "__main__":
    sys.exit(main())

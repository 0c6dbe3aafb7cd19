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
import urllib.parse
import urllib.request
from pathlib import Path

from ..clock import now_iso, seconds_between
from ..config import load_config
from ..errors import ConfigError
from ..procs import start_time
from ..redact import redact
from ..text import one_line
from . import audit, locks, pitr, proof
from .drill import DrillRunner, write_reports
from .progress import Progress, tail
from .runs import Run, RunState
from .service import lock_action
from .steps import Cancelled, RunLog, StepFailed, StepRunner


def supervise(run_dir: Path, *, resume: bool = False) -> int:
    """Run every step of the run in ``run_dir`` (skipping finished ones on resume); 0 on success."""
    run = Run(run_dir)
    plan = run.plan()
    config_path = Path(str(plan.get("config") or ""))
    if not config_path.is_absolute():
        raise ValueError(f"plan.json names no absolute config path ({str(config_path)[:200]!r})")
    config = load_config(config_path)
    action, host = plan["action"], plan["host"]
    drill = action == "drill"
    started = time.monotonic()
    operator = run.record().get("operator") or audit.who()

    def log_event(event: str, **fields) -> None:
        audit.append(config.state_dir, event, operator=operator, action=action, host=host, run_id=run.id, **fields)

    # A drill restores science: it shares the restore's lock, so the two can never overlap.
    lock = locks.acquire(
        locks.lock_dir(config),
        lock_action(action),
        host,
        run_id=run.id,
        user=operator.get("login_user") or operator.get("user"),
    )
    if lock is None:
        held = locks.holder(locks.lock_dir(config), lock_action(action), host)
        why = held.describe() if held else "lock held"
        run.update(
            state=RunState.REFUSED, finished_at=now_iso(), error=f"{action} on {host} is already running ({why})"
        )
        log_event("refused", reason=f"lock held: {why}")
        if drill:
            write_reports(run, "refused")
        elif action == pitr.ACTION:
            pitr.finish(config.state_dir, run, RunState.REFUSED)
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
        run.update(gaps=(record.get("gaps") or []) + [gap])
    me = os.getpid()
    run.update(
        state=RunState.RUNNING,
        pid=me,
        pid_start=start_time(me),
        pgid=os.getpgrp(),
        started_at=record.get("started_at") or now,
        error=None,
        finished_at=None,
    )
    if drill and not record.get("drill_started_at"):
        run.update(drill_started_at=now)
    steps = plan["steps"]
    outcome, error, failed_step = RunState.SUCCEEDED, None, None
    with RunLog.open(run.log_path) as log:

        def progress(p: Progress) -> None:
            run.update(progress={"percent": p.percent, "eta_seconds": p.eta_seconds, "label": p.label})

        args = (config, log, progress, lambda: cancelled["flag"])
        runner = (
            DrillRunner(run, *args)
            if drill
            else pitr.PitrRunner(run, *args)
            if action == pitr.ACTION
            else proof.ProofRunner(run, *args)
            if action in proof.HOW
            else StepRunner(*args)
        )
        for index, step in enumerate(steps):
            if resume and run.record()["steps"][index].get("state") == "done":
                runner.write(
                    f"==> [{index + 1}/{len(steps)}] {step['name']}: done before the interruption, not repeated\n"
                )
                continue
            record = run.record()
            record["steps"][index] |= {"state": "running", "started_at": now_iso(), "finished_at": None}
            run.update(steps=record["steps"], current_step=index, progress=None, last_activity=now_iso())
            runner.write(f"==> [{index + 1}/{len(steps)}] {step['name']} ({step['host']})\n")
            offset = log.tell()
            log_event("step started", step=step["name"])
            state = "done"
            try:
                if cancelled["flag"]:
                    raise Cancelled()
                runner.run(step)
            except Cancelled:
                state, outcome, error = "cancelled", RunState.CANCELLED, "cancelled by an operator"
            except StepFailed as e:
                state, outcome, error, failed_step = "failed", RunState.FAILED, redact(str(e)), step["name"]
            except Exception as e:  # report it as the step's failure, never lose the record
                state, outcome, failed_step = "failed", RunState.FAILED, step["name"]
                error = redact(f"{type(e).__name__}: {e}")
            record = run.record()
            record["steps"][index] |= {
                "state": state,
                "finished_at": now_iso(),
                "output_tail": _tail(run.log_path, offset),
            }
            run.update(steps=record["steps"], last_activity=now_iso())
            log_event("step finished", step=step["name"], outcome=state)
            if state != "done":
                runner.write(f"==> {step['name']}: {state.upper()}: {error}\n")
                break
        else:
            runner.write(f"==> {plan['title']}: all {len(steps)} steps done\n")
    # The work is over: give the lock up before saying so, so whoever reads the final state
    # finds the lock free (a leftover child in this group keeps it held: see locks.Lock).
    lock.release()
    duration = round(time.monotonic() - started, 1)
    # The outcome is decided here, once; nothing after this line may rewrite it.
    run.update(state=outcome, finished_at=now_iso(), error=error, failed_step=failed_step, duration_seconds=duration)
    log_event("finished", outcome=str(outcome), duration_seconds=duration, error=error, failed_step=failed_step)
    if drill:
        try:
            report = write_reports(run, {"succeeded": "passed", "cancelled": "interrupted"}.get(outcome, "failed"))
            with RunLog.open(run.log_path) as log:
                log.write(
                    f"==> drill {report['outcome'].upper()}: RTO {report['rto_seconds']} s, "
                    f"RPO {report['rpo_seconds']} s; report: {run.path / 'report.md'}\n"
                )
        except Exception as e:  # the run's outcome stands; the log says what went wrong
            _warn(run, f"warning: the drill report was not written: {redact(f'{type(e).__name__}: {e}')}")
    elif action == pitr.ACTION:
        try:
            pitr.finish(config.state_dir, run, outcome)
        except Exception as e:  # the run's outcome stands; the log says what went wrong
            _warn(run, f"warning: the PITR report was not written: {redact(f'{type(e).__name__}: {e}')}")
    _notify(config.notify, run)
    return 0 if outcome == RunState.SUCCEEDED else 1


def _tail(log_path: Path, offset: int, lines: int = 15) -> list[str]:
    """The last lines a step wrote to the log (already clean and redacted), progress redraws collapsed."""
    with open(log_path, "rb") as f:
        f.seek(max(offset, os.fstat(f.fileno()).st_size - 256 * 1024))
        text = f.read().decode("utf-8", "replace")
    return [redact(line) for line in tail(text, lines)]


def _warn(run: Run, line: str) -> None:
    try:
        with RunLog.open(run.log_path) as log:
            log.write(line + "\n")
    except Exception:
        pass


def safe_url(url: str) -> str:
    """A webhook URL as it may be shown: scheme, host and port only (a path or query may carry
    a token, userinfo a password)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the notify URL (unparseable)"
    hidden = "/*REDACTED*" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{one_line(host, limit=200)}{port}{hidden}"


def _scrub(text: str, url: str) -> str:
    """An error message with every piece of the URL that may be secret removed."""
    try:
        parts = urllib.parse.urlsplit(url)
        pieces = [
            url,
            parts.netloc,
            parts.path,
            parts.query,
            parts.fragment,
            urllib.parse.unquote(parts.path),
            urllib.parse.unquote(parts.query),
        ]
    except ValueError:
        pieces = [url]
    for piece in sorted((p for p in pieces if p and p != "/"), key=len, reverse=True):
        text = text.replace(piece, "*REDACTED*")
    return one_line(redact(text), limit=500)


def _notify(url: str | None, run: Run) -> None:
    """Post the finished run to the webhook. Never raises: any failure is one warning line in
    the run log, the URL's path, query and userinfo left out; run.json is not touched."""
    if not url:
        return
    try:
        rec = run.record()
        body = json.dumps(
            {
                k: rec.get(k)
                for k in (
                    "id",
                    "action",
                    "state",
                    "error",
                    "failed_step",
                    "started_at",
                    "finished_at",
                    "duration_seconds",
                )
            }
        ).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()
    except Exception as e:
        _warn(run, f"warning: notify {safe_url(url)} failed: {type(e).__name__}: {_scrub(str(e), url)}")


def main() -> int:
    run = Run(Path(sys.argv[1]))
    try:
        return supervise(run.path, resume="--resume" in sys.argv[2:])
    except Exception as e:  # the run directory says what happened; never a silent death
        text = "; ".join(e.errors) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"
        why = one_line(redact(f"supervisor: {text}"), limit=1000)
        try:
            if RunState(run.record().get("state", "unknown")).final:
                _warn(run, f"warning: {why}")  # the outcome was decided: it stands
            else:
                run.update(state=RunState.FAILED, finished_at=now_iso(), error=why)
        except Exception:
            print(why, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""A stand-in supervisor for one run directory (made by ``RunStore.create``), for the TUI tests and benches.

It records itself as the run's supervisor (its own pid), marks the steps before ``--step`` done
and that one running, appends ``--rate`` log lines a second for ``--seconds``, then ends the
run with ``--end`` (or runs until killed when ``--seconds`` is 0)::

    python tests/tui/fake_supervisor.py RUN_DIR [--rate 10000] [--seconds 5] [--step 2] [--end succeeded]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from montagu_console.actions.runs import Run
from montagu_console.clock import now_iso
from montagu_console.procs import start_time

TICK = 0.01


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rate", type=int, default=100, help="log lines per second")
    parser.add_argument("--seconds", type=float, default=0, help="how long it runs; 0: until killed")
    parser.add_argument("--step", type=int, default=0, help="the step it is at (0-based)")
    parser.add_argument("--end", default="succeeded", help="the state it ends the run with")
    args = parser.parse_args()
    run = Run(args.run_dir)
    steps = run.record()["steps"]
    for step in steps[: args.step]:
        step |= {"state": "done", "started_at": now_iso(), "finished_at": now_iso()}
    steps[args.step] |= {"state": "running", "started_at": now_iso(), "finished_at": None}
    run.update(
        state="running",
        pid=os.getpid(),
        pid_start=start_time(os.getpid()),
        pgid=os.getpgrp(),
        started_at=now_iso(),
        current_step=args.step,
        steps=steps,
        progress={"percent": 0.0, "eta_seconds": None, "label": "fake copy"},
    )
    start = time.monotonic()
    written, last_progress = 0, start
    with open(run.log_path, "a") as log:
        while not args.seconds or time.monotonic() - start < args.seconds:
            now = time.monotonic()
            due = int((now - start) * args.rate)
            log.writelines(
                f"line {n}: copying base/16384/{n} (fake rsync output, 8192 bytes)\n" for n in range(written, due)
            )
            log.flush()
            written = due
            if now - last_progress >= 0.5 and args.seconds:
                last_progress = now
                run.update(
                    progress={
                        "percent": min(100.0, 100 * (now - start) / args.seconds),
                        "eta_seconds": int(args.seconds - (now - start)),
                        "label": "fake copy",
                    }
                )
            time.sleep(TICK)
        log.write(f"fake supervisor: {written} lines written\n")
    steps[args.step] |= {"state": "done" if args.end == "succeeded" else "failed", "finished_at": now_iso()}
    run.update(
        state=args.end, steps=steps, finished_at=now_iso(), error=None if args.end == "succeeded" else "fake failure"
    )


if __name__ == "__main__":
    main()

"""What the console adds to an action's wall time, against the same commands typed by hand.

For each round, the action runs through `montagu-console run ACTION --yes` (preflight, audit,
detached supervisor, log streaming) and then as the plan's own commands run one after the
other in a shell, interleaved so machine noise hits both. Prints medians and the ratio.

    .venv/bin/python bench/action_overhead.py [--config CONFIG] [--rounds N] [--action ACTION]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from montagu_console.actions import plans
from montagu_console.config import load_config

CONSOLE = str(Path(sys.executable).with_name("montagu-console"))


def by_hand(config, action: str) -> list[str]:
    """The plan's steps as the shell commands an operator would type."""
    docker = ["docker", "-H", config.hosts[config.barman.host].docker or "unix:///var/run/docker.sock"]
    out = []
    for step in plans.plan(config, action)["steps"]:
        kind = step["kind"]
        if kind == "command":
            out.append(shlex.join(step["argv"]))
        elif kind == "timestamp":
            out.append(shlex.join([*step["argv"], "sh", "-c", f"date '+%F %T.%N+00:00' > {step['path']}"]))
        elif kind == "replay":
            mounts = [a for m in step.get("mounts", []) for a in ("-v", m)]
            env = [a for e in step.get("env", []) for a in ("-e", e)]
            user = ["--user", step["user"]] if step.get("user") else []
            run = [
                *docker,
                "run",
                "-d",
                "--name",
                step["container"],
                "--network",
                "host",
                *user,
                *mounts,
                *env,
                "-v",
                f"{step['volume']}:{step['data_dir']}",
                step["image"],
                *step["command"],
            ]
            wait = [*docker, "exec", step["container"], *step["ready_command"]]
            out += [
                shlex.join(run) + " >/dev/null",
                f"until {shlex.join(wait)} 2>/dev/null; do sleep 1; done",
                shlex.join([*docker, "stop", "-t", "120", step["container"]]) + " >/dev/null",
                shlex.join([*docker, "rm", step["container"]]) + " >/dev/null",
            ]
        elif kind in ("container_stop", "container_start"):
            verb = kind.split("_")[1]
            out.append(shlex.join([*docker, verb, step["container"]]) + " >/dev/null")
        elif kind == "wait_ready":
            q = [
                *docker,
                "exec",
                step["container"],
                "psql",
                "-U",
                step["db_user"],
                "-d",
                step["db_name"],
                "-Atc",
                "select pg_is_in_recovery()",
            ]
            out.append(f'until [ "$({shlex.join(q)} 2>/dev/null)" = f ]; do sleep 1; done')
    return out


def timed(argv, **kw) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{argv[:4]} failed: {r.stderr[-500:]}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="/srv/montagu-lab/config.yml")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--action", action="append", choices=plans.ACTIONS)
    args = p.parse_args()
    config = load_config(Path(args.config))
    for action in args.action or ["base-backup", "nightly-recover", "restore"]:
        script = "set -e\n" + "\n".join(by_hand(config, action))
        console, hand = [], []
        for _ in range(args.rounds):
            console.append(timed([CONSOLE, "run", action, "--yes", "--config", args.config], stdin=subprocess.DEVNULL))
            hand.append(timed(["bash", "-c", script]))
        c, h = statistics.median(console), statistics.median(hand)
        print(f"{action:<16} console {c:6.2f} s   by hand {h:6.2f} s   ratio {c / h:.3f}   (medians of {args.rounds})")


if __name__ == "__main__":
    main()

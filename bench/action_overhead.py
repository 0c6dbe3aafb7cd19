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
from montagu_console.clock import rfc3339_ns, utc_now
from montagu_console.config import load_config

CONSOLE = str(Path(sys.executable).with_name("montagu-console"))


def until_ready(argv: list[str], seconds: int, *, equals: str | None = None) -> str:
    """A shell loop that waits for ``argv`` to succeed (or print ``equals``), at most ``seconds``."""
    command = shlex.join(argv)
    test = f"{command} >/dev/null 2>&1" if equals is None else f'[ "$({command} 2>/dev/null)" = {equals} ]'
    return f"n=0; until {test}; do n=$((n+1)); [ $n -lt {seconds} ] || exit 1; sleep 1; done"


def by_hand(config, action: str) -> list[str]:
    """The plan's steps as the shell commands an operator would type (the replay's proof as the
    same psql queries the console runs)."""
    docker = ["docker", "-H", config.hosts[config.barman.host].docker or "unix:///var/run/docker.sock"]
    s = config.science
    out = []
    for step in plans.plan(config, action)["steps"]:
        kind = step["kind"]
        if kind == "command":
            out.append(shlex.join(step["argv"]))
        elif kind == "nightly_files":
            args = [step["op"], step["mount"], step["barman_home"], step["timestamp_file"]]
            if step["op"] == "timestamp":
                args.append(rfc3339_ns(utc_now()))
            out.append(shlex.join([*step["argv"], "sh", "-c", plans.NIGHTLY_SCRIPT, "sh", *args]))
        elif kind == "replay":
            mounts = [a for m in step.get("mounts", []) for a in ("-v", m)]
            values = plans.env_values(config.nightly.replay.env, step.get("env_names") or [])
            env = [a for e in values for a in ("-e", e)]
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
            exec_ = [*docker, "exec", step["container"]]
            queries = [c.sql for c in s.verify] + ([s.rpo_sql] if s.rpo_sql else [])
            out += [
                shlex.join(run) + " >/dev/null",
                until_ready([*exec_, *step["ready_command"]], step["timeout"]),
                *(shlex.join([*exec_, "psql", "-U", s.db_user, "-d", s.db_name, "-XAtqc", q]) for q in queries),
                shlex.join([*docker, "stop", "-t", "120", step["container"]]) + " >/dev/null",
                shlex.join([*docker, "rm", step["container"]]) + " >/dev/null",
            ]
        elif kind in ("container_stop", "container_start"):
            verb = kind.split("_")[1]
            out.append(shlex.join([*docker, verb, step["container"]]) + " >/dev/null")
        elif kind == "wait_ready":
            q = [*docker, "exec", step["container"], "psql", "-U", step["db_user"], "-d", step["db_name"]]
            out.append(until_ready([*q, "-Atc", "select pg_is_in_recovery()"], step["timeout"], equals="f"))
        else:
            sys.exit(f"{action}: no by-hand command for a step of kind {kind!r}")
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

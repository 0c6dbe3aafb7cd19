"""`montagu-console check` against the raw commands it replaces, run side by side on the lab.

The machine is noisy, so both sides run interleaved in the same loop and the figure that
matters is the ratio of medians. Also measures the console's own start-up (imports, no
Textual) against a bare Python start.

    .venv/bin/python bench/check_vs_barman.py [--config CONFIG] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = str(Path(sys.executable).with_name("montagu-console"))


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def _ssh(host: dict) -> list[str]:
    """The ssh command line an operator would use for one of the config's SSH hosts."""
    return [
        "ssh",
        "-p",
        str(host["port"]),
        "-i",
        host["key_file"],
        "-o",
        f"UserKnownHostsFile={host['known_hosts']}",
        "-o",
        "BatchMode=yes",
        f"{host['user']}@{host['host']}",
    ]


def _barmans(cfg: dict) -> list[dict]:
    return cfg["barman"] if isinstance(cfg["barman"], list) else [cfg["barman"]]


def raw_commands(cfg: dict) -> list[list[str]]:
    """What an operator would type to learn the same facts, one after the other."""
    first = _barmans(cfg)[0]
    docker = ["docker", "-H", cfg["hosts"][first["host"]]["docker"]]
    commands = []
    for b in _barmans(cfg):
        host = cfg["hosts"][b["host"]]
        via = _ssh(host) if host["transport"] == "ssh" else []
        barman, server = [*via, *b["command"]], b.get("server", "montagu")
        commands += [
            [*barman, "-f", "json", "status", server],
            [*barman, "-f", "json", "check", server],
            [*barman, "-f", "json", "list-backup", server],
            [*barman, "-f", "json", "replication-status", server],
            [*barman, "diagnose"],
        ]
    if cfg.get("primary"):
        commands.append([*cfg["primary"]["command"], "-XAtc", "select * from pg_replication_slots"])
    sp = cfg["hosts"][cfg["starport"]["host"]]
    science = cfg["science"]
    return [
        *commands,
        [*docker, "inspect", first["container"]],
        [*docker, "exec", first["container"], "cat", "/nightly/.barman-last-restore"],
        [*_ssh(sp), f"cat {cfg['starport']['path']}/{cfg['starport']['targets'][0]}/meta/metadata.json"],
        [*docker, "inspect", science["container"]],
        [*docker, "logs", "--tail", "300", science["container"]],
        [*docker, "exec", science["container"], "psql", "-Atc", "select pg_is_in_recovery()"],
    ]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="/srv/montagu-lab/config.yml")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    raw = raw_commands(cfg)
    console, by_hand, imports, bare = [], [], [], []
    for _ in range(args.rounds):
        console.append(timed([CONSOLE, "check", "--json", "--config", args.config]))
        start = time.perf_counter()
        for argv in raw:
            timed(argv)
        by_hand.append(time.perf_counter() - start)
        imports.append(
            timed(
                [
                    sys.executable,
                    "-c",
                    "import montagu_console.cli, montagu_console.collect, "
                    "montagu_console.check, montagu_console.probes.barman",
                ]
            )
        )
        bare.append(timed([sys.executable, "-c", "pass"]))
    med = statistics.median
    print(f"rounds: {args.rounds}")
    print(f"check --json (4 panels, concurrent):   median {med(console):.2f} s")
    print(f"the {len(raw)} raw commands, one by one:  median {med(by_hand):.2f} s")
    print(f"ratio check / raw:                     {med(console) / med(by_hand):.2f}")
    print(
        f"console imports (no Textual):          median {med(imports):.3f} s "
        f"(bare python {med(bare):.3f} s, ratio {med(imports) / med(bare):.1f})"
    )


if __name__ == "__main__":
    main()

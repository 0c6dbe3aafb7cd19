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


def raw_commands(cfg: dict) -> list[list[str]]:
    """What an operator would type to learn the same facts, one after the other."""
    barman = cfg["barman"]["command"]
    server = cfg["barman"].get("server", "montagu")
    docker = ["docker", "-H", cfg["hosts"][cfg["barman"]["host"]]["docker"]]
    sp = cfg["hosts"][cfg["starport"]["host"]]
    ssh = [
        "ssh",
        "-p",
        str(sp["port"]),
        "-i",
        sp["key_file"],
        "-o",
        f"UserKnownHostsFile={sp['known_hosts']}",
        "-o",
        "BatchMode=yes",
        f"{sp['user']}@{sp['host']}",
    ]
    science = cfg["science"]
    return [
        [*barman, "-f", "json", "status", server],
        [*barman, "-f", "json", "check", server],
        [*barman, "-f", "json", "list-backup", server],
        [*barman, "-f", "json", "replication-status", server],
        [*barman, "diagnose"],
        [*docker, "inspect", cfg["barman"]["container"]],
        [*docker, "exec", cfg["barman"]["container"], "cat", "/nightly/.barman-last-restore"],
        [*ssh, f"cat {cfg['starport']['path']}/{cfg['starport']['targets'][0]}/meta/metadata.json"],
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

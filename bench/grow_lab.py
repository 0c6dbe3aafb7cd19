"""Bring up the bench lab and grow it: base backups on barman-montagu and archived WAL files.

The bench lab is a second lab (``/srv/montagu-lab-bench``, its own ports, 1 MB WAL segments:
see montagu_console/lab/grow.py), so the shared lab is untouched. Growing is idempotent: it
counts what is there and adds what is missing. Prints how long each part took.

    .venv/bin/python bench/grow_lab.py [--backups 5] [--wals 5000]
"""

from __future__ import annotations

import argparse
import time

from montagu_console.lab.grow import bench_lab_up, grow


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backups", type=int, default=5)
    p.add_argument("--wals", type=int, default=5000)
    args = p.parse_args()
    started = time.monotonic()
    lab = bench_lab_up()
    up = time.monotonic() - started
    timings = grow(lab, args.backups, args.wals)
    print(
        f"bench lab up {up:.0f} s; backups {timings['backups']:.0f} s; WAL {timings['wals']:.0f} s; "
        f"config {lab.config_path}"
    )


if __name__ == "__main__":
    main()

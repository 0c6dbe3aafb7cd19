"""The console on the real lab over time: first screen with real data, then RSS and CPU.

Runs `montagu-console --config CONFIG` in a real pty with a short refresh period and prints,
every --every seconds, the process's RSS and its CPU use (% of one core) over that interval,
plus terminal bytes/s. The first line gives the time from process start to the first byte and
to the first screen that shows every panel's data (no "waiting for the first answer").

    .venv/bin/python bench/tui_soak.py [--config /srv/montagu-lab/config.yml] [--refresh 2]
                                       [--minutes 10] [--every 60]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

import yaml

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CONSOLE = str(Path(sys.executable).with_name("montagu-console"))


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1024**2


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="/srv/montagu-lab/config.yml")
    p.add_argument("--refresh", type=float, default=2)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--every", type=float, default=60)
    args = p.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    cfg["refresh_seconds"] = args.refresh
    tmp = Path(tempfile.mkdtemp()) / "config.yml"
    tmp.write_text(yaml.safe_dump(cfg))
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(CONSOLE, [CONSOLE, "--config", str(tmp)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    screen, first_byte, first_data, total = b"", None, None, 0
    next_report = start + args.every
    last_ticks, last_time, last_bytes = cpu_ticks(pid), time.monotonic(), 0
    end = start + args.minutes * 60
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            total += len(chunk)
            now = time.monotonic()
            first_byte = first_byte or now - start
            if first_data is None:
                screen = (screen + chunk)[-200000:]
                if b"data just now" in screen and b"waiting for the first answer" not in screen[-20000:]:
                    first_data = now - start
                    print(f"first byte {first_byte:.2f} s; first screen with real data {first_data:.2f} s", flush=True)
        if time.monotonic() >= next_report:
            now, ticks = time.monotonic(), cpu_ticks(pid)
            cpu = 100 * (ticks - last_ticks) / TICKS / (now - last_time)
            print(
                f"{(now - start) / 60:5.1f} min  RSS {rss_mb(pid):6.1f} MB  CPU {cpu:4.1f} %  "
                f"terminal {(total - last_bytes) / (now - last_time):6.0f} B/s",
                flush=True,
            )
            last_ticks, last_time, last_bytes = ticks, now, total
            next_report += args.every
    os.kill(pid, 15)
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()

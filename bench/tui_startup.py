"""Measure the TUI as an operator's terminal sees it: start-up, idle CPU and terminal bytes.

    .venv/bin/python bench/tui_startup.py [--size 120x40] [--refresh 2] [--warmup 5] [--window 30]
                                          [--runs 3] [--theme NAME]

The app (``bench/tui_fake_demo.py``'s fake data: unchanged on every poll) runs in a real pty.
Printed: time from process start to the first byte on the terminal and to ``on_ready`` (first
paint), with the interpreter start and imports split out; then, after ``--warmup`` seconds,
CPU (utime+stime from /proc, % of one core) and terminal bytes/s over ``--window`` seconds.
Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def child(args: argparse.Namespace) -> None:
    """Run in the pty: the demo app, noting when Python started, imports finished and on_ready came."""
    started = time.time()
    sys.path.insert(0, str(HERE))
    import tui_fake_demo

    from montagu_console.tui.app import MontaguApp

    imported = time.time()
    stamps = Path(args.stamps)

    class TimedApp(MontaguApp):
        def on_ready(self) -> None:
            super().on_ready()
            stamps.write_text(f"{started} {imported} {time.time()}")

    demo_args = ["--data", "healthy", "--refresh", str(args.refresh)] + (["--theme", args.theme] if args.theme else [])
    tui_fake_demo.make_app(tui_fake_demo.parse_args(demo_args), TimedApp).run()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def drain(fd: int, until: float) -> tuple[int, float | None]:
    """Read the terminal until ``until``; return (bytes read, time of the first byte)."""
    total, first = 0, None
    while (left := until - time.time()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if data and first is None:
                first = time.time()
            total += len(data)
    return total, first


def one_run(args: argparse.Namespace, stamps: Path) -> dict[str, float]:
    cols, rows = (int(n) for n in args.size.split("x"))
    stamps.unlink(missing_ok=True)
    env = {**os.environ, "TERM": os.environ.get("TERM", "xterm-256color"), "COLORTERM": "truecolor"}
    t0 = time.time()
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execve(
            sys.executable,
            [sys.executable, __file__, "--child", "--stamps", str(stamps), "--refresh", str(args.refresh)]
            + (["--theme", args.theme] if args.theme else []),
            env,
        )
    try:
        startup_bytes, first_byte = drain(fd, t0 + args.warmup)
        if not stamps.exists():
            raise SystemExit("the app did not reach on_ready during the warm-up")
        python_started, imported, ready = (float(x) for x in stamps.read_text().split())
        cpu_before = cpu_ticks(pid)
        window_start = time.time()
        window_bytes, _ = drain(fd, window_start + args.window)
        elapsed = time.time() - window_start
        cpu = (cpu_ticks(pid) - cpu_before) / TICKS
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
    return {
        "python": python_started - t0,
        "imports": imported - python_started,
        "ready": ready - t0,
        "first_byte": (first_byte or float("nan")) - t0,
        "startup_kb": startup_bytes / 1024,
        "cpu_pct": 100 * cpu / elapsed,
        "bytes_per_s": window_bytes / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="120x40")
    parser.add_argument("--refresh", type=float, default=2)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--theme")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stamps", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    stamps = Path(f"/tmp/montagu-tui-bench-{os.getpid()}.stamps")
    print(
        f"pty {args.size}, refresh {args.refresh:g} s, unchanged data, warm-up {args.warmup:g} s, "
        f"window {args.window:g} s, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(
        f"{'run':>3}  {'python':>7}  {'imports':>7}  {'1st byte':>8}  {'on_ready':>8}  {'start KB':>8}  "
        f"{'CPU %':>6}  {'bytes/s':>8}"
    )
    for run in range(1, args.runs + 1):
        r = one_run(args, stamps)
        print(
            f"{run:>3}  {r['python']:>6.3f}s  {r['imports']:>6.3f}s  {r['first_byte']:>7.3f}s  {r['ready']:>7.3f}s  "
            f"{r['startup_kb']:>8.1f}  {r['cpu_pct']:>6.2f}  {r['bytes_per_s']:>8.1f}"
        )
    stamps.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

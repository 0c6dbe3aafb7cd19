"""The soak: the TUI on the real lab for a long time, every status change, RSS and CPU recorded.

Runs `montagu-console --config CONFIG` in a real pty (120x40) at a short refresh period on a
healthy lab whose writer keeps committing. Every --every seconds it prints the process's RSS, its
CPU use with its children (% of one core) over that interval and the terminal bytes/s; the first
line gives the time from process start to the first byte and to the first screen that shows every
panel's data. The console runs with a state_dir of its own (the lab's proofs copied in, so it
knows the copy's proof), so its history (`state_dir/history.sqlite3`, written on every status
change) holds exactly the statuses this TUI saw: at the end they are read back with
`montagu-console history --json`, and the screen is scanned for STALE.

Acceptance (exit 0, else 1 with the reasons): every status seen is OK (no WARNING, CRITICAL,
UNKNOWN), nothing went STALE, and RSS is flat: it grew by at most RSS_GROWTH_MB from the end
of the first interval to the end.

    .venv/bin/python bench/tui_soak.py [--config /srv/montagu-lab/config.yml] [--refresh 2]
                                       [--minutes 30] [--every 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import yaml

from montagu_console.snapshot import PANELS

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CONSOLE = str(Path(sys.executable).with_name("montagu-console"))
RSS_GROWTH_MB = 8.0  # flat: at most this much more after the first interval (allocator noise)


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1024**2


def cpu_ticks(pid: int) -> int:
    """The process's CPU, its reaped children's included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15])


def soak_config(config: Path, refresh: float, where: Path) -> Path:
    """The lab's config at ``refresh`` with a state_dir of its own, holding the lab's proofs."""
    cfg = yaml.safe_load(config.read_text())
    lab_state = Path(cfg["state_dir"])
    state = where / "state"
    state.mkdir()
    if (lab_state / "proofs.jsonl").is_file():
        shutil.copy(lab_state / "proofs.jsonl", state / "proofs.jsonl")
    cfg["refresh_seconds"], cfg["state_dir"] = refresh, str(state)
    path = where / "config.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def statuses(config: Path, minutes: float) -> list[dict]:
    """What the TUI wrote to its history: every panel's and instance's readings."""
    r = subprocess.run(
        [CONSOLE, "history", "--since", f"{int(minutes) + 5}m", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        raise SystemExit(f"history could not be read: {r.stderr.strip()}")
    return [row for row in json.loads(r.stdout) if row["panel"] in PANELS]  # not the runs, drills, proofs


def changes(rows: list[dict]) -> list[dict]:
    """The readings whose status differs from the previous one of the same panel and instance."""
    last: dict[tuple, str] = {}
    out = []
    for row in sorted(rows, key=lambda r: r["at"]):
        key = (row["panel"], row.get("instance"))
        if last.get(key) != row["status"]:
            out.append(row)
        last[key] = row["status"]
    return out


def run(config: Path, refresh: float, minutes: float, every: float) -> dict:
    """Soak the TUI; the samples, the status changes and the verdict."""
    where = Path(tempfile.mkdtemp(prefix="soak-"))
    cfg = soak_config(config, refresh, where)
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(CONSOLE, [CONSOLE, "--config", str(cfg)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    screen, tail, first_byte, first_data, total, stale = b"", b"", None, None, 0, False
    samples: list[dict] = []
    next_report = start + every
    last_ticks, last_time, last_bytes = cpu_ticks(pid), time.monotonic(), 0
    end = start + minutes * 60
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                total += len(chunk)
                now = time.monotonic()
                first_byte = first_byte or now - start
                stale = stale or b"STALE" in tail + chunk
                tail = chunk[-16:]
                if first_data is None:
                    screen = (screen + chunk)[-200000:]
                    if b"data just now" in screen and b"waiting for the first answer" not in screen[-20000:]:
                        first_data = now - start
                        print(f"first byte {first_byte:.2f} s; first screen with real data {first_data:.2f} s")
            if time.monotonic() >= next_report:
                now, ticks = time.monotonic(), cpu_ticks(pid)
                sample = {
                    "minutes": round((now - start) / 60, 2),
                    "rss_mb": round(rss_mb(pid), 1),
                    "cpu_percent": round(100 * (ticks - last_ticks) / TICKS / (now - last_time), 2),
                    "terminal_bytes_per_s": round((total - last_bytes) / (now - last_time)),
                }
                samples.append(sample)
                m, rss, cpu, out = sample.values()
                print(f"{m:5.1f} min  RSS {rss:6.1f} MB  CPU {cpu:4.1f} %  terminal {out:6d} B/s", flush=True)
                last_ticks, last_time, last_bytes = ticks, now, total
                next_report += every
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
    seen = changes(statuses(cfg, minutes))
    problems = [f"{r['at']} {r['panel']}/{r.get('instance') or '-'}: {r['status']}: {r['summary']}" for r in seen]
    problems = [p for p, r in zip(problems, seen, strict=True) if r["status"] != "OK"]
    if stale:
        problems.append("a panel went STALE on screen")
    if first_data is None:
        problems.append("no screen with every panel's data")
    if len(samples) >= 2 and samples[-1]["rss_mb"] - samples[0]["rss_mb"] > RSS_GROWTH_MB:
        problems.append(f"RSS grew from {samples[0]['rss_mb']} MB to {samples[-1]['rss_mb']} MB")
    shutil.rmtree(where, ignore_errors=True)
    return {
        "refresh_seconds": refresh,
        "minutes": minutes,
        "first_data_seconds": first_data,
        "samples": samples,
        "status_changes": [{k: r.get(k) for k in ("at", "panel", "instance", "status", "summary")} for r in seen],
        "problems": problems,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="/srv/montagu-lab/config.yml")
    p.add_argument("--refresh", type=float, default=2)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--every", type=float, default=60)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    result = run(Path(args.config), args.refresh, args.minutes, args.every)
    print(f"{len(result['status_changes'])} status changes:")
    for change in result["status_changes"]:
        print(f"  {change['at']} {change['panel']}/{change['instance'] or '-'}: {change['status']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if result["problems"]:
        print("FAIL: " + "; ".join(result["problems"]))
        sys.exit(1)
    print("PASS: every status OK, nothing STALE, RSS flat")


if __name__ == "__main__":
    main()

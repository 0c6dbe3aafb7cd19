"""What watching barman costs the hosts watched, side by side in one run, on the grown bench lab.

For the same window at the same 10 s period, one after the other and repeated:

* baseline: nothing watches barman;
* console: the real TUI (``montagu-console --config`` in a pty, default refresh);
* raw: today's design, every barman command (``-f json status/check/list-backup/
  replication-status`` and ``diagnose``) of each barman each 10 s, as the config runs them
  (``docker exec``, over SSH for barman-aws);
* exporter: prometheus-barman-exporter 1.0.10 inside each barman container
  (``-c 10``: it collects every 10 s after the last collection), scraped every 10 s.

Measured per window: CPU-seconds inside barman-montagu, barman-aws and science's montagu-db (their cgroup's
``cpuacct.usage``, or ``cpu.stat`` usage_usec on cgroup v2: every process docker exec starts
in them included), the lab's docker engine (dockerd, containerd, the shims' own time; runc is
not counted; "annex" adds it to barman-montagu, as both run there on the real estate),
barman-aws's host sshd (the sessions and what they run), and the driver's own
process tree (the console, or the loop running the commands / scraping). barman's own cron loop
is paused in both containers for every window, and the baseline window is subtracted from the
container, engine and sshd figures.

Then wall times, interleaved: ``check --json`` against the raw commands of check_vs_barman.py,
against the barman commands alone, and against one full collection of the exporter per barman
(``barman-exporter -d``, what a scrape of an uncached exporter costs).

    .venv/bin/python bench/probe_cost.py [--window 120] [--repeat 2] [--stages 1:500,5:500,5:5000]

``--stages B:W,...`` grows the bench lab (bench/grow_lab.py) to B backups and W WAL files before
measuring at each stage; a stage the lab is already past is measured at its current size.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pty
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_vs_barman import _barmans, _ssh, raw_commands, timed

from montagu_console.lab.grow import BENCH_LAB_DIR, bench_lab_up, grow, size
from montagu_console.lab.handle import Lab
from montagu_console.lab.layout import SCIENCE_CONTAINER

CONSOLE = str(Path(sys.executable).with_name("montagu-console"))
TICKS = os.sysconf("SC_CLK_TCK")
PERIOD = 10.0
EXPORTER_PORT = 9790
DESIGNS = ("console", "raw", "exporter")


# --- counters ----------------------------------------------------------------
def _procs() -> dict[int, tuple[int, float, float, str]]:
    """pid -> (ppid, own CPU s, reaped children's CPU s, cmdline) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        f = stat.rsplit(")", 1)[1].split()
        table[int(entry)] = (int(f[1]), (int(f[11]) + int(f[12])) / TICKS, (int(f[13]) + int(f[14])) / TICKS, cmd)
    return table


def _tree(table: dict, roots: list[int]) -> float:
    """CPU of ``roots`` and every descendant, reaped children included (conserved when one exits)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [p for p in roots if p in table]
    while todo:
        pid = todo.pop()
        total += table[pid][1] + table[pid][2]
        todo += children.get(pid, [])
    return total


def _cgroup_file(pid: int) -> tuple[Path, float]:
    """The CPU counter of the cgroup of ``pid`` and its unit in seconds."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            return Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / "cpuacct.usage", 1e-9
    v2 = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
    return Path("/sys/fs/cgroup") / v2.lstrip("/") / "cpu.stat", 1e-6


def _read_cgroup(counter: tuple[Path, float]) -> float:
    path, unit = counter
    text = path.read_text()
    if path.name == "cpu.stat":
        return int(next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))) * unit
    return int(text) * unit


class Meter:
    """Reads every counter of one lab at once."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.cgroups = {}
        for container in (*(site.container for site in lab.barman_sites), SCIENCE_CONTAINER):
            pid = int(lab.docker("inspect", "-f", "{{.State.Pid}}", container).stdout)
            self.cgroups[container] = _cgroup_file(pid)
        self.dockerd = int(lab.docker_pidfile.read_text())
        self.sshd_aws = int(lab.aws_sshd.pidfile.read_text())
        self.shim_tag = f"{lab.docker_exec_root}/containerd/containerd.sock"

    def read(self, driver: int | None) -> dict[str, float]:
        table = _procs()
        shims = sum(v[1] for v in table.values() if "containerd-shim" in v[3] and self.shim_tag in v[3])
        out = {name: _read_cgroup(c) for name, c in self.cgroups.items()}
        out["docker engine"] = _tree(table, [self.dockerd]) + shims
        out["sshd-aws"] = _tree(table, [self.sshd_aws])
        out["driver"] = _tree(table, [driver]) if driver else 0.0
        out["annex"] = out["barman-montagu"] + out["docker engine"]  # the host of both, on the real estate
        return out


def _window(meter: Meter, seconds: float, driver: int | None) -> dict[str, float]:
    """CPU-seconds per minute of each counter over ``seconds``."""
    start, t0 = meter.read(driver), time.monotonic()
    time.sleep(seconds)
    end, elapsed = meter.read(driver), time.monotonic() - t0
    return {k: (end[k] - start[k]) * 60 / elapsed for k in start}


# --- the designs -------------------------------------------------------------
def _bench_config(config: str) -> Path:
    """The lab config at the console's default refresh (10 s)."""
    cfg = yaml.safe_load(Path(config).read_text())
    cfg.pop("refresh_seconds", None)
    path = Path(tempfile.mkdtemp(prefix="probe-cost-")) / "config.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@contextlib.contextmanager
def console(config: Path, warmup: float):
    """The TUI in a pty (120x40), its output drained; yields its pid after ``warmup`` seconds."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(CONSOLE, [CONSOLE, "--config", str(config)])
    fcntl_winsize(fd, 40, 120)
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    try:
        time.sleep(warmup)
        yield pid
    finally:
        stop.set()
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def fcntl_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def barman_commands(cfg: dict) -> list[list[str]]:
    """Every barman command of today's design, for each barman of the config."""
    commands = []
    for b in _barmans(cfg):
        host = cfg["hosts"][b["host"]]
        via = _ssh(host) if host["transport"] == "ssh" else []
        barman, server = [*via, *b["command"]], b.get("server", "montagu")
        commands += [[*barman, "-f", "json", sub, server] for sub in ("status", "check", "list-backup")]
        commands += [[*barman, "-f", "json", "replication-status", server], [*barman, "diagnose"]]
    return commands


def exporter_commands(cfg: dict) -> list[list[str]]:
    """One full collection of the exporter beside each barman (``barman-exporter -d``)."""
    commands = []
    for b in _barmans(cfg):
        host = cfg["hosts"][b["host"]]
        via = _ssh(host) if host["transport"] == "ssh" else []
        commands.append([*via, *b["command"][:-1], "barman-exporter", "-d", b.get("server", "montagu")])
    return commands


@contextlib.contextmanager
def loop(kind: str, args: list[str]):
    """A child process running the raw commands or the scrapes every PERIOD; yields its pid."""
    proc = subprocess.Popen([sys.executable, __file__, f"--{kind}-loop", *args], stdout=subprocess.DEVNULL)
    try:
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def _every_period(step) -> None:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.is_set():
        started = time.monotonic()
        step()
        stopping.wait(max(0.0, PERIOD - (time.monotonic() - started)))


def raw_loop(config: str) -> None:
    commands = barman_commands(yaml.safe_load(Path(config).read_text()))
    _every_period(lambda: [timed(argv) for argv in commands])


def scrape_loop(urls: list[str]) -> None:
    def scrape() -> None:
        for url in urls:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=30) as r:
                r.read()

    _every_period(scrape)


@contextlib.contextmanager
def exporters(lab: Lab):
    """barman-exporter -c 10 in each barman container; yields the URLs once each has collected."""
    urls = []
    for n, site in enumerate(lab.barman_sites):
        port = EXPORTER_PORT + n
        pidfile = site.dir / "barman-exporter.pid"
        script = 'echo $$ > "$1"; exec barman-exporter -l "127.0.0.1:$2" -c 10 montagu >/dev/null 2>&1'
        lab.docker("exec", "-d", site.container, "sh", "-c", script, "sh", str(pidfile), str(port))
        urls.append(f"http://127.0.0.1:{port}/metrics")
    try:
        deadline = time.monotonic() + 120
        for url in urls:
            while b"barman_up{" not in _get(url):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"barman-exporter at {url} did not collect within 120 s")
                time.sleep(1)
        yield urls
    finally:
        for site in lab.barman_sites:
            pidfile = site.dir / "barman-exporter.pid"
            if pidfile.exists():
                lab.docker("exec", site.container, "kill", pidfile.read_text().strip())
                pidfile.unlink()


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read()
    except OSError:
        return b""


# --- one measurement ---------------------------------------------------------
def measure(lab: Lab, window: float, repeat: int, rounds: int) -> dict:
    config = _bench_config(str(lab.config_path))
    meter = Meter(lab)
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in ("baseline", *DESIGNS)}
    lab.pause_cron()
    lab.pause_aws_cron()
    try:
        for r in range(repeat):
            print(f"  repeat {r + 1}/{repeat}: baseline", flush=True)
            runs["baseline"].append(_window(meter, window, None))
            print("  console (TUI, default refresh)", flush=True)
            with console(config, warmup=30) as pid:
                runs["console"].append(_window(meter, window, pid))
            print("  raw barman commands every 10 s", flush=True)
            with loop("raw", [str(config)]) as pid:
                time.sleep(2)
                runs["raw"].append(_window(meter, window, pid))
            print("  barman-exporter, scraped every 10 s", flush=True)
            with exporters(lab) as urls, loop("scrape", urls) as pid:
                runs["exporter"].append(_window(meter, window, pid))
    finally:
        lab.resume_cron()
        lab.resume_aws_cron()
    cfg = yaml.safe_load(Path(lab.config_path).read_text())
    walls: dict[str, list[float]] = {"check": [], "raw all": [], "raw barman": [], "exporter": []}
    every, barman_only, exporter_once = raw_commands(cfg), barman_commands(cfg), exporter_commands(cfg)
    for _ in range(rounds):
        walls["check"].append(timed([CONSOLE, "check", "--json", "--config", str(lab.config_path)]))
        walls["raw all"].append(sum(timed(argv) for argv in every))
        walls["raw barman"].append(sum(timed(argv) for argv in barman_only))
        walls["exporter"].append(sum(timed(argv) for argv in exporter_once))
    return {"runs": runs, "walls": walls, "raw_all_count": len(every)}


def summary(result: dict) -> dict:
    """Medians per design, net of the baseline, per minute; driver as % of one core."""
    med = statistics.median
    runs = result["runs"]
    keys = list(runs["baseline"][0])
    base = {k: med(r[k] for r in runs["baseline"]) for k in keys}
    out: dict = {}
    for design in DESIGNS:
        m = {k: med(r[k] for r in runs[design]) for k in keys}
        out[design] = {k: (m[k] if k == "driver" else m[k] - base[k]) for k in keys}
    out["baseline"] = base
    out["walls"] = {k: med(v) for k, v in result["walls"].items()}
    return out


def print_summary(label: str, s: dict, raw_all_count: int) -> None:
    cols = ["barman-montagu", "docker engine", "annex", "barman-aws", "sshd-aws", SCIENCE_CONTAINER]
    print(f"\n### {label}\n")
    print("| CPU-s per minute (net of baseline) | " + " | ".join(cols) + " | driver, % of one core |")
    print("| --- |" + " --- |" * (len(cols) + 1))
    for design in DESIGNS:
        row = s[design]
        print(f"| {design} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + f" | {row['driver'] / 60 * 100:.2f} % |")
    b = s["baseline"]
    print("| (baseline, absolute) | " + " | ".join(f"{b[c]:.2f}" for c in cols) + " | |")
    con, raw, exp = s["console"], s["raw"], s["exporter"]
    for c in ("barman-montagu", "barman-aws"):
        print(
            f"\n{c}: console / raw {_ratio(con[c], raw[c])}, console / exporter {_ratio(con[c], exp[c])}, "
            f"exporter / raw {_ratio(exp[c], raw[c])}"
        )
    w = s["walls"]
    print(
        f"\ncheck --json {w['check']:.2f} s; the {raw_all_count} raw commands {w['raw all']:.2f} s "
        f"(ratio {w['check'] / w['raw all']:.2f}); the barman commands alone {w['raw barman']:.2f} s "
        f"(ratio {w['check'] / w['raw barman']:.2f}); one exporter collection per barman {w['exporter']:.2f} s "
        f"(ratio {w['check'] / w['exporter']:.2f})"
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 0 else "n/a"


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "?")
    return f"{os.cpu_count()} cores, {model}, kernel {os.uname().release}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--window", type=float, default=120)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="rounds of the wall-time comparison")
    p.add_argument("--stages", default="", help="B:W,... grow to B backups and W WAL files, measure at each")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--raw-loop", help=argparse.SUPPRESS)
    p.add_argument("--scrape-loop", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.raw_loop:
        return raw_loop(args.raw_loop)
    if args.scrape_loop:
        return scrape_loop(args.scrape_loop)
    print(f"machine: {machine()}; bench lab {BENCH_LAB_DIR}", flush=True)
    lab = bench_lab_up(log=lambda line: None)
    stages = [tuple(int(n) for n in s.split(":")) for s in args.stages.split(",") if s] or [None]
    results = []
    for stage in stages:
        if stage:
            started = time.monotonic()
            grow(lab, *stage, log=lambda line: None)
            print(f"grown to {stage[0]} backups, {stage[1]} WAL files in {time.monotonic() - started:.0f} s")
        now = size(lab)
        label = f"{now.backups} base backups, {now.wals} WAL files on barman-montagu"
        print(f"measuring at {label}: {args.repeat} x 4 windows of {args.window:.0f} s", flush=True)
        result = measure(lab, args.window, args.repeat, args.rounds)
        s = summary(result)
        print_summary(label, s, result["raw_all_count"])
        results.append({"label": label, "backups": now.backups, "wals": now.wals, "summary": s, **result})
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What the fault tests share: the fault lab's place and ports, its console config, the faults
themselves (each undone by the test in a ``finally``), and reading runs, audit and the TUI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml

from montagu_console.lab import Lab, LabPorts
from montagu_console.lab.layout import AWS_BARMAN_CONTAINER, BARMAN_CONTAINER, SCIENCE_CONTAINER, SshdSite
from tests.conftest import run_check, wait_for
from tests.tui.tui_helpers import panel_text, panel_word
from tests.tui.tui_helpers import wait_for as tui_wait_for

FAULT_LAB_DIR = Path(os.environ.get("MONTAGU_FAULT_LAB_DIR", "/srv/montagu-lab-faults"))
# apart from the shared lab (55432.., 2222), the bench lab (55532.., 2522) and the smoke lab (56432.., 2322);
# the PITR copy takes tunnel+1 (58436), privateer's server and vault tunnel+2..+4 (58437-58439)
FAULT_PORTS = LabPorts(primary=58432, science=58433, replay=58434, ssh=2622, tunnel=58435, aws_ssh=2623)

REFRESH = 2.0
CONNECT_SECONDS = 3.0
COMMAND_SECONDS = 10.0
PANEL_DEADLINE = CONNECT_SECONDS + 2 * COMMAND_SECONDS + 5  # Collector.panel_deadline for these timeouts
ONE_REFRESH = REFRESH + PANEL_DEADLINE  # "within one refresh": a bound, not a speed figure
RECOVERY = 120  # the lab's parts coming back (barman's cron restarts receive-wal every 10 s)
IPTABLES_CHAIN = "MONTAGU_FAULTS"


# -- the console's config on the fault lab -------------------------------------------------------


def fault_variant(base: Path, directory: Path, edit: Callable[[dict], None] | None = None) -> Path:
    """``base`` with the suite's refresh and timeouts (the lab's config already has a lock dir
    of the fault lab's own), plus ``edit``."""
    data = yaml.safe_load(base.read_text())
    data["refresh_seconds"] = REFRESH
    data["timeouts"] = {"connect_seconds": CONNECT_SECONDS, "command_seconds": COMMAND_SECONDS}
    if edit:
        edit(data)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "config.yml"
    out.write_text(yaml.safe_dump(data))
    return out


def delayed(argv: list[str], seconds: float) -> list[str]:
    """``argv`` started ``seconds`` late, so a fault can be injected while its step runs."""
    return ["sh", "-c", f'sleep {seconds:g}; exec "$0" "$@"', *argv]


def state_dir(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["state_dir"])


def check_panel(config: Path, name: str) -> dict:
    """One panel of ``check --json``: it must print JSON, whatever the fault."""
    code, doc, err = run_check(config, "--json", "--panel", name, timeout=ONE_REFRESH + 30)
    assert isinstance(doc, dict), (code, doc, err)
    assert "Traceback" not in err, err
    return doc["panels"][name]


# -- runs and the audit ----------------------------------------------------------------------------


def run_id(output: str) -> str:
    return output.split("run ", 1)[1].split()[0]


def run_record(config: Path, rid: str) -> dict:
    return json.loads((state_dir(config) / "runs" / rid / "run.json").read_text())


def run_log(config: Path, rid: str) -> str:
    return (state_dir(config) / "runs" / rid / "log").read_text()


def step_running(config: Path, rid: str, prefix: str) -> dict | None:
    """The run's record once its step named ``prefix...`` runs."""
    try:
        rec = run_record(config, rid)
    except (FileNotFoundError, ValueError):
        return None
    running = [s for s in rec["steps"] if s["state"] == "running" and s["name"].startswith(prefix)]
    return rec if running else None


def wait_step_running(config: Path, rid: str, prefix: str, timeout: float = 180) -> dict:
    return wait_for(lambda: step_running(config, rid, prefix), timeout=timeout, interval=0.2, what=f"step {prefix!r}")


def wait_run_ended(config: Path, rid: str, timeout: float) -> dict:
    """The run's record once it is neither starting nor running."""
    return wait_for(
        lambda: (x := run_record(config, rid))["state"] not in ("running", "starting") and x,
        timeout=timeout,
        what=f"run {rid} to end",
    )


def audit_for(config: Path, rid: str) -> list[dict]:
    lines = (state_dir(config) / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("run_id") == rid]


def assert_audit_complete(config: Path, rid: str, outcome: str, failed_step: str | None = None) -> list[dict]:
    """A ``started`` record naming every step, a ``step started`` and a ``step finished`` for each
    step that ran (in order, none open), and a ``finished`` record with ``outcome`` (and the failed
    step's name) last."""
    records = audit_for(config, rid)
    events = [r["event"] for r in records]
    assert events[0] == "started" and records[0]["steps"], records
    assert events[-1] == "finished" and records[-1]["outcome"] == outcome, records[-1]
    open_step = None
    for r in records[1:-1]:
        if r["event"] == "step started":
            assert open_step is None, f"step {r['step']!r} started while {open_step!r} was open"
            open_step = r["step"]
        elif r["event"] == "step finished":
            assert r["step"] == open_step and r.get("outcome"), r
            open_step = None
    assert open_step is None, f"no 'step finished' record for {open_step!r}"
    if failed_step is not None:
        assert (records[-1]["failed_step"] or "").startswith(failed_step), records[-1]
        assert any(r["event"] == "step finished" and r["step"].startswith(failed_step) for r in records), records
    return records


# -- the faults ------------------------------------------------------------------------------------


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", "10", *args], capture_output=True, text=True, timeout=30, check=check)


def remove_drop_rules() -> None:
    """Remove the suite's iptables chain and its jump (idempotent)."""
    while _iptables("-D", "INPUT", "-j", IPTABLES_CHAIN, check=False).returncode == 0:
        pass
    _iptables("-F", IPTABLES_CHAIN, check=False)
    _iptables("-X", IPTABLES_CHAIN, check=False)


@contextmanager
def packets_dropped(*ports: int) -> Iterator[None]:
    """Every TCP packet on loopback to or from ``ports`` dropped, not refused (a host gone
    silent: no RST, no ICMP), until the block ends; every rule removed in a finally."""
    remove_drop_rules()
    try:
        _iptables("-N", IPTABLES_CHAIN)
        for port in ports:
            for direction in ("--dport", "--sport"):
                _iptables("-A", IPTABLES_CHAIN, "-i", "lo", "-p", "tcp", direction, str(port), "-j", "DROP")
        _iptables("-I", "INPUT", "1", "-j", IPTABLES_CHAIN)
        yield
    finally:
        remove_drop_rules()


def restart_tunnel(lab: Lab) -> None:
    """Start the off-site tunnel again if it died: it runs over the starport's sshd, so dropping
    that port's packets or killing that sshd kills it too, and nothing restarts it (as in the estate)."""
    from montagu_console.lab import tunnel

    if not tunnel.tunnel_pid(lab):
        lab.start_tunnel()


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(stat[1]) == pid:
                kids.append(int(entry.name))
    return kids


def kill_sshd(lab: Lab, site: SshdSite | None = None) -> int:
    """SIGKILL the sshd and every session it forked (open connections die at once, as when the
    host's sshd is killed); return how many processes were killed."""
    from montagu_console.lab import sshd

    pid = sshd.sshd_pid(lab, site or lab.starport_sshd)
    assert pid, "the lab's sshd is not running"
    doomed, todo = [], [pid]
    while todo:
        p = todo.pop()
        doomed.append(p)
        todo += _children(p)
    for p in doomed:
        with suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    return len(doomed)


@contextmanager
def nightly_on_a_small_filesystem(lab: Lab, copies: float) -> Iterator[Path]:
    """The nightly volume on a tmpfs of its own, room for ``copies`` copies of what it holds:
    the copy is copied onto the tmpfs, which is bind-mounted over the volume's directory, and
    barman's container (the one that mounts the volume) is restarted to see it. Yields the
    tmpfs's root; the copy is in its ``copy/``, so a filler beside it fills the filesystem
    without growing the copy. Undone in a finally: the volume's own directory, untouched
    underneath, comes back."""
    from montagu_console.lab.layout import NIGHTLY_VOLUME

    data = lab.volume_path(NIGHTLY_VOLUME)
    root = FAULT_LAB_DIR / "small-fs"
    used = int(subprocess.run(["du", "-sk", str(data)], capture_output=True, text=True, check=True).stdout.split()[0])
    root.mkdir(exist_ok=True)
    mounted = []
    try:
        _mount("-t", "tmpfs", "-o", f"size={int(used * copies) + 1024}k,mode=0755", "tmpfs", str(root))
        mounted.append(root)
        (root / "copy").mkdir()
        subprocess.run(["cp", "-a", f"{data}/.", str(root / "copy")], check=True, timeout=120)
        _mount("--bind", str(root / "copy"), str(data))
        mounted.append(data)
        lab.docker("restart", "-t", "5", BARMAN_CONTAINER, timeout=60)
        yield root
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)
        if data in mounted:
            lab.docker("restart", "-t", "5", BARMAN_CONTAINER, timeout=60)
        with suppress(OSError):
            root.rmdir()


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True, timeout=30)


def fill(root: Path, leave: int) -> Path:
    """A file beside the copy that takes all the free space of ``root``'s filesystem but ``leave`` bytes."""
    st = os.statvfs(root)
    filler = root / "filler"
    size = max(st.f_bavail * st.f_frsize - leave, 0)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    return filler


def stop_docker(lab: Lab) -> None:
    """Stop the lab's dockerd (its containers stop with it: they have no restart policy)."""
    from montagu_console.lab import docker_daemon

    docker_daemon.stop_daemon(lab)


def start_docker(lab: Lab) -> None:
    """Start the lab's dockerd again with its containers, montagu-db open and privateer's server."""
    from montagu_console.lab import docker_daemon, pg_container, privateer_lab

    if not docker_daemon.daemon_pid(lab):
        docker_daemon.spawn_daemon(lab)
        docker_daemon.wait_daemon(lab, timeout=60)
    lab.docker("start", BARMAN_CONTAINER, AWS_BARMAN_CONTAINER, SCIENCE_CONTAINER, timeout=120)
    pg_container.wait_open(lab, SCIENCE_CONTAINER)
    if not privateer_lab.server_running(lab):
        privateer_lab.start_server(lab)
    lab.pids["dockerd"] = docker_daemon.daemon_pid(lab) or 0
    lab.save()


# -- the TUI ------------------------------------------------------------------------------------------


def tui_app(config_path: Path):
    """The console as ``montagu-console`` runs it (tiered collector) on ``config_path``."""
    from montagu_console.collect import Collector
    from montagu_console.config import load_config
    from montagu_console.tui.app import MontaguApp

    config = load_config(config_path)
    return MontaguApp(config, Collector(config, tiered=True))


async def keys_answer(pilot) -> None:
    """``?`` opens the help screen and Escape closes it, each within a bound."""
    from montagu_console.tui.screens.help import HelpScreen

    app = pilot.app
    before = app.screen
    await pilot.press("question_mark")
    await tui_wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), timeout=10)
    await pilot.press("escape")
    await tui_wait_for(pilot, lambda: app.screen is before, timeout=10)


async def panel_becomes(pilot, name: str, word: str, timeout: float = ONE_REFRESH) -> str:
    """Wait until panel ``name`` says ``word``; return everything the panel shows."""
    app = pilot.app
    try:
        await tui_wait_for(pilot, lambda: panel_word(app, name) == word, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"panel {name} not {word} within {timeout:g} s: {panel_text(app, name)!r}") from None
    return panel_text(app, name)

"""The lab's own dockerd (its socket in the lab dir, host networking only) and docker CLI calls."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .layout import DOCKER_GROUP, Layout
from .proc import LabError, pid_running, pids_with, program, read_pid, run, spawn, stop_pid, wait_for

DAEMON_CONFIG = "{}\n"  # keeps /etc/docker/daemon.json of the machine out of the lab


def docker(
    lab: Layout, step: str, *args: str, timeout: float = 60, check: bool = True, input: str | bytes | None = None
) -> subprocess.CompletedProcess:
    """Run ``docker -H unix://LAB/docker.sock ARGS``."""
    return run(step, [program("docker"), "-H", lab.docker_host, *args], timeout=timeout, check=check, input=input)


def daemon_pid(lab: Layout) -> int | None:
    """The lab's dockerd pid if it is running."""
    pid = read_pid(lab.docker_pidfile)
    return pid if pid_running(pid, str(lab.docker_socket)) else None


def spawn_daemon(lab: Layout) -> None:
    """Start dockerd in the background (detached, its own session); see :func:`wait_daemon`."""
    for path in (lab.docker_root, lab.docker_exec_root):
        path.mkdir(parents=True, exist_ok=True)
    config = lab.docker_dir / "daemon.json"
    config.write_text(DAEMON_CONFIG)
    spawn(
        "start dockerd",
        [
            program("dockerd"),
            "--host",
            lab.docker_host,
            "--data-root",
            str(lab.docker_root),
            "--exec-root",
            str(lab.docker_exec_root),
            "--pidfile",
            str(lab.docker_pidfile),
            "--config-file",
            str(config),
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--group",
            DOCKER_GROUP,
        ],
        lab.docker_log,
    )


def engine_version(lab: Layout) -> str:
    """The engine version answering on the lab socket (raises LabError if none answers)."""
    result = docker(lab, "docker version", "version", "--format", "{{.Server.Version}}", timeout=5)
    return result.stdout.strip()


def wait_daemon(lab: Layout, timeout: float = 30) -> str:
    """Wait until dockerd answers on the lab socket; return its version."""

    def gone() -> str | None:
        pid = read_pid(lab.docker_pidfile)
        if pid and not pid_running(pid, str(lab.docker_socket)):
            return "dockerd exited"
        return None

    try:
        return str(
            wait_for(
                "wait for dockerd",
                lambda: lab.docker_socket.exists() and engine_version(lab),
                timeout=timeout,
                gone=gone,
            )
        )
    except LabError as exc:
        raise LabError(f"{exc} ({lab.docker_log} ends: {_log_tail(lab)})") from None


def _log_tail(lab: Layout) -> str:
    try:
        lines = lab.docker_log.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "no log"
    return " | ".join(lines[-2:])


def stop_daemon(lab: Layout) -> None:
    """Stop the lab's dockerd (SIGTERM, wait, SIGKILL) if it is running, then any containerd or
    shim of its exec-root that outlived it (only after a SIGKILL), and unmount its leftovers."""
    pid = daemon_pid(lab)
    if pid:
        stop_pid("stop dockerd", pid, str(lab.docker_socket), timeout=30)
    marker = f"{lab.docker_exec_root}/containerd/"
    for leftover in pids_with(marker):
        stop_pid("stop leftover containerd", leftover, marker, timeout=10)
    unmount_below(lab.docker_exec_root)  # dockerd leaves netns/default mounted


def unmount_below(path: Path) -> None:
    """Unmount whatever dockerd left mounted under ``path`` (deepest first)."""
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as info:
        mounts = [line.split()[4] for line in info]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        run("unmount dockerd leftover", ["umount", "-l", mount], timeout=10)


def remove_all_containers(lab: Layout) -> None:
    """Stop and remove every container of the lab's daemon (they are all the lab's)."""
    ids = docker(lab, "list containers", "ps", "-aq", timeout=15).stdout.split()
    if ids:
        docker(lab, "stop containers", "stop", "-t", "10", *ids, timeout=60, check=False)
        docker(lab, "remove containers", "rm", "-f", *ids, timeout=60)


def container_state(lab: Layout, *names: str) -> dict[str, dict]:
    """``docker inspect`` State of each existing container among ``names``."""
    result = docker(lab, "inspect containers", "inspect", "--type", "container", *names, timeout=10, check=False)
    try:
        return {c["Name"].lstrip("/"): c["State"] for c in json.loads(result.stdout or "[]")}
    except ValueError:
        return {}


def volume_path(lab: Layout, volume: str) -> str:
    """Host path of a named volume (``docker volume inspect``)."""
    result = docker(lab, f"inspect volume {volume}", "volume", "inspect", "--format", "{{.Mountpoint}}", volume)
    return result.stdout.strip()


def logs_tail(lab: Layout, container: str, lines: int = 3) -> str:
    """Last lines of a container's log, joined on one line."""
    result = docker(lab, "docker logs", "logs", "--tail", str(lines), container, check=False, timeout=10)
    text = (result.stdout + result.stderr).strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:])

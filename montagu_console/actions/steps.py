"""Step executors for the supervisor: each writes its output into the run log as it goes.

Commands run as children in the supervisor's own process group, so cancelling the run (a
signal to that group) stops them too. Docker steps use the Docker SDK.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from datetime import datetime, timezone
from typing import BinaryIO, Callable

from ..config import Config, HostConfig
from ..probes.pglog import parse_startup
from .progress import Progress, parse_line


class StepFailed(Exception):
    """A step did not succeed; the message names the step's command or container."""


class Cancelled(Exception):
    """The run was cancelled (SIGTERM to its process group)."""


def host_argv(host: HostConfig, argv: list[str]) -> list[str]:
    """argv to run ``argv`` on ``host``: as is locally, through the ssh client for an SSH host."""
    if host.transport == "local":
        return list(argv)
    ssh = ["ssh", "-p", str(host.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
           "-o", f"ConnectTimeout={int(host.connect_timeout)}"]
    if host.known_hosts:
        ssh += ["-o", f"UserKnownHostsFile={host.known_hosts}"]
    if host.key_file:
        ssh += ["-i", host.key_file, "-o", "IdentitiesOnly=yes"]
    target = f"{host.user}@{host.host}" if host.user else host.host
    return [*ssh, target, "--", shlex.join(argv)]


class StepRunner:
    """Runs the steps of one plan, writing to the run log and reporting progress."""

    def __init__(self, config: Config, log: BinaryIO, on_progress: Callable[[Progress], None],
                 cancelled: Callable[[], bool]):
        self.config = config
        self.log = log
        self.on_progress = on_progress
        self.cancelled = cancelled
        self._dockers: dict[str, object] = {}

    def write(self, text: str) -> None:
        self.log.write(text.encode())
        self.log.flush()

    def run(self, step: dict) -> None:
        """Execute one step; StepFailed or Cancelled when it does not succeed."""
        getattr(self, f"_{step['kind']}")(step)

    # -- kinds ---------------------------------------------------------------------------------

    def _command(self, step: dict) -> None:
        self._exec(step["host"], step["argv"])

    def _timestamp(self, step: dict) -> None:
        now = datetime.now(timezone.utc)
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") + "000+00:00"  # date --rfc-3339=ns
        self._exec(step["host"], [*step["argv"], "sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", stamp, step["path"]])
        self.write(f"wrote {step['path']}: {stamp}\n")

    def _replay(self, step: dict) -> None:
        import docker.errors

        client = self._docker(step["host"])
        name = step["container"]
        if not step.get("volume"):
            raise StepFailed("WAL replay needs nightly.volume (a Docker volume)")
        try:
            old = client.containers.get(name)
            if old.status == "running":
                raise StepFailed(f"container {name} is already running on {step['host']} (another replay?)")
            old.remove()
        except docker.errors.NotFound:
            pass
        try:
            container = client.containers.run(
                step["image"], step["command"] or None, name=name, detach=True, user=step.get("user") or "",
                network_mode="host", environment=list(step.get("env") or []),
                volumes=[f"{step['volume']}:{step['data_dir']}:rw", *(step.get("mounts") or [])])
        except docker.errors.DockerException as e:
            raise StepFailed(f"cannot start {name} from {step['image']}: {e}") from None
        try:
            self._until_ready(container, step["ready_command"], step["timeout"])
        finally:
            try:
                container.stop(timeout=120)
                self.write(_tail(container.logs(tail=5)))
                container.remove()
            except docker.errors.DockerException as e:
                self.write(f"warning: could not stop/remove {name}: {e}\n")

    def _until_ready(self, container, ready_command: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            self._check_cancel()
            container.reload()
            logs = container.logs().decode("utf-8", "replace").splitlines()
            for line in logs[seen:]:
                self.write(line + "\n")
                self._progress_from_log("\n".join(logs))
            seen = len(logs)
            if container.status != "running":
                raise StepFailed(f"container {container.name} stopped ({container.status}) before it was ready")
            rc, _ = container.exec_run(ready_command)
            if rc == 0:
                self.write(f"{container.name}: `{shlex.join(ready_command)}` succeeded\n")
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"{container.name} not ready after {timeout:g} s (`{shlex.join(ready_command)}`)")
            time.sleep(1)

    def _container_stop(self, step: dict) -> None:
        container = self._container(step)
        if container.status == "running":
            container.stop(timeout=120)
        self.write(f"{step['container']} stopped\n")

    def _container_start(self, step: dict) -> None:
        self._container(step).start()
        self.write(f"{step['container']} started\n")

    def _wait_ready(self, step: dict) -> None:
        container = self._container(step)
        # only this start's lines: `docker logs` keeps those of earlier runs of the container
        since = _started_epoch(container)
        probe = ["psql", "-U", step["db_user"], "-d", step["db_name"], "-Atc", "select pg_is_in_recovery()"]
        deadline = time.monotonic() + step["timeout"]
        seen = 0

        def pump() -> None:
            nonlocal seen
            raw = container.logs(since=since) if since else container.logs(tail=2000)
            lines = raw.decode("utf-8", "replace").splitlines()
            if not since:
                lines = lines[max((i for i, line in enumerate(lines) if "starting PostgreSQL" in line), default=0):]
            for line in lines[seen:]:
                self.write(line + "\n")
            seen = len(lines)
            self._progress_from_log("\n".join(lines))

        while True:
            self._check_cancel()
            container.reload()
            pump()
            if container.status != "running":
                raise StepFailed(f"{step['container']} stopped ({container.status}) during start-up")
            rc, out = container.exec_run(probe)
            if rc == 0 and out.decode().strip() == "f":
                pump()
                self.write(f"{step['container']} accepts connections and is out of recovery\n")
                self.on_progress(Progress(100.0, 0, "database ready"))
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"{step['container']} did not accept connections in {step['timeout']} s")
            time.sleep(1)

    # -- helpers -------------------------------------------------------------------------------

    def _exec(self, host_name: str, argv: list[str]) -> None:
        host = self.config.hosts[host_name]
        full = host_argv(host, argv)
        self.write(f"$ {shlex.join(argv)}" + (f"   (on {host_name})" if host.transport != "local" else "") + "\n")
        try:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise StepFailed(f"`{argv[0]}` not found on {host_name}") from None
        assert proc.stdout is not None
        buffer = b""
        while chunk := proc.stdout.read1(65536):
            self.log.write(chunk)
            self.log.flush()
            buffer = (buffer + chunk)[-4096:]
            for line in reversed(buffer.decode("utf-8", "replace").replace("\r", "\n").splitlines()):
                if progress := parse_line(line):
                    self.on_progress(progress)
                    break
        rc = proc.wait()
        self._check_cancel()
        if rc != 0:
            raise StepFailed(f"`{shlex.join(argv)}` on {host_name} exited {rc}")

    def _docker(self, host_name: str):
        import docker

        if host_name not in self._dockers:
            url = self.config.hosts[host_name].docker
            if not url:
                raise StepFailed(f"{host_name}: no docker endpoint configured (hosts.{host_name}.docker)")
            self._dockers[host_name] = docker.DockerClient(base_url=url, timeout=120)
        return self._dockers[host_name]

    def _container(self, step: dict):
        import docker.errors

        try:
            return self._docker(step["host"]).containers.get(step["container"])
        except docker.errors.NotFound:
            raise StepFailed(f"container {step['container']} does not exist on {step['host']}") from None
        except docker.errors.DockerException as e:
            raise StepFailed(f"{step['host']}: docker: {e}") from None

    def _progress_from_log(self, log: str) -> None:
        p = parse_startup(log)
        if p.phase == "redo" and p.current_lsn:
            self.on_progress(Progress(None, None, f"redo at {p.current_lsn}"))

    def _check_cancel(self) -> None:
        if self.cancelled():
            raise Cancelled()


def _started_epoch(container) -> float | None:
    """When the container last started (epoch seconds), from ``State.StartedAt``; None if unknown."""
    text = (container.attrs.get("State") or {}).get("StartedAt") or ""
    try:
        stamp = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.year > 1 else None


def _tail(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if text.endswith("\n") or not text else text + "\n"

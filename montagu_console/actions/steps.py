"""Step executors for the supervisor: each writes its output into the run log as it goes.

Commands run as children in the supervisor's own process group, so cancelling the run (a
signal to that group) stops them too. Docker steps use the Docker SDK.

Everything that reaches the run log passes :class:`RunLog`: whole lines, control characters
replaced (:func:`montagu_console.text.clean`) and secrets redacted, in a file only its owner
can read. Nothing here builds a shell string from data: commands are argv lists, and the
nightly recover's file operations are one constant script with the paths as its arguments.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shlex
import stat
import subprocess
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from .. import procs
from ..clock import parse_iso, rfc3339_ns, utc_now
from ..config import Config, HostConfig
from ..probes.pglog import parse_startup
from ..redact import redact
from ..text import MAX_LINE_CHARS, MAX_OUTPUT_BYTES, clean, one_line
from . import plans
from .progress import Progress, parse_line


class StepFailed(Exception):
    """A step did not succeed; the message names the step's command or container."""


class Cancelled(Exception):
    """The run was cancelled (SIGTERM to its process group)."""


def host_argv(host: HostConfig, argv: list[str]) -> list[str]:
    """argv to run ``argv`` on ``host``: as is locally, through the ssh client for an SSH host.

    The operator's ssh config may set the port and user; it never forwards the agent or ports
    for a step, and the host can never be read as an ssh option (it comes after ``--``).
    """
    if host.transport == "local":
        return list(argv)
    timeout = max(1, math.ceil(host.connect_timeout or 5))
    ssh = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"ConnectTimeout={timeout}",
        "-o",
        "ForwardAgent=no",
        "-o",
        "ForwardX11=no",
        "-o",
        "ClearAllForwardings=yes",
    ]
    if host.port is not None:
        ssh += ["-p", str(host.port)]
    if host.known_hosts:
        ssh += ["-o", f"UserKnownHostsFile={host.known_hosts}"]
    if host.key_file:
        ssh += ["-i", host.key_file, "-o", "IdentitiesOnly=yes"]
    target = f"{host.user}@{host.host}" if host.user else str(host.host)
    return [*ssh, "--", target, shlex.join(argv)]


# -- the run log -------------------------------------------------------------------------------

_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
_LINE_END = re.compile(rb"\r\n|\n|\r")


class RunLog:
    """A run's log file, written only through here.

    Output is line-buffered: a line is written once its newline has come (or once it is longer
    than :attr:`MAX_LINE_BYTES`), cleaned of control characters and escape sequences and then
    redacted as a whole, so a secret split across two reads is still found. A private key's
    body lines are dropped. Progress redraws (rsync's ``\\r``) are collapsed: only the line a
    redraw ends on is kept, plus at most one redraw every :attr:`REDRAW_SECONDS` so that a
    follower still sees a long copy advance. The file is created 0600 and never through a
    symlink.
    """

    MAX_LINE_BYTES = 64 * 1024
    REDRAW_SECONDS = 5.0

    def __init__(self, fd: int):
        self.fd = fd
        self._pending = b""  # an unfinished line
        self._redraw: bytes | None = None  # the newest redrawn line not yet written
        self._redraw_at = 0.0
        self._in_key = False

    @classmethod
    def open(cls, path: Path | str) -> RunLog:
        """Open (or create, 0600) the log at ``path`` for appending; a symlink is refused."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise OSError(e.errno, f"cannot open the run log {path}: {e.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, f"the run log {path} is not a regular file")
        os.fchmod(fd, 0o600)
        return cls(fd)

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            self.end_output()
            os.close(self.fd)
            self.fd = -1

    def tell(self) -> int:
        """The log's size: where the next line will start."""
        return os.fstat(self.fd).st_size

    def flush(self) -> None:
        """Nothing is buffered but an unfinished line, which waits for its end."""

    def write(self, text: str) -> None:
        """A message of the console's own: it starts and ends a line of the log."""
        self.end_output()
        self.feed(text)
        self.end_output()

    def feed(self, data: bytes | str) -> None:
        """A piece of a command's output, as it came."""
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        buffer = self._pending + data
        lines: list[bytes] = []
        start = 0
        for m in _LINE_END.finditer(buffer):
            segment = buffer[start : m.start()]
            start = m.end()
            if m.group() == b"\r":  # a progress redraw: superseded by what follows
                if segment.strip():
                    now = time.monotonic()
                    if now - self._redraw_at >= self.REDRAW_SECONDS:
                        lines.append(segment)
                        self._redraw, self._redraw_at = None, now
                    else:
                        self._redraw = segment
                continue
            if not segment.strip() and self._redraw is not None:
                segment = self._redraw  # "...100%\r\n" split across reads: the redraw was the line
            lines.append(segment)
            self._redraw = None
        self._pending = buffer[start:]
        while len(self._pending) > self.MAX_LINE_BYTES:
            lines.append(self._pending[: self.MAX_LINE_BYTES])
            self._pending = self._pending[self.MAX_LINE_BYTES :]
        self._emit(lines)

    def end_output(self) -> None:
        """The output stopped (a command ended): write what is left of its last line."""
        if self._pending.strip():
            self._emit([self._pending])
        elif self._redraw is not None:
            self._emit([self._redraw])
        self._pending, self._redraw = b"", None

    def _emit(self, lines: list[bytes]) -> None:
        out = []
        for raw in lines:
            text = clean(raw, limit=self.MAX_LINE_BYTES).replace("\n", " ")
            if self._in_key:
                if _KEY_END.search(text):
                    self._in_key = False
                continue
            if _KEY_BEGIN.search(text) and not _KEY_END.search(text):
                self._in_key = True
            out.append(redact(text) + "\n")
        if out and self.fd >= 0:
            data = "".join(out).encode()
            while data:
                data = data[os.write(self.fd, data) :]


# -- steps -------------------------------------------------------------------------------------


class StepRunner:
    """Runs the steps of one plan, writing to the run log and reporting progress."""

    def __init__(
        self, config: Config, log: RunLog, on_progress: Callable[[Progress], None], cancelled: Callable[[], bool]
    ):
        self.config = config
        self.log = log
        self.on_progress = on_progress
        self.cancelled = cancelled
        self._dockers: dict[str, Any] = {}

    def write(self, text: str) -> None:
        self.log.write(text)

    def run(self, step: dict) -> None:
        """Execute one step; StepFailed or Cancelled when it does not succeed."""
        getattr(self, f"_{step['kind']}")(step)

    # -- kinds ---------------------------------------------------------------------------------

    def _command(self, step: dict) -> None:
        self._exec(step["host"], step["argv"])

    def _nightly_files(self, step: dict) -> None:
        """Prepare the dump directory, move the recovered files up or write the timestamp file.

        Refused unless the mount passes :func:`plans.mount_problem` here too and the volume is
        really mounted there in barman's container; the script checks again in the container.
        """
        problem = plans.mount_problem(step.get("mount"), step.get("barman_home")) or plans.timestamp_file_problem(
            step.get("timestamp_file")
        )
        if problem:
            raise StepFailed(f"refused: {problem}")
        self._check_volume_mounted(step)
        args = [step["op"], step["mount"], step["barman_home"], step["timestamp_file"]]
        stamp = None
        if step["op"] == "timestamp":
            stamp = self.copy_stamp()
            args.append(stamp)
        prefix = list(step["argv"])
        self._exec(
            step["host"],
            [*prefix, "sh", "-c", plans.NIGHTLY_SCRIPT, "sh", *args],
            shown=[*prefix, "sh", "-c", "<nightly script>", "sh", *args],
        )
        if stamp:
            self.write(f"wrote {step['path']}: {stamp}\n")

    def copy_stamp(self) -> str:
        """What the timestamp step writes into ``.barman-last-restore``: now."""
        return rfc3339_ns(utc_now())

    def _check_volume_mounted(self, step: dict) -> None:
        import docker.errors

        mounts: list[dict] | None
        try:
            attrs = self._docker(step["host"]).api.inspect_container(step["container"]) if step.get("container") else {}
            mounts = list(attrs.get("Mounts") or [])
        except docker.errors.NotFound:
            mounts = None
        except docker.errors.DockerException as e:
            raise StepFailed(f"{step['host']}: docker inspect {step.get('container')}: {one_line(str(e))}") from None
        problem = plans.volume_mount_problem(
            step.get("volume"), step["mount"], step.get("container"), step["host"], mounts
        )
        if problem:
            raise StepFailed(f"refused: {problem}")

    def _replay(self, step: dict) -> None:
        container = self.start_replay(step)
        try:
            self._until_ready(container, step["ready_command"], step["timeout"])
        finally:
            self.stop_replay(container)

    def start_replay(self, step: dict, env: dict[str, str] | None = None) -> Any:
        """Start the replay container of ``step`` (nightly.replay's image and command on the
        step's volume); ``env`` overrides entries of nightly.replay.env (a PITR's PGPORT)."""
        import docker.errors

        client = self._docker(step["host"])
        name = step["container"]
        if not step.get("volume"):
            raise StepFailed("WAL replay needs nightly.volume (a Docker volume)")
        names = list(step.get("env_names") or [])
        try:  # plan.json keeps the names; the values stay in the config
            environment = plans.env_values(self.config.nightly.replay.env, names)
        except KeyError as e:
            raise StepFailed(
                f"nightly.replay.env no longer sets {e.args[0]} (it did when the run was planned)"
            ) from None
        if env:
            environment = [e for e in environment if e.split("=", 1)[0] not in env]
            environment += [f"{key}={value}" for key, value in env.items()]
        try:
            old = client.containers.get(name)
            if old.status == "running" and not procs.owner_gone(old.labels.get(procs.OWNER_LABEL, "")):
                raise StepFailed(f"container {name} is already running on {step['host']} (another replay?)")
            if old.status == "running":
                self.write(f"removing {name}, left running by a run whose supervisor was killed\n")
            old.remove(force=True)
        except docker.errors.NotFound:
            pass
        try:
            return client.containers.run(
                step["image"],
                step["command"] or None,
                name=name,
                detach=True,
                labels={procs.OWNER_LABEL: procs.owner_label()},
                user=step.get("user") or "",
                network_mode="host",
                environment=environment,
                volumes=[f"{step['volume']}:{step['data_dir']}:rw", *(step.get("mounts") or [])],
            )
        except docker.errors.DockerException as e:
            raise StepFailed(f"cannot start {name} from {step['image']}: {one_line(str(e))}") from None

    def stop_replay(self, container: Any) -> None:
        """Stop and remove a replay container, its last log lines kept in the run log; never raises."""
        import docker.errors

        try:
            container.stop(timeout=120)
            self.write(clean(container.logs(tail=5), limit=5 * MAX_LINE_CHARS))
            container.remove()
        except docker.errors.DockerException as e:
            self.write(f"warning: could not stop/remove {container.name}: {one_line(str(e))}\n")

    def _until_ready(self, container: Any, ready_command: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        logs = ContainerLog(container)
        while True:
            self._check_cancel()
            container.reload()
            self._pump(logs)
            if container.status != "running":
                raise StepFailed(
                    f"container {container.name} stopped ({container.status}) before it was ready: {why_stopped(logs)}"
                )
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
        logs = ContainerLog(container, since_ns=started_ns(container), from_marker="starting PostgreSQL")
        probe = ["psql", "-U", step["db_user"], "-d", step["db_name"], "-Atc", "select pg_is_in_recovery()"]
        deadline = time.monotonic() + step["timeout"]
        while True:
            self._check_cancel()
            container.reload()
            self._pump(logs)
            if container.status != "running":
                raise StepFailed(f"{step['container']} stopped ({container.status}) during start-up")
            rc, out = container.exec_run(probe)
            if rc == 0 and clean(out, limit=MAX_LINE_CHARS).strip() == "f":
                self._pump(logs)
                self.write(f"{step['container']} accepts connections and is out of recovery\n")
                self.on_progress(Progress(100.0, 0, "database ready"))
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"{step['container']} did not accept connections in {step['timeout']} s")
            time.sleep(1)

    # -- helpers -------------------------------------------------------------------------------

    def _pump(self, logs: ContainerLog) -> None:
        """Copy a container's new log lines into the run log and read the redo's progress from them."""
        new = logs.new_lines()
        for line in new:
            self.log.feed(line + "\n")
        if new:
            self._progress_from_log("\n".join(logs.recent))

    def _exec(self, host_name: str, argv: list[str], *, shown: list[str] | None = None) -> None:
        host = self.config.hosts[host_name]
        full = host_argv(host, argv)
        what = shlex.join(shown or argv)
        self.write(f"$ {what}" + (f"   (on {host_name})" if host.transport != "local" else "") + "\n")
        try:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise StepFailed(f"`{argv[0]}` not found on {host_name}") from None
        assert proc.stdout is not None
        buffer = b""
        while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
            self.log.feed(chunk)
            buffer = (buffer + chunk)[-4096:]
            for line in reversed(buffer.decode("utf-8", "replace").replace("\r", "\n").splitlines()):
                if progress := parse_line(line):
                    self.on_progress(progress)
                    break
        self.log.end_output()
        rc = proc.wait()
        self._check_cancel()
        if rc != 0:
            raise StepFailed(f"`{what}` on {host_name} exited {rc}")

    def _docker(self, host_name: str) -> Any:
        import docker

        if host_name not in self._dockers:
            url = self.config.hosts[host_name].docker
            if not url:
                raise StepFailed(f"{host_name}: no docker endpoint configured (hosts.{host_name}.docker)")
            self._dockers[host_name] = docker.DockerClient(base_url=url, timeout=120)
        return self._dockers[host_name]

    def _container(self, step: dict) -> Any:
        import docker.errors

        try:
            return self._docker(step["host"]).containers.get(step["container"])
        except docker.errors.NotFound:
            raise StepFailed(f"container {step['container']} does not exist on {step['host']}") from None
        except docker.errors.DockerException as e:
            raise StepFailed(f"{step['host']}: docker: {one_line(str(e))}") from None

    def _progress_from_log(self, log: str) -> None:
        p = parse_startup(log)
        if p.phase == "redo" and p.current_lsn:
            self.on_progress(Progress(None, None, f"redo at {p.current_lsn}"))

    def _check_cancel(self) -> None:
        if self.cancelled():
            raise Cancelled()


# -- container logs ----------------------------------------------------------------------------

_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def stamp_ns(text: str | None) -> int | None:
    """Docker's RFC 3339 timestamp (nanoseconds, ``Z``) as integer nanoseconds since the epoch;
    None when unreadable or Docker's "never" (year 1)."""
    m = _STAMP.fullmatch((text or "").strip())
    if not m:
        return None
    try:
        seconds = int(parse_iso(m.group(1) + m.group(3)).timestamp())
    except (ValueError, OverflowError):
        return None
    if seconds <= 0:
        return None
    return seconds * 10**9 + int((m.group(2) or "").ljust(9, "0"))


def started_ns(container: Any) -> int | None:
    """When the container last started (ns since the epoch), from ``State.StartedAt``; None if unknown."""
    return stamp_ns((container.attrs.get("State") or {}).get("StartedAt"))


def why_stopped(logs: ContainerLog) -> str:
    """The line of a stopped container's log that says why: its last FATAL or PANIC (postgres),
    else its last line."""
    lines = list(logs.recent)
    fatal = [line for line in lines if "FATAL" in line or "PANIC" in line]
    last = (fatal or lines or ["its log is empty"])[-1]
    return one_line(last, limit=200)


class ContainerLog:
    """A container's log lines, followed from a moment on; each read is bounded.

    Lines are asked for with Docker's timestamps and ``since``, so a read returns only what is
    new (a line stamped at or before the newest one seen is dropped), at most
    ``MAX_OUTPUT_BYTES`` at a time, each line cleaned. ``recent`` keeps the newest lines for
    progress parsing.
    """

    RECENT = 2000

    def __init__(self, container: Any, *, since_ns: int | None = None, from_marker: str | None = None):
        self.container = container
        self.since_ns = since_ns
        self.from_marker = from_marker if since_ns is None else None
        self.recent: deque[str] = deque(maxlen=self.RECENT)
        self._first = True

    def new_lines(self) -> list[str]:
        kwargs: dict[str, Any] = {"timestamps": True, "stream": True, "follow": False}
        if self.since_ns is not None:
            kwargs["since"] = max(1, self.since_ns // 10**9)
        elif self._first and self.from_marker:
            kwargs["tail"] = self.RECENT
        data = bytearray()
        stream = self.container.logs(**kwargs)
        try:
            for chunk in stream:
                data += chunk
                if len(data) >= MAX_OUTPUT_BYTES:
                    break
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        raw_lines = bytes(data).split(b"\n")
        cut = len(data) >= MAX_OUTPUT_BYTES
        if not raw_lines[-1] or (cut and len(raw_lines) > 1):
            raw_lines = raw_lines[:-1]  # a line cut by the cap comes again, whole, next time
        out = []
        for raw in raw_lines:
            stamp, _, rest = raw.partition(b" ")
            ns = stamp_ns(stamp.decode("ascii", "replace"))
            if ns is not None and self.since_ns is not None and ns <= self.since_ns:
                continue
            if ns is not None:
                self.since_ns = ns
            out.append(clean(rest, limit=MAX_LINE_CHARS).replace("\n", " "))
        if self._first and self.from_marker:
            starts = [i for i, line in enumerate(out) if self.from_marker in line]
            out = out[starts[-1] :] if starts else out
        self._first = False
        self.recent.extend(out)
        return out


# -- the nightly recover's preflight -----------------------------------------------------------


async def nightly_mount_problem(config: Config, pool: Any) -> str | None:
    """Why the nightly recover must not start, as far as its mount is concerned, or None.

    The mount path must pass :func:`plans.mount_problem`, and barman's container must really
    mount ``nightly.volume`` at ``nightly.mount`` (``docker inspect`` through the Docker SDK):
    otherwise the recover would empty and refill a directory that is not the nightly copy.
    """
    n, b = config.nightly, config.barman
    problem = plans.mount_problem(n.mount, b.home) or plans.timestamp_file_problem(n.timestamp_file)
    if problem or not n.volume or not b.container:
        return problem or plans.volume_mount_problem(n.volume, n.mount, b.container, b.host, [])
    return await barman_mount_problem(config, pool, n.volume, n.mount)


async def barman_mount_problem(config: Config, pool: Any, volume: str, mount: str) -> str | None:
    """Why Docker volume ``volume`` is not known to be mounted at ``mount`` in barman's running
    container (the nightly copy's, a PITR's scratch copy), or None."""
    b = config.barman
    if not b.container:
        return plans.volume_mount_problem(volume, mount, b.container, b.host, [])
    host = config.hosts.get(b.host)
    if host is None or not host.docker:
        return (
            f"cannot check that volume {volume} is mounted at {mount} in barman's container {b.container}: "
            f"no docker endpoint for {b.host} (hosts.{b.host}.docker)"
        )
    docker = pool.docker(b.host)
    try:
        state = await docker.container_state(b.container)
        found = await docker.containers_with_volume(volume) if state is not None else []
    except Exception as e:  # cannot be checked: refuse rather than guess
        return (
            f"cannot check that volume {volume} is mounted at {mount} in barman's container {b.container} "
            f"on {b.host}: {one_line(str(e), limit=300)}"
        )
    mounts = (
        None
        if state is None
        else [
            {"Type": "volume", "Name": volume, "Destination": m.destination}
            for m in found
            if m.container == b.container
        ]
    )
    problem = plans.volume_mount_problem(volume, mount, b.container, b.host, mounts)
    if problem:
        return problem
    if state is not None and not state.running:
        return f"barman's container {b.container} is not running on {b.host}"
    return None

"""A Docker daemon (unix:// or ssh://) through the docker SDK, with bounded async calls.

Host keys for ssh:// URLs: docker-py 7.2 connects with paramiko, loads only
``~/.ssh/known_hosts`` (``load_system_host_keys()``) and sets ``RejectPolicy``, so an
unknown or changed host key is refused, never added. It reads HostName, Port, User,
IdentityFile and ProxyCommand from ``~/.ssh/config`` and offers the agent and default keys.
It does not use a host's ``known_hosts``/``key_file``/``connect_timeout`` settings and its
TCP connect has no timeout: the caller is still bounded here, but the worker thread may
linger until the OS gives up on the connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import posixpath
import re
import shlex
import socket
import struct
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence, TypeVar

import docker
import docker.constants
import docker.errors
import paramiko
import requests

from montagu_console.errors import TransportError
from montagu_console.transports.base import CommandResult, FileMissing

T = TypeVar("T")

MAX_PARALLEL = 4  # calls in flight per endpoint
GRACE = 0.5  # seconds the awaiting side allows beyond a call's timeout
MAX_SYMLINKS = 8
_DIR_BIT = 1 << 31  # Go os.ModeDir, as in the archive stat header


@dataclass(frozen=True)
class ContainerState:
    """A container as ``docker inspect`` reports it."""

    name: str
    status: str  # created, running, paused, restarting, removing, exited, dead
    running: bool
    exit_code: int | None  # None while running or never started
    started_at: datetime | None
    finished_at: datetime | None
    image: str


@dataclass(frozen=True)
class VolumeMount:
    """A container that mounts a volume, and where."""

    container: str
    destination: str
    running: bool


class DockerEndpoint:
    """One Docker daemon; the SDK client is created on first use and again after a failure."""

    def __init__(self, host_name: str, url: str, timeout: float):
        self.host_name = host_name
        self.url = url
        self.timeout = timeout
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    async def container_state(self, name: str) -> ContainerState | None:
        """The container's state, or None if there is no such container."""

        def op(api: docker.APIClient) -> ContainerState | None:
            try:
                info = api.inspect_container(name)
            except docker.errors.NotFound:
                return None
            state = info["State"]
            never_finished = state["Running"] or state["Status"] == "created"
            return ContainerState(
                name=info["Name"].lstrip("/"),
                status=state["Status"],
                running=state["Running"],
                exit_code=None if never_finished else state["ExitCode"],
                started_at=parse_timestamp(state.get("StartedAt")),
                finished_at=parse_timestamp(state.get("FinishedAt")),
                image=info["Config"]["Image"],
            )

        return await self._call(f"inspect {name}", op)

    async def container_logs(self, name: str, *, tail: int = 200) -> str:
        """The last ``tail`` lines of stdout and stderr."""

        def op(api: docker.APIClient) -> str:
            try:
                return api.logs(name, stdout=True, stderr=True, tail=tail).decode(errors="replace")
            except docker.errors.NotFound:
                raise TransportError(self.host_name, f"docker logs {name}", "no such container") from None

        return await self._call(f"logs {name}", op)

    async def read_file_in_container(self, name: str, path: str, *, max_bytes: int = 1_000_000) -> bytes:
        """A file's bytes via the archive API (works on stopped containers); follows symlinks."""
        what = f"cp {name}:{path}"

        def op(api: docker.APIClient) -> bytes:
            current = path
            for _ in range(MAX_SYMLINKS):
                try:
                    stream, stat = api.get_archive(name, current)
                except docker.errors.NotFound as e:
                    if "no such container" in str(e.explanation).lower():
                        raise TransportError(self.host_name, f"docker {what}", "no such container") from None
                    raise FileMissing(self.host_name, f"{name}:{path}") from None
                if stat.get("linkTarget"):
                    stream.close()
                    current = posixpath.join(posixpath.dirname(current), stat["linkTarget"])
                    continue
                if stat["mode"] & _DIR_BIT:
                    stream.close()
                    raise TransportError(self.host_name, f"docker {what}", "is a directory")
                if stat["size"] > max_bytes:
                    stream.close()
                    raise TransportError(self.host_name, f"docker {what}",
                                         f"file is {stat['size']} bytes, more than {max_bytes}")
                data = b"".join(stream)
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    member = tar.next()
                    f = tar.extractfile(member) if member is not None else None
                    if f is None:
                        raise TransportError(self.host_name, f"docker {what}", "not a regular file")
                    return f.read()
            raise TransportError(self.host_name, f"docker {what}", "too many levels of symbolic links")

        return await self._call(what, op)

    async def containers_with_volume(self, volume: str) -> list[VolumeMount]:
        """Every container (running or not) that mounts the named volume."""

        def op(api: docker.APIClient) -> list[VolumeMount]:
            found = []
            for c in api.containers(all=True, filters={"volume": volume}):
                for m in c.get("Mounts") or []:
                    if m.get("Name") == volume:
                        found.append(VolumeMount(c["Names"][0].lstrip("/"), m["Destination"], c["State"] == "running"))
            return sorted(found, key=lambda v: (v.container, v.destination))

        return await self._call(f"ps --filter volume={volume}", op)

    async def exec(self, name: str, argv: Sequence[str], *, timeout: float, user: str | None = None) -> CommandResult:
        """Run ``argv`` in a running container; stdout and stderr kept apart.

        On timeout the call returns, but the process is left running in the container.
        """
        argv = tuple(argv)
        what = f"exec {name} {shlex.join(argv)}"

        def op(api: docker.APIClient) -> CommandResult:
            started = time.monotonic()
            deadline = started + timeout
            try:
                exec_id = api.exec_create(name, list(argv), stdout=True, stderr=True, user=user or "")["Id"]
            except docker.errors.NotFound:
                raise TransportError(self.host_name, f"docker {what}", "no such container") from None
            sock = api.exec_start(exec_id, socket=True)  # a SocketIO, or a paramiko Channel for ssh://
            conn = getattr(sock, "_sock", sock)
            try:
                raw = _read_until_eof(conn, deadline)
            except socket.timeout:
                raise TransportError(self.host_name, f"docker {what}", f"timed out after {timeout:g} s") from None
            finally:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                sock.close()
                conn.close()
            while (info := api.exec_inspect(exec_id))["Running"] and time.monotonic() < deadline:
                time.sleep(0.02)  # the exit code lags the end of the output stream a little
            out, err = _demux(raw)
            code = info["ExitCode"] if info["ExitCode"] is not None else -1
            return CommandResult(argv, code, out.decode(errors="replace"), err.decode(errors="replace"),
                                 time.monotonic() - started)

        return await self._call(what, op, timeout=timeout)

    async def volume_exists(self, name: str) -> bool:
        """Whether the named volume exists."""

        def op(api: docker.APIClient) -> bool:
            try:
                api.inspect_volume(name)
            except docker.errors.NotFound:
                return False
            return True

        return await self._call(f"volume inspect {name}", op)

    async def ping(self) -> None:
        """Raise TransportError unless the daemon answers."""
        await self._call("ping", lambda api: api.ping())

    async def close(self) -> None:
        """Close the SDK client and the endpoint's threads."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        closing = asyncio.get_running_loop().run_in_executor(executor, self._reset, None)
        executor.shutdown(wait=False)
        try:
            await asyncio.wait_for(closing, self.timeout + GRACE)
        except asyncio.TimeoutError:
            pass  # a thread is stuck on the dead daemon; it ends at its own timeout

    # -- threads -----------------------------------------------------------------------------

    async def _call(self, what: str, op: Callable[[docker.APIClient], T], *, timeout: float | None = None) -> T:
        budget = self.timeout if timeout is None else timeout
        if self._executor is None:
            self._executor = ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix=f"docker-{self.host_name}")
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._guarded, what, op)
        try:
            return await asyncio.wait_for(future, budget + GRACE)
        except asyncio.TimeoutError:
            raise TransportError(self.host_name, f"docker {what}", f"timed out after {budget:g} s") from None

    def _guarded(self, what: str, op: Callable[[docker.APIClient], T]) -> T:
        client = None
        try:
            client = self._connected()
            return op(client.api)
        except docker.errors.APIError as e:
            raise TransportError(self.host_name, f"docker {what}", str(e.explanation or e)) from None
        except (docker.errors.DockerException, requests.RequestException, paramiko.SSHException, OSError) as e:
            self._reset(client)
            raise TransportError(self.host_name, f"docker {self.url}", _unreachable(e, self.url, self.timeout)) from None

    def _connected(self) -> docker.DockerClient:
        if not self._lock.acquire(timeout=self.timeout):
            raise TransportError(self.host_name, f"docker {self.url}", "timed out waiting for another call to connect")
        try:
            if self._client is None:
                version = _unix_api_version(self.url, self.timeout) if self.url.startswith("unix://") else "auto"
                self._client = docker.DockerClient(base_url=self.url, timeout=self.timeout, version=version)
            return self._client
        finally:
            self._lock.release()

    def _reset(self, client: docker.DockerClient | None) -> None:
        """Drop the SDK client (only if it is still ``client``, when one is given)."""
        with self._lock:
            if client is not None and self._client is not client:
                return
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _unix_api_version(url: str, timeout: float) -> str:
    """The daemon's API version, asked without leaking sockets.

    When the daemon is missing, refuses or hangs, docker-py's connect and DockerClient()'s own
    version request leave their socket for the garbage collector; these are closed properly.
    """
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(url[len("unix://"):])
    probe = docker.APIClient(base_url=url, timeout=timeout, version=docker.constants.MINIMUM_DOCKER_API_VERSION)
    try:
        return probe.version(api_version=False)["ApiVersion"]
    finally:
        probe.close()


def parse_timestamp(value: str | None) -> datetime | None:
    """Docker's RFC 3339 timestamp (nanoseconds allowed); the zero time "0001-01-01..." is None."""
    if not value or value.startswith("0001-01-01"):
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value)
    if m is None:
        raise ValueError(f"not a Docker timestamp: {value!r}")
    zone = "+00:00" if m[3] == "Z" else m[3]
    return datetime.fromisoformat(f"{m[1]}.{(m[2] or '')[:6]:0<6}{zone}")


def _read_until_eof(sock, deadline: float) -> bytes:
    data = bytearray()
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk


def _demux(raw: bytes) -> tuple[bytes, bytes]:
    """Split Docker's multiplexed stream (8-byte frame headers) into stdout and stderr."""
    streams = {1: bytearray(), 2: bytearray()}
    i = 0
    while i + 8 <= len(raw):
        kind, size = struct.unpack_from(">BxxxL", raw, i)
        streams.get(kind, streams[1]).extend(raw[i + 8:i + 8 + size])
        i += 8 + size
    return bytes(streams[1]), bytes(streams[2])


def _unreachable(e: BaseException, url: str, timeout: float) -> str:
    """'daemon not reachable (...)' with the most specific cause found in the exception chain."""
    seen, todo = set(), [e]
    while todo:
        x = todo.pop(0)
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, paramiko.BadHostKeyException):
            return "ssh host key mismatch (refusing; possible man-in-the-middle)"
        if isinstance(x, paramiko.SSHException) and "not found in known_hosts" in str(x):
            return "ssh host key not in ~/.ssh/known_hosts (refusing unknown host)"
        if isinstance(x, paramiko.AuthenticationException):
            return "ssh authentication failed"
        if isinstance(x, paramiko.ssh_exception.NoValidConnectionsError):
            todo.extend(x.errors.values())
            continue
        if isinstance(x, http.client.RemoteDisconnected):
            hint = "; can the ssh user run `docker system dial-stdio`?" if url.startswith("ssh://") else ""
            return f"daemon not reachable (closed without a response{hint})"
        if isinstance(x, FileNotFoundError):
            return "daemon not reachable (no such socket)"
        if isinstance(x, OSError) and x.strerror:
            return f"daemon not reachable ({x.strerror.lower()})"
        if isinstance(x, (socket.timeout, requests.Timeout)):
            return f"daemon not reachable (no answer within {timeout:g} s)"
        todo.extend(a for a in x.args if isinstance(a, BaseException))
        todo.extend(c for c in (x.__cause__, x.__context__) if c is not None)
    return f"daemon not reachable ({e})"

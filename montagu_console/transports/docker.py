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
import shlex
import socket
import struct
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import docker
import docker.constants
import docker.errors
import paramiko
import requests

from montagu_console.clock import parse_iso_or_none
from montagu_console.errors import TransportError
from montagu_console.procs import OWNER_LABEL
from montagu_console.text import MAX_FILE_BYTES, MAX_OUTPUT_BYTES, clean, one_line
from montagu_console.transports.base import CommandResult, FileMissing, decode_output

T = TypeVar("T")

MAX_PARALLEL = 4  # calls in flight per endpoint
GRACE = 0.5  # seconds the awaiting side allows beyond a call's timeout
MAX_SYMLINKS = 8
_DIR_BIT = 1 << 31  # Go os.ModeDir, as in the archive stat header
_TAR_SLACK = 64 * 1024  # a one-file tar's header and padding beyond the file itself
_EXEC_RAW_CAP = 2 * MAX_OUTPUT_BYTES + 64 * 1024  # both streams with their 8-byte frame headers


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
    owner: str = ""  # its procs.OWNER_LABEL label: the supervisor of the run that started it


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
            # the daemon's answer is host text like any other: odd shapes are an error, strings are cleaned
            state = info.get("State") if isinstance(info, dict) else None
            if not isinstance(state, dict) or not isinstance(state.get("Running"), bool):
                raise TransportError(self.host_name, f"docker inspect {name}", "unexpected answer from the daemon")
            running = state["Running"]
            status = one_line(str(state.get("Status", "unknown")), limit=40)
            code = state.get("ExitCode")
            never_finished = running or status == "created"
            return ContainerState(
                name=one_line(str(info.get("Name") or name), limit=200).lstrip("/"),
                status=status,
                running=running,
                exit_code=None if never_finished or not isinstance(code, int) else code,
                started_at=parse_timestamp(state.get("StartedAt")),
                finished_at=parse_timestamp(state.get("FinishedAt")),
                image=one_line(str((info.get("Config") or {}).get("Image", "")), limit=200),
                owner=one_line(str(((info.get("Config") or {}).get("Labels") or {}).get(OWNER_LABEL, "")), limit=200),
            )

        return await self._call(f"inspect {name}", op)

    async def container_logs(self, name: str, *, tail: int = 200) -> str:
        """The last ``tail`` lines of stdout and stderr, as clean text of at most ``MAX_OUTPUT_BYTES``.

        The log is streamed and reading stops at the cap (a few huge lines cannot fill memory).
        """

        def op(api: docker.APIClient) -> str:
            try:
                stream = api.logs(name, stdout=True, stderr=True, tail=tail, stream=True, follow=False)
            except docker.errors.NotFound:
                raise TransportError(self.host_name, f"docker logs {name}", "no such container") from None
            data, cut = bytearray(), False
            try:
                for chunk in stream:
                    data += chunk
                    if len(data) > MAX_OUTPUT_BYTES:
                        cut = True
                        break
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
            return decode_output(bytes(data[:MAX_OUTPUT_BYTES]), cut)

        return await self._call(f"logs {name}", op)

    async def read_file_in_container(self, name: str, path: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
        """A regular file's clean text via the archive API (works on stopped containers); follows symlinks.

        FIFOs, devices and directories are refused (the archive holds only their header), and so
        is a file of more than ``max_bytes``.
        """
        what = f"cp {name}:{path}"

        def op(api: docker.APIClient) -> str:
            current = path
            for _ in range(MAX_SYMLINKS):
                try:
                    stream, stat = api.get_archive(name, current)
                except docker.errors.NotFound as e:
                    if "no such container" in str(e.explanation).lower():
                        raise TransportError(self.host_name, f"docker {what}", "no such container") from None
                    raise FileMissing(self.host_name, f"{name}:{path}") from None
                if not isinstance(stat, dict) or not isinstance(stat.get("mode"), int):
                    stream.close()
                    raise TransportError(self.host_name, f"docker {what}", "unexpected answer from the daemon")
                if stat.get("linkTarget"):
                    stream.close()
                    current = posixpath.join(posixpath.dirname(current), stat["linkTarget"])
                    continue
                if stat["mode"] & _DIR_BIT:
                    stream.close()
                    raise TransportError(self.host_name, f"docker {what}", "is a directory")
                if not isinstance(stat.get("size"), int) or stat["size"] > max_bytes:
                    stream.close()
                    raise TransportError(
                        self.host_name, f"docker {what}", f"file is {stat.get('size')} bytes, more than {max_bytes}"
                    )
                data = bytearray()
                for chunk in stream:  # the tar of one file: its header, the file, padding
                    data += chunk
                    if len(data) > max_bytes + _TAR_SLACK:
                        stream.close()
                        raise TransportError(self.host_name, f"docker {what}", f"file is more than {max_bytes} bytes")
                try:
                    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
                        member = tar.next()
                        f = tar.extractfile(member) if member is not None and member.isreg() else None
                        if f is None:
                            raise TransportError(self.host_name, f"docker {what}", "not a regular file")
                        return clean(f.read(max_bytes + 1), limit=max_bytes)
                except tarfile.TarError:
                    raise TransportError(
                        self.host_name, f"docker {what}", "unreadable archive from the daemon"
                    ) from None
            raise TransportError(self.host_name, f"docker {what}", "too many levels of symbolic links")

        return await self._call(what, op)

    async def containers_with_volume(self, volume: str) -> list[VolumeMount]:
        """Every container (running or not) that mounts the named volume."""

        def op(api: docker.APIClient) -> list[VolumeMount]:
            found = []
            for c in api.containers(all=True, filters={"volume": volume}):
                for m in c.get("Mounts") or []:
                    if m.get("Name") == volume:
                        found.append(
                            VolumeMount(
                                one_line(c["Names"][0], limit=200).lstrip("/"),
                                one_line(m["Destination"], limit=4096),
                                c["State"] == "running",
                            )
                        )
            return sorted(found, key=lambda v: (v.container, v.destination))

        return await self._call(f"ps --filter volume={volume}", op)

    async def exec(self, name: str, argv: Sequence[str], *, timeout: float, user: str | None = None) -> CommandResult:
        """Run ``argv`` in a running container; stdout and stderr kept apart.

        On timeout the call returns, but the process is left running in the container. Past the
        output cap, reading stops and the stream is closed (the process gets SIGPIPE on its next write).
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
            except TimeoutError:
                raise TransportError(self.host_name, f"docker {what}", f"timed out after {timeout:g} s") from None
            finally:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                sock.close()
                conn.close()
            cut = len(raw) > _EXEC_RAW_CAP
            while not cut and (info := api.exec_inspect(exec_id))["Running"] and time.monotonic() < deadline:
                time.sleep(0.02)  # the exit code lags the end of the output stream a little
            out, err = _demux(raw[:_EXEC_RAW_CAP])
            code = -1 if cut or info.get("ExitCode") is None else int(info["ExitCode"])
            out_cut, err_cut = cut or len(out) > MAX_OUTPUT_BYTES, cut or len(err) > MAX_OUTPUT_BYTES
            return CommandResult(
                argv,
                code,
                decode_output(out[:MAX_OUTPUT_BYTES], out_cut),
                decode_output(err[:MAX_OUTPUT_BYTES], err_cut),
                time.monotonic() - started,
                out_cut or err_cut,
            )

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
        with contextlib.suppress(TimeoutError):  # a thread stuck on a dead daemon ends at its own timeout
            await asyncio.wait_for(closing, self.timeout + GRACE)

    # -- threads -----------------------------------------------------------------------------

    async def _call(self, what: str, op: Callable[[docker.APIClient], T], *, timeout: float | None = None) -> T:
        budget = self.timeout if timeout is None else timeout
        if self._executor is None:
            self._executor = ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix=f"docker-{self.host_name}")
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._guarded, what, op)
        try:
            return await asyncio.wait_for(future, budget + GRACE)
        except TimeoutError:
            raise TransportError(self.host_name, f"docker {what}", f"timed out after {budget:g} s") from None

    def _guarded(self, what: str, op: Callable[[docker.APIClient], T]) -> T:
        client = None
        try:
            client = self._connected()
            return op(client.api)
        except docker.errors.APIError as e:
            reason = one_line(str(e.explanation or e), limit=300)
            raise TransportError(self.host_name, f"docker {what}", reason) from None
        except (docker.errors.DockerException, requests.RequestException, paramiko.SSHException, OSError) as e:
            self._reset(client)
            reason = one_line(_unreachable(e, self.url, self.timeout), limit=300)
            raise TransportError(self.host_name, f"docker {self.url}", reason) from None

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
        s.connect(url[len("unix://") :])
    probe = docker.APIClient(base_url=url, timeout=timeout, version=docker.constants.MINIMUM_DOCKER_API_VERSION)
    try:
        return probe.version(api_version=False)["ApiVersion"]
    finally:
        probe.close()


def parse_timestamp(value: object) -> datetime | None:
    """Docker's RFC 3339 timestamp (nanoseconds allowed); the zero time "0001-01-01..." or garbage is None."""
    if not isinstance(value, str) or value.startswith("0001-01-01"):
        return None
    return parse_iso_or_none(value)


def _read_until_eof(sock, deadline: float) -> bytes:
    """The multiplexed exec stream to its end, or to just past ``_EXEC_RAW_CAP`` bytes."""
    data = bytearray()
    while len(data) <= _EXEC_RAW_CAP:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _demux(raw: bytes) -> tuple[bytes, bytes]:
    """Split Docker's multiplexed stream (8-byte frame headers) into stdout and stderr."""
    streams = {1: bytearray(), 2: bytearray()}
    i = 0
    while i + 8 <= len(raw):
        kind, size = struct.unpack_from(">BxxxL", raw, i)
        streams.get(kind, streams[1]).extend(raw[i + 8 : i + 8 + size])
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

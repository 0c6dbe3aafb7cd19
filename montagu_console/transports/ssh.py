"""Hosts reached over SSH (paramiko): one reused connection per host, strict host keys.

Blocking paramiko calls run on a small thread pool owned by the host, so a hung host can
only tie up its own threads; the awaiting side is bounded by ``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import getpass
import logging
import os
import select
import shlex
import socket
import stat
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import paramiko

from montagu_console.config import HostConfig
from montagu_console.errors import TransportError
from montagu_console.text import MAX_FILE_BYTES, MAX_OUTPUT_BYTES, one_line
from montagu_console.transports.base import CommandResult, FileMissing, decode_output, file_text

# paramiko's transport thread logs tracebacks when a connect is abandoned (an interrupted check,
# a host that never sends its banner). The console reports every SSH failure itself, in one line,
# so paramiko's records stop here: they reach neither the console's stderr handler nor the screen.
_paramiko_log = logging.getLogger("paramiko")
_paramiko_log.addHandler(logging.NullHandler())
_paramiko_log.propagate = False

T = TypeVar("T")

SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
MAX_PARALLEL = 6  # calls in flight per host; below sshd's default MaxSessions (10)
SESSION_RETRY = 0.05  # seconds between tries when the server has no session slot free
GRACE = 0.5  # seconds the awaiting side allows beyond a call's own timeout
KEEPALIVE = 30  # seconds between keepalives on an idle connection
_CHUNK = 65536


class _UnknownHostKey(paramiko.SSHException):
    pass


class _RejectUnknown(paramiko.RejectPolicy):
    """RejectPolicy that raises a distinct exception, so the message can say why."""

    def missing_host_key(self, client, hostname, key):
        raise _UnknownHostKey(hostname)


class SSHTransport:
    """One SSH host: lazily connects, reuses the connection, reconnects once if it died."""

    def __init__(self, config: HostConfig):
        self.name = config.name
        # the loaded config always sets it (timeouts.connect_seconds by default); a bare HostConfig may not
        self._connect_timeout: float = config.connect_timeout if config.connect_timeout is not None else 10.0
        self._params, self._known_hosts = _resolve(config)
        self.target = f"ssh {self._params['username']}@{self._params['hostname']}:{self._params['port']}"
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._attempts_done = 0
        self._failure: TransportError | None = None  # outcome of the last connect attempt
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult:
        """Run ``argv`` (quoted with shlex.join) on the host; connect time counts against ``timeout``."""
        argv = tuple(argv)
        return await self._call(shlex.join(argv), timeout, self._run, argv, input)

    async def read_file(self, path: str, *, timeout: float, limit: int = MAX_FILE_BYTES) -> str:
        """A regular file's clean text over SFTP (at most ``limit`` bytes); ``~/`` is the login home.

        Raises FileMissing; TransportError for a FIFO, device or directory, a bigger file, or a timeout.
        """
        return await self._call(f"sftp {path}", timeout, self._read, path, limit)

    async def open_pipe(self, argv: Sequence[str], *, timeout: float) -> SSHPipe:
        """Start ``argv`` (quoted with shlex.join) on a channel of its own, kept open as a pipe."""
        command_line = shlex.join(argv)

        def start(deadline: float, _timeout: float) -> paramiko.Channel:
            chan = self._open_session(deadline)
            try:
                chan.settimeout(max(deadline - time.monotonic(), 0.01))
                chan.exec_command(command_line)
            except (paramiko.SSHException, EOFError, OSError) as e:
                chan.close()
                raise TransportError(self.name, command_line[:200], f"connection lost ({_describe(e)})") from None
            return chan

        chan = await self._call(command_line[:200], timeout, start)
        return SSHPipe(self, chan)

    async def close(self) -> None:
        """Close the connection and the host's threads; a later call connects again."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        closing = asyncio.get_running_loop().run_in_executor(executor, self._drop)
        executor.shutdown(wait=False)
        with contextlib.suppress(TimeoutError):  # a thread stuck on a dead host ends at its own timeout
            await asyncio.wait_for(closing, self._connect_timeout + GRACE)

    # -- threads -----------------------------------------------------------------------------

    async def _call(self, what: str, timeout: float, fn: Callable[..., T], *args: object) -> T:
        deadline = time.monotonic() + timeout
        if self._executor is None:
            self._executor = ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix=f"ssh-{self.name}")
        future = asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, deadline, timeout))
        try:
            return await asyncio.wait_for(future, timeout + GRACE)
        except TimeoutError:
            raise TransportError(self.name, what, f"timed out after {timeout:g} s") from None

    def _run(self, argv: tuple[str, ...], input: str | None, deadline: float, timeout: float) -> CommandResult:
        command_line = shlex.join(argv)
        started = time.monotonic()
        chan = self._open_session(deadline)
        out, err = bytearray(), bytearray()
        cut = False  # past the cap: stop reading, close the channel (the command gets SIGPIPE)
        try:
            chan.settimeout(max(deadline - time.monotonic(), 0.01))
            chan.exec_command(command_line)
            if input is not None:
                chan.sendall(input.encode())
            chan.shutdown_write()
            while not cut:
                while not cut and chan.recv_ready():
                    cut = _take(out, chan.recv(_CHUNK))
                while not cut and chan.recv_stderr_ready():
                    cut = _take(err, chan.recv_stderr(_CHUNK))
                if cut or chan.eof_received or chan.closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                select.select([chan], [], [], remaining)
            cut = cut or _drain(chan.recv, out) or _drain(chan.recv_stderr, err)
            if cut:
                status = -1
            else:
                if not chan.status_event.wait(max(deadline - time.monotonic(), 0)):
                    raise TimeoutError
                status = chan.recv_exit_status()
        except TimeoutError:
            raise TransportError(self.name, command_line, f"timed out after {timeout:g} s") from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise TransportError(self.name, command_line, f"connection lost ({_describe(e)})") from None
        finally:
            chan.close()
        out_cut, err_cut = len(out) > MAX_OUTPUT_BYTES, len(err) > MAX_OUTPUT_BYTES
        return CommandResult(
            argv,
            status,
            decode_output(bytes(out[:MAX_OUTPUT_BYTES]), out_cut),
            decode_output(bytes(err[:MAX_OUTPUT_BYTES]), err_cut),
            time.monotonic() - started,
            cut,
        )

    def _read(self, path: str, limit: int, deadline: float, timeout: float) -> str:
        """A regular file over SFTP: stat first (a FIFO or device is refused unopened), then ``limit + 1`` bytes."""
        remote = "." if path in ("~", "~/") else path[2:] if path.startswith("~/") else path
        what = f"sftp {path}"
        chan = self._open_session(deadline)
        try:
            chan.settimeout(max(deadline - time.monotonic(), 0.01))
            chan.invoke_subsystem("sftp")
            with paramiko.SFTPClient(chan) as sftp:
                mode = sftp.stat(remote).st_mode or 0  # follows symbolic links, as the read would
                if stat.S_ISDIR(mode):
                    raise TransportError(self.name, what, "is a directory")
                if not stat.S_ISREG(mode):
                    raise TransportError(self.name, what, "not a regular file")
                with sftp.open(remote, "rb") as f:
                    data = f.read(limit + 1)
        except FileNotFoundError:
            raise FileMissing(self.name, path) from None
        except TimeoutError:
            raise TransportError(self.name, what, f"timed out after {timeout:g} s") from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise TransportError(self.name, what, one_line(_describe(e), limit=300)) from None
        finally:
            chan.close()
        if len(data) > limit:
            raise TransportError(self.name, what, f"file is larger than {limit} bytes (not read)")
        return file_text(self.name, path, data, limit)

    def _open_session(self, deadline: float) -> paramiko.Channel:
        """A new channel on the shared connection; reconnects once if the connection died."""
        for last_try in (False, True):
            client = self._connected(deadline)
            transport = client.get_transport()
            if transport is None:
                raise TransportError(self.name, self.target, "connection lost")
            while True:
                try:
                    return transport.open_session(timeout=max(deadline - time.monotonic(), 0.01))
                except paramiko.ChannelException as e:
                    # sshd's MaxSessions: closed channels are freed a moment after we close them
                    if time.monotonic() + SESSION_RETRY >= deadline:
                        raise TransportError(self.name, self.target, f"cannot open a channel ({e.text})") from None
                    time.sleep(SESSION_RETRY)
                except (paramiko.SSHException, EOFError, OSError) as e:
                    if last_try:
                        raise TransportError(self.name, self.target, f"connection lost ({_describe(e)})") from None
                    client.close()  # dead, though not noticed yet: _connected() replaces it
                    break
        raise AssertionError("unreachable")

    def _connected(self, deadline: float) -> paramiko.SSHClient:
        attempts_seen = self._attempts_done
        if not self._lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise TransportError(self.name, self.target, "timed out waiting for another call to connect")
        try:
            client = self._client
            live = client.get_transport() if client is not None else None
            if client is not None and live is not None and live.is_active():
                return client
            if client is not None:
                client.close()
                self._client = None
            if self._attempts_done != attempts_seen and self._failure is not None:
                # Another call tried while this one waited: report its failure instead of retrying.
                raise TransportError(self.name, self.target, self._failure.reason)
            try:
                self._client = self._connect(min(self._connect_timeout, max(deadline - time.monotonic(), 0.01)))
                self._failure = None
            except TransportError as e:
                self._failure = e
                raise
            finally:
                self._attempts_done += 1
            return self._client
        finally:
            self._lock.release()

    def _drop(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connect(self, timeout: float) -> paramiko.SSHClient:
        key_file = self._params.get("key_filename")
        if isinstance(key_file, str) and not os.path.exists(key_file):
            raise TransportError(self.name, self.target, f"key file {key_file} does not exist")
        client = paramiko.SSHClient()
        for path in (self._known_hosts, SYSTEM_KNOWN_HOSTS):
            if os.path.exists(path):
                client.load_system_host_keys(path)
        client.set_missing_host_key_policy(_RejectUnknown())
        try:
            client.connect(
                **self._params, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout
            )
        except Exception as e:
            client.close()
            raise TransportError(self.name, self.target, self._connect_reason(e, timeout)) from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE)
        return client

    def _connect_reason(self, e: Exception, timeout: float) -> str:
        if isinstance(e, _UnknownHostKey):
            missing = "" if os.path.exists(self._known_hosts) else "; the file does not exist"
            return f"host key not in {self._known_hosts} (refusing unknown host{missing})"
        if isinstance(e, paramiko.BadHostKeyException):
            return (
                f"host key mismatch: server sent {e.key.get_name()} {e.key.fingerprint}, "
                f"known_hosts has {e.expected_key.fingerprint} (refusing; possible man-in-the-middle)"
            )
        if isinstance(e, paramiko.PasswordRequiredException):
            return "key file is encrypted and no passphrase is available"
        if isinstance(e, paramiko.AuthenticationException):
            keys = self._params.get("key_filename") or "agent/default keys"
            how = keys if isinstance(keys, str) else ", ".join(keys)
            return f"authentication failed (tried {how})"
        if isinstance(e, socket.timeout):
            return f"timed out after {round(timeout, 1):g} s"
        if isinstance(e, paramiko.SSHException) and ("protocol banner" in str(e) or "No existing session" in str(e)):
            return f"timed out after {round(timeout, 1):g} s (no SSH handshake)"
        if isinstance(e, socket.gaierror):
            return f"cannot resolve host name ({e.strerror})"
        return _describe(e)


class SSHPipe:
    """A long-lived remote program's input and output on one channel, one line at a time."""

    def __init__(self, transport: SSHTransport, chan: paramiko.Channel):
        self.transport = transport
        self.chan = chan
        self._buf = bytearray()

    async def write_line(self, data: bytes, timeout: float) -> None:
        def send(deadline: float, _timeout: float) -> None:
            self.chan.settimeout(max(deadline - time.monotonic(), 0.01))
            self.chan.sendall(data)

        await self.transport._call("agent request", timeout, send)

    async def read_line(self, limit: int, timeout: float) -> bytes:
        def recv(deadline: float, _timeout: float) -> bytes:
            while (end := self._buf.find(b"\n")) < 0:
                if len(self._buf) > limit:
                    raise ConnectionError(f"an answer longer than {limit} bytes")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.chan.settimeout(remaining)
                chunk = self.chan.recv(_CHUNK)
                if not chunk:
                    raise ConnectionError("the remote program ended")
                self._buf += chunk
            line = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            return line

        try:
            return await self.transport._call("agent answer", timeout, recv)
        except TimeoutError:
            raise TransportError(self.transport.name, "agent answer", f"timed out after {timeout:g} s") from None

    async def close(self) -> None:
        self.chan.close()


def _resolve(config: HostConfig) -> tuple[dict, str]:
    """paramiko connect() arguments and the known_hosts path.

    Explicit config values beat ``~/.ssh/config``; a port not given (None) is unset.
    """
    alias = config.host or config.name
    found: dict = {}
    path = os.path.expanduser("~/.ssh/config")
    if os.path.exists(path):
        found = paramiko.SSHConfig.from_path(path).lookup(alias)
    port = config.port if config.port is not None else int(found.get("port", 22))
    params: dict = {
        "hostname": found.get("hostname", alias),
        "port": port,
        "username": config.user or found.get("user") or getpass.getuser(),
    }
    if config.key_file:
        params.update(key_filename=os.path.expanduser(config.key_file), allow_agent=False, look_for_keys=False)
    elif "identityfile" in found:
        params.update(key_filename=[os.path.expanduser(p) for p in found["identityfile"]], look_for_keys=False)
    known_hosts = os.path.expanduser(config.known_hosts or "~/.ssh/known_hosts")
    return params, known_hosts


def _take(buf: bytearray, chunk: bytes) -> bool:
    """Add ``chunk`` to ``buf``; True once ``buf`` holds more than the output cap."""
    buf += chunk
    return len(buf) > MAX_OUTPUT_BYTES


def _drain(recv: Callable[[int], bytes], buf: bytearray) -> bool:
    """Read what is left into ``buf``; True if it went past the output cap (reading stopped there)."""
    while chunk := recv(_CHUNK):
        if _take(buf, chunk):
            return True
    return False


def _describe(e: BaseException) -> str:
    """A short reason for a socket or SSH error."""
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
        codes = {getattr(err, "errno", None) for err in e.errors.values()}
        if codes == {errno.ECONNREFUSED}:
            return "connection refused"
        if codes == {errno.EHOSTUNREACH}:
            return "host unreachable"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (EOFError, ConnectionResetError)):
        return "connection closed by the remote host"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__

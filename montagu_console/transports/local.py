"""Run commands and read files on the machine the console runs on.

Every call is a child process in its own process group, read with a size cap and bounded by
its timeout: past either, the whole group is killed, and nothing is ever waited on without a
bound. File reads too are a child (``sh`` then ``head``), never an ``open()`` in the console:
a FIFO or a hung NFS/sshfs mount would block a thread forever, and ``asyncio.run`` waits for
its threads at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import Sequence

from ..errors import TransportError
from ..text import MAX_FILE_BYTES, MAX_OUTPUT_BYTES, one_line
from .base import READ_MISSING, READ_REFUSED, READ_SCRIPT, CommandResult, FileMissing, decode_output, file_text

_CHUNK = 65536
REAP_SECONDS = 1.0  # how long a killed group is given to exit before the call returns anyway
PIPE_LINE_LIMIT = 48 * 1024 * 1024  # the longest line a pipe reads (an agent answer carries capped output)


class LocalTransport:
    """The local host: subprocesses (each in its own process group), output capped while reading."""

    def __init__(self, name: str):
        self.name = name

    async def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult:
        """Run ``argv`` without a shell; on timeout, or past ``MAX_OUTPUT_BYTES``, kill its process group."""
        argv = tuple(argv)
        code, (out, out_cut), (err, err_cut), seconds = await self._capture(
            argv, timeout, input.encode() if input is not None else None, MAX_OUTPUT_BYTES, shlex.join(argv)
        )
        return CommandResult(
            argv, code, decode_output(out, out_cut), decode_output(err, err_cut), seconds, out_cut or err_cut
        )

    async def read_file(self, path: str, *, timeout: float, limit: int = MAX_FILE_BYTES) -> str:
        """The clean text of the regular file ``path`` (``~`` expanded), at most ``limit`` bytes.

        FileMissing if it does not exist; TransportError naming the host and path for a FIFO,
        a device, a directory, a file bigger than ``limit``, or a read that does not end in time.
        """
        what = f"read {path}"
        argv = ("sh", "-c", READ_SCRIPT, "sh", os.path.expanduser(path), str(limit + 1))
        code, (out, _), (err, _), _ = await self._capture(argv, timeout, None, limit + 1, what)
        if code == READ_MISSING:
            raise FileMissing(self.name, path)
        if code != 0:
            raise TransportError(self.name, what, _read_failure(code, err))
        return file_text(self.name, path, out, limit)

    async def open_pipe(self, argv: Sequence[str], *, timeout: float) -> LocalPipe:
        """Start ``argv`` (no shell, its own process group) with its input and output as a pipe."""
        what = shlex.join(argv)[:200]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                limit=PIPE_LINE_LIMIT,
            )
        except FileNotFoundError:
            raise TransportError(self.name, what, "command not found") from None
        except OSError as e:
            raise TransportError(self.name, what, f"cannot start: {one_line(e.strerror or str(e))}") from None
        return LocalPipe(self.name, proc)

    async def close(self) -> None:
        """Nothing to release."""

    async def _capture(
        self, argv: tuple[str, ...], timeout: float, data: bytes | None, limit: int, what: str
    ) -> tuple[int, tuple[bytes, bool], tuple[bytes, bool], float]:
        """(returncode, (stdout, cut), (stderr, cut), seconds); each stream keeps at most ``limit`` bytes."""
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise TransportError(self.name, what, "command not found") from None
        except OSError as e:
            raise TransportError(self.name, what, f"cannot start: {one_line(e.strerror or str(e))}") from None
        reading = asyncio.gather(_drain(proc, proc.stdout, limit), _drain(proc, proc.stderr, limit), _feed(proc, data))
        # when the loop shuts down it cancels the readers themselves: their outcome is not news
        reading.add_done_callback(_quiet)
        try:
            out, err, _ = await asyncio.wait_for(reading, timeout)
            code = await asyncio.wait_for(proc.wait(), max(timeout - (time.monotonic() - started), REAP_SECONDS))
        except BaseException as e:  # timeout or cancellation: leave nothing behind
            _kill_group(proc.pid)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), REAP_SECONDS)
            await asyncio.gather(_discard_rest(proc.stdout), _discard_rest(proc.stderr))
            if isinstance(e, asyncio.TimeoutError):
                raise TransportError(self.name, what, f"timed out after {timeout:g} s") from None
            raise
        return code, out, err, time.monotonic() - started


class LocalPipe:
    """A long-lived local program's input and output, one line at a time."""

    def __init__(self, host: str, proc: asyncio.subprocess.Process):
        self.host = host
        self.proc = proc

    async def write_line(self, data: bytes, timeout: float) -> None:
        if self.proc.stdin is None:
            raise ConnectionError("no input")
        self.proc.stdin.write(data)
        await asyncio.wait_for(self.proc.stdin.drain(), timeout)

    async def read_line(self, limit: int, timeout: float) -> bytes:
        if self.proc.stdout is None:
            raise ConnectionError("no output")
        try:
            line = await asyncio.wait_for(self.proc.stdout.readuntil(b"\n"), timeout)
        except asyncio.IncompleteReadError:
            raise ConnectionError(f"the program ended (exit status {self.proc.returncode})") from None
        except asyncio.LimitOverrunError:
            raise ConnectionError(f"an answer longer than {PIPE_LINE_LIMIT} bytes") from None
        if len(line) > limit:
            raise ConnectionError(f"an answer longer than {limit} bytes")
        return line

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), REAP_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            _kill_group(self.proc.pid)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proc.wait(), REAP_SECONDS)
        await _discard_rest(self.proc.stdout)


async def _drain(
    proc: asyncio.subprocess.Process, stream: asyncio.StreamReader | None, limit: int
) -> tuple[bytes, bool]:
    """Read ``stream`` to its end, or up to ``limit`` bytes: then kill the group and stop reading."""
    buf = bytearray()
    if stream is None:
        return b"", False
    while chunk := await stream.read(_CHUNK):
        room = limit - len(buf)
        if len(chunk) > room:
            buf += chunk[:room]
            _kill_group(proc.pid)
            await _discard_rest(stream)
            return bytes(buf), True
        buf += chunk
    return bytes(buf), False


async def _discard_rest(stream: asyncio.StreamReader | None) -> None:
    """Read and drop what a killed or finished program left in its pipe, for a while at most.

    A pipe whose reader stopped early (output cut, or a request given up) can hold more than the
    stream buffers: asyncio then pauses it, never sees its end, and its transport outlives the
    event loop ("Event loop is closed" at exit). Reading it to the end closes it with the program.
    """
    if stream is None:
        return
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(REAP_SECONDS):
            while await stream.read(_CHUNK):
                pass


async def _feed(proc: asyncio.subprocess.Process, data: bytes | None) -> None:
    if data is None or proc.stdin is None:
        return
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the command did not read all of its input: its output says what it made of that
    finally:
        proc.stdin.close()


def _quiet(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _read_failure(code: int, err: bytes) -> str:
    """One line for a failed read: the script's refusal, or ``head``'s reason (``permission denied``)."""
    line = one_line(err, limit=300) or f"exit status {code}"
    if code == READ_REFUSED:
        return line
    return line.rsplit(": ", 1)[-1].lower()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)

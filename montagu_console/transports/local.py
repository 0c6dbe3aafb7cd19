"""Run commands and read files on the machine the console runs on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from typing import Sequence

from montagu_console.errors import TransportError
from montagu_console.transports.base import CommandResult, FileMissing


class LocalTransport:
    """The local host: subprocesses (each in its own process group) and plain file reads."""

    def __init__(self, name: str):
        self.name = name

    async def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult:
        """Run ``argv`` without a shell; on timeout kill its whole process group."""
        argv = tuple(argv)
        command_line = shlex.join(argv)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise TransportError(self.name, command_line, "command not found") from None
        except OSError as e:
            raise TransportError(self.name, command_line, f"cannot start: {e.strerror or e}") from None
        try:
            data = input.encode() if input is not None else None
            out, err = await asyncio.wait_for(proc.communicate(data), timeout)
        except BaseException as e:  # timeout or cancellation: leave nothing behind
            _kill_group(proc.pid)
            with contextlib.suppress(asyncio.TimeoutError):  # reap it and let the pipes close
                await asyncio.wait_for(proc.communicate(), 1)
            if isinstance(e, asyncio.TimeoutError):
                raise TransportError(self.name, command_line, f"timed out after {timeout:g} s") from None
            raise
        return CommandResult(
            argv=argv,
            returncode=proc.returncode,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            seconds=time.monotonic() - started,
        )

    async def read_file(self, path: str, *, timeout: float) -> bytes:
        """Return the bytes of ``path`` (``~`` expanded); FileMissing if it does not exist."""
        full = os.path.expanduser(path)
        try:
            return await asyncio.wait_for(asyncio.to_thread(_read_bytes, full), timeout)
        except FileNotFoundError:
            raise FileMissing(self.name, path) from None
        except asyncio.TimeoutError:
            raise TransportError(self.name, f"read {path}", f"timed out after {timeout:g} s") from None
        except OSError as e:
            raise TransportError(self.name, f"read {path}", (e.strerror or str(e)).lower()) from None

    async def close(self) -> None:
        """Nothing to release."""


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

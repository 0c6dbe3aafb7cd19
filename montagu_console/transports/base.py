"""The transport interface: run a command or read a file on one configured host.

Every call takes a timeout and raises :class:`TransportError` (naming the host and the
command) when the host cannot be reached, the call times out, or the file cannot be read.

This is where host text enters the console: a command's stdout and stderr and a file's
content are read with a size cap (reading stops, and the command is killed, past
``MAX_OUTPUT_BYTES``) and decoded once through :func:`montagu_console.text.clean`, so what a
transport returns is already free of control sequences and invalid UTF-8.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import TransportError
from ..text import MAX_FILE_BYTES, MAX_OUTPUT_BYTES, TRUNCATED, clean

# a file read on a host: refuse anything but a regular file (a FIFO, a device or a symlink to
# one would block or never end), stop at "$2" bytes. Exit 3 with one line on stderr for a refusal,
# 4 for a missing file. The path and the cap are positional arguments, never part of the script.
READ_SCRIPT = (
    '[ -e "$1" ] || { echo "no such file" >&2; exit 4; }; '
    '[ -d "$1" ] && { echo "is a directory" >&2; exit 3; }; '
    '[ -f "$1" ] || { echo "not a regular file" >&2; exit 3; }; '
    'exec head -c "$2" -- "$1"'
)
READ_MISSING = 4
READ_REFUSED = 3


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command on a host; ``stdout``/``stderr`` are clean, capped text.

    ``truncated`` is True when the output went past the cap: reading stopped there and the
    command was killed (its ``returncode`` is then negative).
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    truncated: bool = False

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)


def decode_output(data: bytes, cut: bool) -> str:
    """Captured command output (at most ``MAX_OUTPUT_BYTES``) as clean text, marked when it was cut."""
    text = clean(data, limit=MAX_OUTPUT_BYTES)
    return text + TRUNCATED if cut and not text.endswith(TRUNCATED) else text


def file_text(host: str, path: str, data: bytes, limit: int) -> str:
    """A file's bytes (read up to ``limit + 1``) as clean text; TransportError past ``limit`` bytes."""
    if len(data) > limit:
        raise TransportError(host, f"read {path}", f"file is larger than {limit} bytes (not read)")
    return clean(data, limit=limit)


class FileMissing(Exception):
    """The file does not exist on the host (distinct from the host being unreachable)."""

    def __init__(self, host: str, path: str):
        self.host = host
        self.path = path
        super().__init__(f"{host}: {path}: no such file")


class Pipe(Protocol):
    """A long-lived program's input and output, one line at a time (the probe agent's channel)."""

    async def write_line(self, data: bytes, timeout: float) -> None: ...
    async def read_line(self, limit: int, timeout: float) -> bytes: ...
    async def close(self) -> None: ...


class Transport(Protocol):
    """One host. Implementations: local subprocesses, SSH (paramiko)."""

    name: str

    async def open_pipe(self, argv: Sequence[str], *, timeout: float) -> Pipe:
        """Start ``argv`` (no shell) and keep its input and output open as a :class:`Pipe`."""

    async def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult:
        """Run ``argv`` (no shell) and return its result; a non-zero exit is not an error."""

    async def read_file(self, path: str, *, timeout: float, limit: int = MAX_FILE_BYTES) -> str:
        """A regular file's content as clean text; ``~/`` means the login user's home.

        Raises FileMissing, or TransportError for a file that is not regular (FIFO, device,
        directory), bigger than ``limit`` bytes, unreadable, or not read within ``timeout``.
        """

    async def close(self) -> None:
        """Release connections."""

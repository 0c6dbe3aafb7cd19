"""The transport interface: run a command or read a file on one configured host.

Every call takes a timeout and raises :class:`TransportError` (naming the host and the
command) when the host cannot be reached, the call times out, or the file is missing.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command on a host."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)


class FileMissing(Exception):
    """The file does not exist on the host (distinct from the host being unreachable)."""

    def __init__(self, host: str, path: str):
        self.host = host
        self.path = path
        super().__init__(f"{host}: {path}: no such file")


class Transport(Protocol):
    """One host. Implementations: local subprocesses, SSH (paramiko)."""

    name: str

    async def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult:
        """Run ``argv`` (no shell) and return its result; a non-zero exit is not an error."""

    async def read_file(self, path: str, *, timeout: float) -> bytes:
        """Return a file's bytes; ``~/`` means the login user's home. Raises FileMissing."""

    async def close(self) -> None:
        """Release connections."""

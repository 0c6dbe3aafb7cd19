"""Errors the console reports to the operator as one clear line."""

from __future__ import annotations


class ConsoleError(Exception):
    """An error with a one-line, operator-facing message (no traceback is shown)."""

    exit_code = 2


class ConfigError(ConsoleError):
    """The configuration could not be loaded; ``errors`` holds every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__(self.errors[0] if len(self.errors) == 1 else f"{len(self.errors)} config errors")


class TransportError(ConsoleError):
    """A host could not be reached, or a command on it could not run or timed out."""

    exit_code = 3

    def __init__(self, host: str, what: str, reason: str):
        self.host = host
        self.what = what
        self.reason = reason
        super().__init__(f"{host}: {what}: {reason}")


class ProbeError(ConsoleError):
    """A probe ran but its result could not be understood (missing file, malformed output)."""

    exit_code = 3

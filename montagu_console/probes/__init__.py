"""Probes: read the live state of each link of the chain into typed facts.

A probe returns facts, raises :class:`ProbeError`/:class:`TransportError` when it cannot tell
(the panel becomes UNKNOWN), or raises :class:`ComponentDown` when what it found is itself the
answer (a stopped container: the panel is CRITICAL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from ..config import Config
from ..errors import ConsoleError

if TYPE_CHECKING:
    from ..transports import HostPool


class ComponentDown(ConsoleError):
    """A component the panel depends on is down; the message says which, for the operator."""


@dataclass
class ProbeContext:
    """What a probe needs: the config, one connection per host, a clock and a per-session cache."""

    config: Config
    pool: "HostPool"
    clock: Callable[[], datetime]
    cache: dict = field(default_factory=dict)

    @property
    def timeout(self) -> float:
        return self.config.command_timeout

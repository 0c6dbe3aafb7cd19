"""Probes: read the live state of each link of the chain into typed facts.

A probe returns facts, raises :class:`ProbeError`/:class:`TransportError` when it cannot tell
(the panel becomes UNKNOWN), or raises :class:`ComponentDown` when what it found is itself the
answer (a stopped container: the panel is CRITICAL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConsoleError
from .cadence import FullRefresh

if TYPE_CHECKING:
    from ..transports import HostPool


@dataclass
class Reading:
    """One fact read in tiers: its last value and when it is due again."""

    refresh: FullRefresh = field(default_factory=FullRefresh)
    value: Any = None


class ComponentDown(ConsoleError):
    """A component the panel depends on is down; the message says which, for the operator."""


@dataclass
class ProbeContext:
    """What a probe needs: the config, one connection per host and a per-session cache."""

    config: Config
    pool: HostPool
    cache: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)
    tiered: bool = False  # the TUI: cheap signals every refresh, barman in full when due (probes.cadence)

    @property
    def timeout(self) -> float:
        return self.config.command_timeout

    async def once(self, key: Any, make: Callable[[], Awaitable[Any]], *, max_age: float = 2.0) -> Any:
        """Share one call among the panels refreshed together: a call made (or under way) less
        than ``max_age`` seconds ago is reused instead of run again."""
        hit = self.shared.get(key)
        if hit is None or time.monotonic() - hit[0] > max_age or (hit[1].done() and hit[1].exception()):
            hit = (time.monotonic(), asyncio.ensure_future(make()))
            self.shared[key] = hit
        return await asyncio.shield(hit[1])

    async def in_tiers(
        self,
        key: Any,
        signature: Any,
        make: Callable[[], Awaitable[Any]],
        *,
        settled: Callable[[Any], bool] = lambda _: True,
    ) -> Any:
        """In the tiered mode, ``make()``'s last value while ``signature`` (a cheap signal read this
        refresh) is unchanged, the value is younger than FULL_EVERY_SECONDS and ``settled`` by it
        (a restore under way is read every refresh); a one-shot check always calls ``make``. A
        ``make`` that raises is not remembered: the next refresh tries again."""
        if not self.tiered:
            return await make()
        reading = self.cache.setdefault(("reading", key), Reading())
        if reading.refresh.due(signature) or not settled(reading.value):
            reading.value = await make()
            reading.refresh.done(signature)
        return reading.value

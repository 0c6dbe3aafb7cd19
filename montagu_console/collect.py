"""Run the probes and the health rules: one call per panel, or a whole snapshot.

A panel never raises: a probe that cannot run gives an UNKNOWN panel naming the host and
command (one line), and every panel is bounded in time, so a dead host holds up nothing else.
Not even a bug prints a traceback: it becomes an UNKNOWN panel whose summary names it, and one
log line at INFO (cron mail gets nothing it cannot read).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from . import health
from .clock import utc_now
from .config import BarmanConfig, Config
from .errors import ConsoleError
from .probes import ComponentDown, ProbeContext
from .probes.barman import probe_barman, probe_wal
from .probes.primary import probe_primary
from .probes.restore import probe_restore
from .probes.starport import probe_starport
from .probes.tiered import refreshes, tiers
from .redact import redact
from .snapshot import PANELS, InstanceResult, PanelResult, Snapshot, Status
from .text import one_line
from .transports import HostPool

log = logging.getLogger(__name__)
T = TypeVar("T")


class Collector:
    """Owns the host connections; refreshes panels on demand.

    ``instances`` limits the barman and WAL panels to those barman instances (``check --instance``);
    an unknown name is a ConfigError. ``tiered`` (the TUI) reads barman in two tiers, as
    :mod:`montagu_console.probes.cadence` says; a one-shot check reads everything.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], datetime] = utc_now,
        instances: Sequence[str] | None = None,
        tiered: bool = False,
    ):
        self.config = config
        self.clock = clock
        self.barmans: tuple[BarmanConfig, ...] = (
            tuple(config.barman_named(n) for n in dict.fromkeys(instances)) if instances else config.barmans
        )
        self.pool = HostPool(config.hosts, command_timeout=config.command_timeout)
        self.ctx = ProbeContext(config, self.pool, tiered=tiered)

    @property
    def panel_deadline(self) -> float:
        """The longest a panel may take: a connect, two rounds of commands and some slack."""
        return self.config.connect_timeout + 2 * self.config.command_timeout + 5

    async def panel(self, name: str) -> PanelResult:
        """Probe and judge one panel; never raises (cancellation aside), never prints a traceback.

        The barman and WAL panels are judged per barman instance, each bounded on its own, so a
        dead off-site host makes only its own rows UNKNOWN."""
        if name in ("barman", "wal"):
            return await self._instances_panel(name)
        return await self._guarded(name, self._panel(name))

    async def _instances_panel(self, name: str) -> PanelResult:
        judge = self._barman if name == "barman" else self._wal
        results = await asyncio.gather(*(self._guarded(name, judge(b)) for b in self.barmans))
        instances = [InstanceResult(b.name or b.host, b.host, r) for b, r in zip(self.barmans, results, strict=True)]
        findings: list[tuple[Status, str]] = []
        facts: dict = {}
        if name == "wal":
            slots = await self._guarded("wal", self._slots())
            if isinstance(slots, PanelResult):  # the primary could not be read
                findings.append((Status.UNKNOWN, f"slots on the primary: {slots.summary}"))
                facts["slots"] = None
            else:
                findings, facts["slots"] = slots
        return health.combine(name, instances, self.clock(), findings, facts)

    async def _barman(self, b: BarmanConfig) -> PanelResult:
        return health.judge_barman(await probe_barman(self.ctx, b), b, self.clock())

    async def _wal(self, b: BarmanConfig) -> PanelResult:
        return health.judge_wal(await probe_wal(self.ctx, b), self.config.wal, self.clock())

    async def _slots(self) -> tuple[list[tuple[Status, str]], list | None]:
        """The primary's slots judged: the findings and the ``slots`` fact."""
        return health.judge_slots(await probe_primary(self.ctx), self.config.wal)

    async def _guarded(self, name: str, work: Awaitable[T]) -> T | PanelResult:
        """``work``'s result, or the panel ``name`` UNKNOWN (CRITICAL for a component down) naming
        why it gave none in time."""
        try:
            return await asyncio.wait_for(work, timeout=self.panel_deadline)
        except TimeoutError:
            return health.unknown(name, f"{name} probe gave no answer in {self.panel_deadline:g} s", self.clock())
        except ComponentDown as e:
            msg = _reason(str(e))
            return PanelResult(name, Status.CRITICAL, msg, {}, self.clock(), None, msg)
        except ConsoleError as e:
            return health.unknown(name, _reason(str(e)), self.clock())
        except Exception as e:  # a bug must not take the console down: show it as UNKNOWN, in one line
            reason = _reason(f"{name} probe failed: {type(e).__name__}: {e}")
            log.info("%s", reason)
            return health.unknown(name, reason, self.clock())

    async def _panel(self, name: str) -> PanelResult:
        cfg, ctx = self.config, self.ctx
        if name == "starport":
            return health.judge_starport(await probe_starport(ctx), cfg.nightly, cfg.starport, self.clock())
        if name == "restore":
            return health.judge_restore(await probe_restore(ctx), cfg.science, self.clock())
        raise ValueError(f"unknown panel {name!r}")

    async def snapshot(self, panels: tuple[str, ...] = PANELS) -> Snapshot:
        """Every requested panel, probed concurrently."""
        checked_at = self.clock()
        results = await asyncio.gather(*(self.panel(p) for p in panels))
        return Snapshot(checked_at, {r.name: r for r in results})

    def read_in_full(self) -> None:
        """Make the next refresh read every fact in full, sharing nothing read before (the operator
        pressed R)."""
        for refresh in refreshes(self.ctx):
            refresh.forced = True
        self.ctx.shared.clear()

    async def close(self) -> None:
        await asyncio.gather(*(t.agent.close() for t in tiers(self.ctx)), return_exceptions=True)
        await self.pool.close()


def _reason(text: str) -> str:
    """A panel's reason: one clean line, secrets redacted."""
    return one_line(redact(text), limit=500)

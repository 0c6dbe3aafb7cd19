"""The tiered mode of the TUI's probes: per barman instance, its probe agent, its cheap signals
of this refresh and its last full read of barman (see :mod:`montagu_console.probes.cadence`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import BarmanConfig
from ..transports.agent import Agent, agent_argv
from ..transports.base import CommandResult
from . import ProbeContext, Reading
from .cadence import FullRefresh
from .signals import Signals, read_signals

# barman's commands of a full read (diagnose is left to `check`: the cheap signals give what the
# console took from it)
FULL_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("-f", "json", "status"),
    ("-f", "json", "check"),
    ("-f", "json", "list-backup"),
    ("-f", "json", "replication-status"),
)


@dataclass
class Tier:
    """One barman instance in the tiered mode: its probe agent and its last full read."""

    host: str
    prefix: tuple[str, ...]  # what runs a program where barman runs (barman.command minus barman)
    agent: Agent
    refresh: FullRefresh = field(default_factory=FullRefresh)
    results: dict[tuple[str, ...], CommandResult] = field(default_factory=dict)


def tier(ctx: ProbeContext, b: BarmanConfig) -> Tier | None:
    """The instance's tier (made on first use); None when it is not read in tiers: a one-shot
    check, or a barman command that is not an exec prefix plus ``barman``."""
    prefix = b.exec_prefix()
    if not ctx.tiered or prefix is None:
        return None
    key = ("tier", b.name)
    if key not in ctx.cache:
        where = f"probe agent ({' '.join(prefix) or 'local'})"
        ctx.cache[key] = Tier(b.host, prefix, Agent(ctx.pool.transport(b.host), agent_argv(prefix), where))
    return ctx.cache[key]


def tiers(ctx: ProbeContext) -> list[Tier]:
    """Every tier made so far (to force a full read, to share an agent, to close them)."""
    return [v for v in ctx.cache.values() if isinstance(v, Tier)]


def refreshes(ctx: ProbeContext) -> list[FullRefresh]:
    """The due-times of every fact read in tiers (barman's full reads and the other readings)."""
    return [v.refresh for v in ctx.cache.values() if isinstance(v, Tier | Reading)]


def agent_for(ctx: ProbeContext, host: str, argv: tuple[str, ...]) -> Tier | None:
    """A tier on ``host`` whose exec prefix starts ``argv``: ``argv`` can run in its agent."""
    if not ctx.tiered:
        return None
    return next((t for t in tiers(ctx) if t.host == host and argv[: len(t.prefix)] == t.prefix), None)


async def signals(ctx: ProbeContext, b: BarmanConfig, t: Tier) -> Signals:
    """The instance's cheap signals of this refresh (shared by the barman and WAL panels)."""
    slot = b.slot or ctx.config.wal.slot
    return await ctx.once(("signals", b.name), lambda: read_signals(t.agent, b, slot, timeout=ctx.timeout))


async def full_read(ctx: ProbeContext, b: BarmanConfig, t: Tier) -> dict[tuple[str, ...], CommandResult]:
    """barman's full commands through the agent when due, else the last ones."""

    async def read() -> dict[tuple[str, ...], CommandResult]:
        seen = await signals(ctx, b, t)
        if t.refresh.due(seen.signature):
            results = {}
            for command in FULL_COMMANDS:
                args = (*command, b.server)
                results[args] = await t.agent.run("barman", args, timeout=ctx.timeout)
            t.results = results
            t.refresh.done(seen.signature)
        return t.results

    return await ctx.once(("full", b.name), read)

"""Probe of the primary itself, through ``primary.command`` (psql where the passfile already is).

One query a refresh gives every replication slot (with the WAL it holds back since its
``restart_lsn``) and every base backup being streamed (``pg_stat_progress_basebackup``). The
console never holds the primary's password: the command runs psql where it is configured.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import ProbeError
from ..snapshot import BaseBackupStream, PrimaryFacts, SlotInfo
from ..text import one_line
from . import ProbeContext
from .tiered import agent_for

# Six text columns a row, "|"-separated (psql -A), tagged by their first column. Slot names are
# identifiers, and every other value is a number, a boolean or a phase word: no "|" inside.
QUERY = """\
SELECT 'slot', slot_name::text, active::text,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text, ''), '', ''
  FROM pg_replication_slots
UNION ALL
SELECT 'basebackup', p.pid::text, p.phase, coalesce(p.backup_total::text, ''), p.backup_streamed::text,
       coalesce(extract(epoch FROM a.backend_start)::bigint::text, '')
  FROM pg_stat_progress_basebackup p LEFT JOIN pg_stat_activity a USING (pid)"""

PSQL_OPTIONS = ("-X", "-A", "-t", "-c")


async def probe_primary(ctx: ProbeContext) -> PrimaryFacts | None:
    """The primary's slots and streaming base backups; None when ``primary`` is not configured.

    Shared by the panels refreshed together (the WAL panel's slots, the barman panel's progress).
    """
    cfg = ctx.config.primary
    if cfg is None:
        return None
    argv = [*cfg.command, *PSQL_OPTIONS, QUERY]

    async def run() -> PrimaryFacts:
        shared = agent_for(ctx, cfg.host, cfg.command)
        if shared is not None:  # psql where barman runs, through the agent already there
            result = await shared.agent.run("run", argv[len(shared.prefix) :], timeout=ctx.timeout)
        else:
            result = await ctx.pool.transport(cfg.host).run(argv, timeout=ctx.timeout)
        if result.returncode != 0:
            last = one_line((result.stderr.strip().splitlines() or ["no output"])[-1], limit=300)
            raise ProbeError(f"{cfg.host}: psql on the primary (primary.command) exited {result.returncode}: {last}")
        return parse_primary(result.stdout)

    return await ctx.once(("primary",), run)


def parse_primary(text: str) -> PrimaryFacts:
    """psql's unaligned rows of :data:`QUERY` -> slots and streaming base backups."""
    slots: list[SlotInfo] = []
    streams: list[BaseBackupStream] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) != 6:
            raise ProbeError(f"psql on the primary: row {n} has {len(cols)} columns, expected 6")
        tag, a, b, c, d, e = cols
        if tag == "slot":
            if b not in ("true", "false"):
                raise ProbeError(f"psql on the primary: slot {one_line(a, limit=64)!r}: active is {b!r}")
            slots.append(SlotInfo(name=a, active=b == "true", retained_bytes=_int(c, "retained bytes")))
        elif tag == "basebackup":
            streams.append(
                BaseBackupStream(
                    pid=_int(a, "pid") or 0,
                    phase=b,
                    bytes_total=_int(c, "backup_total"),
                    bytes_streamed=_int(d, "backup_streamed") or 0,
                    started_at=datetime.fromtimestamp(int(e), tz=UTC) if e.isdigit() else None,
                )
            )
        else:
            raise ProbeError(f"psql on the primary: unexpected row {n}")
    return PrimaryFacts(tuple(sorted(slots, key=lambda s: s.name)), tuple(streams))


def _int(text: str, what: str) -> int | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ProbeError(f"psql on the primary: {what} is not a number: {one_line(text, limit=40)!r}") from None

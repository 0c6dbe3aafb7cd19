"""How often each fact is read: the one place that says so.

A console left open for days must cost the backup host almost nothing, so the TUI reads barman
in two tiers. Every refresh it reads the cheap signals, a few system calls in the probe agent
that lives where barman runs (no process started, no ``docker exec``, no SSH session):

    fact                                  read from                                      every
    ------------------------------------  ---------------------------------------------  --------------
    receive-wal running                   pg_receivewal --slot=<slot> among the agent's   refresh
                                          processes
    slot active, WAL it holds, slots      pg_replication_slots through primary.command    refresh
                                          (psql run by the agent when it shares its prefix)
    last archived WAL and its time        the last line of <home>/<server>/wals/xlog.db   refresh
    backups started or finished           <home>/<server>/base/*/backup.info (names, mtimes)  refresh
    barman's container running            the Docker API (no process in the container)    refresh
    science's container running           the Docker API (one inspect)                    refresh
    everything else barman says:          barman status, check, list-backup,              FULL_EVERY_SECONDS,
    checks and hints, backup list,        replication-status (in the agent: its imports   at once when a cheap
    retention, sizes, streaming state     stay warm)                                      signal changes, and on R
    science's log, psql answer, data      docker logs, exec psql, the copy's timestamp    FULL_EVERY_SECONDS, at
    timestamp (the restore panel)                                                         once when its container
                                                                                          or a restore run
                                                                                          changes; every refresh
                                                                                          while a restore runs
    the nightly copy, bb8's metadata      the copy's timestamp (Docker API), the targets'  FULL_EVERY_SECONDS, at
    and the room under the copy           metadata files, df and du of the copy (one     once when a nightly
    (the starport panel)                  exec in the container that mounts it)          recover starts or ends

Without ``primary`` the slot's state and the lag come from barman's replication-status of the last
full read instead (at most FULL_EVERY_SECONDS old); receive-wal and the archive stay per refresh.
``check`` (one shot) reads everything in full, with barman's ``diagnose`` as before. The readings
other than barman's go through :meth:`ProbeContext.in_tiers`; ``R`` makes every one of them due.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field

FULL_EVERY_SECONDS = 60.0


@dataclass
class FullRefresh:
    """When one barman instance's full commands are due: never read, older than
    FULL_EVERY_SECONDS, asked for (``R``), or the cheap signals changed since the last full read."""

    every: float = FULL_EVERY_SECONDS
    last_at: float | None = None
    last_signature: Hashable = None
    forced: bool = field(default=False)

    def due(self, signature: Hashable, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return (
            self.forced or self.last_at is None or now - self.last_at >= self.every or signature != self.last_signature
        )

    def done(self, signature: Hashable, now: float | None = None) -> None:
        self.last_at = time.monotonic() if now is None else now
        self.last_signature = signature
        self.forced = False

"""The cheap signals of one barman instance, read every refresh through its probe agent.

See :mod:`montagu_console.probes.cadence` for what is read how often. A signal that cannot be
read raises TransportError (the instance's rows go UNKNOWN, naming the host), never a guess.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

from ..config import BarmanConfig
from ..errors import ProbeError
from ..text import one_line
from ..transports.agent import Agent, unb64
from . import barman_json as bj

XLOGDB_TAIL_BYTES = 4096  # several lines of xlog.db: "name<TAB>size<TAB>time<TAB>compression"


@dataclass(frozen=True)
class Signals:
    """What one refresh of cheap reads found."""

    receive_wal_running: bool
    last_archived_wal: str | None
    last_archived_at: datetime | None
    backups_seen: tuple[tuple[str, float | None], ...]  # base/<id> and meta/<id>-backup.info, with mtimes

    @property
    def signature(self) -> tuple:
        """What, when it changes, makes barman's full commands due at once."""
        return (self.receive_wal_running, self.backups_seen)


async def read_signals(agent: Agent, b: BarmanConfig, slot: str, *, timeout: float) -> Signals:
    """receive-wal's process, the last lines of the WAL catalog and the backups of ``b``.

    barman 3.13 and later keep ``wals/<server>-xlog.db`` and ``meta/<id>-backup.info``; earlier
    ones ``wals/xlog.db`` and ``base/<id>/backup.info``: both layouts are read."""
    server = posixpath.join(b.home, b.server)
    procs = await agent.request("procs", wait=timeout, needles=["pg_receivewal", f"--slot={slot}"])
    data = b""
    for catalog in (f"{b.server}-xlog.db", "xlog.db"):
        tail = await agent.request("stat", wait=timeout, paths=[posixpath.join(server, "wals", catalog)])
        if tail.get("stat") and tail["stat"][0]:
            found = await agent.request(
                "tail", wait=timeout, path=posixpath.join(server, "wals", catalog), bytes=XLOGDB_TAIL_BYTES
            )
            data = unb64(found.get("data"), XLOGDB_TAIL_BYTES)
            break
    name, at = parse_xlogdb_tail(data)
    seen: list[tuple[str, float | None]] = []
    for folder, child in (("base", "backup.info"), ("meta", None)):
        listing = await agent.request("list", wait=timeout, dir=posixpath.join(server, folder), child=child)
        seen += _entries(listing.get("entries"), folder)
    pids = procs.get("pids")
    return Signals(bool(pids) if isinstance(pids, list) else False, name, at, tuple(seen))


def _entries(entries: object, folder: str) -> list[tuple[str, float | None]]:
    """A listing's backup entries, each named with its folder ("meta/<id>-backup.info")."""
    if not isinstance(entries, list):
        return []
    return [
        (f"{folder}/{e[0]}", float(e[1]) if isinstance(e[1], (int, float)) else None)
        for e in entries
        if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and bj.BACKUP_ID.match(e[0][:15])
    ]


def parse_xlogdb_tail(data: bytes) -> tuple[str | None, datetime | None]:
    """The newest WAL file barman archived and when, from the end of its xlog.db."""
    lines = data.decode("utf-8", "replace").splitlines()
    for line in reversed(lines[1:] if len(lines) > 1 else lines):  # the first may be cut
        fields = line.split("\t")
        if len(fields) < 3 or not _is_wal_name(fields[0]):
            continue
        try:
            return fields[0], datetime.fromtimestamp(float(fields[2]), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise ProbeError(f"xlog.db: the time of {one_line(fields[0], limit=40)} is not a time") from None
    return None, None


def _is_wal_name(name: str) -> bool:
    """A WAL segment, backup label or history file name as barman archives them."""
    stem = name.split(".", 1)[0]
    return len(stem) in (8, 24) and all(c in "0123456789ABCDEF" for c in stem)

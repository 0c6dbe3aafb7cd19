"""The TUI's tiered probes on the lab: cheap signals every refresh through one probe agent per
barman, barman's full commands only when due, and every fault still seen within one refresh."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess

import pytest

from montagu_console.collect import Collector
from montagu_console.config import load_config
from montagu_console.lab.layout import BARMAN_CONTAINER, BARMAN_SERVER
from montagu_console.probes.tiered import tiers
from montagu_console.snapshot import Status

pytestmark = pytest.mark.lab


@contextlib.asynccontextmanager
async def tiered(lab_config):
    collector = Collector(load_config(lab_config), tiered=True)
    try:
        yield collector
    finally:
        await collector.close()


def row(panel, name):
    return next(i.result for i in panel.instances if i.name == name)


def full_reads(collector):
    return {t.host: t.refresh.last_at for t in tiers(collector.ctx)}


def test_refreshes_between_full_reads_only_read_cheap_signals(lab_config):
    async def go():
        async with tiered(lab_config) as c:
            first = await c.snapshot()
            read_at = full_reads(c)
            agents = [t.agent for t in tiers(c.ctx)]
            requests = [a.requests for a in agents]
            later = [await c.snapshot() for _ in range(3)]
            unchanged = full_reads(c) == read_at
            per_refresh = [(a.requests - n) / 3 for a, n in zip(agents, requests, strict=True)]
            c.read_in_full()
            await c.snapshot()
            forced = full_reads(c) != read_at
            return first, later, unchanged, per_refresh, forced

    first, later, unchanged, per_refresh, forced = asyncio.run(go())
    assert first.status is Status.OK, {n: p.summary for n, p in first.panels.items()}
    assert all(s.status is Status.OK for s in later)
    assert {i.name for i in first.panels["barman"].instances} == {"annex", "aws"}
    assert unchanged  # within FULL_EVERY_SECONDS and no signal changed: no barman command ran
    assert all(n <= 8 for n in per_refresh), per_refresh  # a handful of agent requests, no barman
    assert forced  # R reads barman in full at once


def test_stopped_receive_wal_shows_in_the_next_refresh(lab, lab_config):
    async def go():
        async with tiered(lab_config) as c:
            before = await c.panel("wal")
            lab.stop_receive_wal()
            await asyncio.sleep(2.1)  # past the 2 s in which panels refreshed together share a read
            try:
                after = await c.panel("wal")
            finally:
                lab.start_receive_wal()
            return before, after

    before, after = asyncio.run(go())
    assert row(before, "annex").status is Status.OK
    annex = row(after, "annex")
    assert annex.status is Status.CRITICAL and "receive-wal not running" in annex.summary
    assert row(after, "aws").status is Status.OK


def test_killed_tunnel_shows_the_offsite_slot_inactive_in_the_next_refresh(lab, lab_config):
    async def go():
        async with tiered(lab_config) as c:
            await c.panel("wal")
            lab.kill_tunnel()
            try:
                # the walsender notices the dead connection within seconds; barman-aws's
                # receive-wal may be seen gone a refresh before the slot is seen inactive
                for _ in range(30):
                    after = await c.panel("wal")
                    if "replication slot barman_aws inactive" in row(after, "aws").summary:
                        return after
                    await asyncio.sleep(1)
                return after
            finally:
                lab.start_tunnel()

    after = asyncio.run(go())
    aws = row(after, "aws")
    assert aws.status is Status.CRITICAL and "replication slot barman_aws inactive" in aws.summary
    assert next(s for s in after.facts["slots"] if s["name"] == "barman_aws")["active"] is False


def test_a_backup_started_elsewhere_is_seen_at_once_not_at_the_next_full_read(lab, lab_config):
    async def go():
        async with tiered(lab_config) as c:
            await c.panel("barman")
            read_at = full_reads(c)
            backup = subprocess.Popen(
                ["docker", "-H", lab.docker_host, "exec", BARMAN_CONTAINER, "barman", "backup", "--bwlimit", "2000"]
                + [BARMAN_SERVER],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                for _ in range(30):
                    seen = await c.panel("barman")
                    if seen.facts.get("backup_running"):
                        return seen, full_reads(c) != read_at
                    await asyncio.sleep(1)
                return seen, False
            finally:
                backup.wait(timeout=300)

    seen, reread = asyncio.run(go())
    assert seen.facts["backup_running"] is True and reread


def test_between_full_reads_science_and_the_starport_cost_one_docker_inspect_and_a_stop_shows_at_once(lab, lab_config):
    """The restore and starport panels read science's log, psql and the copy only when due; a
    stopped science container still shows in the very next refresh."""

    async def go():
        async with tiered(lab_config) as c:
            await c.snapshot(("restore", "starport"))
            calls: list[str] = []
            for endpoint in {id(d): d for d in c.pool._dockers.values()}.values():
                real = endpoint._call

                async def counted(what, op, *, timeout=None, real=real):
                    calls.append(what.split()[0])
                    return await real(what, op, timeout=timeout)

                endpoint._call = counted
            quiet = await c.snapshot(("restore", "starport"))
            between = list(calls)
            lab.stop_science()
            try:
                stopped = await c.snapshot(("restore", "starport"))
            finally:
                lab.start_science()
            return quiet, between, stopped

    quiet, between, stopped = asyncio.run(go())
    assert quiet.panels["restore"].status is Status.OK, quiet.panels["restore"].summary
    assert quiet.panels["starport"].status is Status.OK, quiet.panels["starport"].summary
    assert between == ["inspect"], between  # science's state only: no logs, exec, archive or volume listing
    assert stopped.panels["restore"].status is Status.CRITICAL, stopped.panels["restore"].summary
    assert stopped.panels["restore"].facts["phase"] != "ready"

"""When barman's full commands are due in the TUI's tiered probes."""

import pytest

from montagu_console.probes.cadence import FULL_EVERY_SECONDS, FullRefresh
from montagu_console.probes.signals import parse_xlogdb_tail


def test_first_read_is_full_then_only_when_due():
    r = FullRefresh()
    assert r.due(("a",), now=0.0)
    r.done(("a",), now=0.0)
    assert not r.due(("a",), now=FULL_EVERY_SECONDS - 1)
    assert r.due(("a",), now=FULL_EVERY_SECONDS)  # at most every 60 s otherwise


def test_a_changed_signal_or_r_makes_it_due_at_once():
    r = FullRefresh()
    r.done((True, ()), now=0.0)
    assert r.due((False, ()), now=1.0)  # receive-wal stopped
    assert r.due((True, (("base/20261202T133551", None),)), now=1.0)  # a backup began
    r.forced = True
    assert r.due((True, ()), now=1.0)
    r.done((True, ()), now=1.0)
    assert not r.forced and not r.due((True, ()), now=2.0)


def test_the_wal_catalog_tail_gives_the_newest_archived_segment():
    data = b"cut-line\n000000010000000000000007\t16384\t1796218552.5\tgzip\n00000001.history\t42\t1796218560.0\tNone\n"
    assert parse_xlogdb_tail(data)[0] == "00000001.history"
    name, at = parse_xlogdb_tail(b"000000010000000000000008\t16384\t1796218552.5\tgzip\n")
    assert name == "000000010000000000000008" and at is not None and at.year == 2026
    assert parse_xlogdb_tail(b"") == (None, None)
    assert parse_xlogdb_tail(b"x\ngarbage line\n") == (None, None)


async def test_a_reading_in_tiers_is_reused_until_its_signal_changes_or_it_is_unsettled():
    from montagu_console.probes import ProbeContext

    calls: list[int] = []

    async def make() -> int:
        calls.append(len(calls))
        if len(calls) == 4:
            raise RuntimeError("host gone")
        return len(calls)

    ctx = ProbeContext(config=None, pool=None, tiered=True)  # type: ignore[arg-type]
    assert await ctx.in_tiers("k", "up", make) == 1
    assert await ctx.in_tiers("k", "up", make) == 1  # same signal, fresh: reused
    assert await ctx.in_tiers("k", "restarted", make) == 2  # the signal changed
    assert await ctx.in_tiers("k", "restarted", make, settled=lambda v: v != 2) == 3  # under way: read again
    with pytest.raises(RuntimeError):
        await ctx.in_tiers("k", "again", make)
    assert await ctx.in_tiers("k", "again", make) == 5  # a failed read is not remembered
    one_shot = ProbeContext(config=None, pool=None)  # type: ignore[arg-type]
    assert [await one_shot.in_tiers("k", "up", make) for _ in range(2)] == [6, 7]  # check reads every time

"""PostgreSQL stopped, and receive-wal and the off-site tunnel killed, under the console's eyes."""

from __future__ import annotations

import os
import signal

import pytest

from montagu_console.lab import tunnel
from montagu_console.lab.proc import pids_with
from tests.faults.helpers import FAULT_PORTS, RECOVERY, keys_answer, panel_becomes, tui_app

pytestmark = pytest.mark.lab


def rows(app, panel: str) -> dict[str, tuple[str, str]]:
    return {i.name: (i.result.status.value, i.result.summary) for i in app.results[panel].instances}


async def test_postgres_stopped_turns_barman_and_wal_critical_naming_it_then_recovers(fault_lab, fault_config):
    app = tui_app(fault_config)
    async with app.run_test(size=(160, 48)) as pilot:
        for name in ("barman", "wal"):
            await panel_becomes(pilot, name, "OK", timeout=RECOVERY)
        fault_lab.stop_primary()
        try:
            text = await panel_becomes(pilot, "barman", "CRITICAL")
            assert "PostgreSQL unreachable" in text, text
            await panel_becomes(pilot, "wal", "CRITICAL")
            await keys_answer(pilot)
        finally:
            fault_lab.start_primary()
        for name in ("barman", "wal"):  # barman's cron restarts receive-wal; the console needs nothing
            await pilot.press("R")
            await panel_becomes(pilot, name, "OK", timeout=RECOVERY)


async def test_receive_wal_and_the_offsite_tunnel_killed_turn_their_rows_critical_then_recover(fault_lab, fault_config):
    app = tui_app(fault_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await panel_becomes(pilot, "wal", "OK", timeout=RECOVERY)
        fault_lab.pause_cron()  # so barman's cron does not restart it before the console looks
        try:
            # the annex's pg_receivewal (it reaches the primary on its own port; the off-site one
            # on the tunnel's), killed by pid
            receivers = [p for p in pids_with("pg_receivewal") if p in pids_with(f"port={FAULT_PORTS.primary} ")]
            assert len(receivers) == 1, receivers
            os.kill(receivers[0], signal.SIGKILL)
            os.kill(tunnel.tunnel_pid(fault_lab), signal.SIGKILL)
            await panel_becomes(pilot, "wal", "CRITICAL")
            await pilot.press("R")
            await panel_becomes(pilot, "wal", "CRITICAL")
            wal = rows(app, "wal")
            assert wal["annex"][0] == "CRITICAL" and "receive-wal not running" in wal["annex"][1], wal
            assert wal["aws"][0] in ("CRITICAL", "UNKNOWN"), wal
            await keys_answer(pilot)
        finally:
            fault_lab.resume_cron()
            fault_lab.start_tunnel()
        await pilot.press("R")
        await panel_becomes(pilot, "wal", "OK", timeout=RECOVERY)

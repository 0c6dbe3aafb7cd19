"""Hosts gone silent (packets dropped, not refused) and the starport's sshd killed, on the fault lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from montagu_console.tui.screens.run import RunScreen
from montagu_console.tui.widgets.steps import StepList
from tests.conftest import console, wait_for
from tests.faults.helpers import (
    FAULT_PORTS,
    ONE_REFRESH,
    RECOVERY,
    assert_audit_complete,
    check_panel,
    delayed,
    fault_variant,
    keys_answer,
    kill_sshd,
    packets_dropped,
    panel_becomes,
    restart_tunnel,
    run_id,
    run_log,
    run_record,
    tui_app,
    wait_run_ended,
    wait_step_running,
)
from tests.tui.tui_helpers import panel_word
from tests.tui.tui_helpers import wait_for as tui_wait_for

pytestmark = pytest.mark.lab


def rows(app, panel: str) -> dict[str, tuple[str, str]]:
    return {i.name: (i.result.status.value, i.result.summary) for i in app.results[panel].instances}


async def test_packets_dropped_mid_probe_make_only_that_hosts_rows_unknown_then_recover(fault_lab, fault_config):
    app = tui_app(fault_config)
    async with app.run_test(size=(160, 48)) as pilot:
        for name in ("barman", "wal", "starport", "restore"):
            await panel_becomes(pilot, name, "OK", timeout=RECOVERY)
        await tui_wait_for(pilot, lambda: app.poller.polling_since("wal") is not None, timeout=30)
        with packets_dropped(FAULT_PORTS.aws_ssh, FAULT_PORTS.ssh):  # mid-probe: the off-site host and starport
            if app.poller.polling_since("starport") is None:
                await pilot.press("R")  # the starport is read in full every minute; R reads it now
            for panel in ("barman", "wal"):
                await panel_becomes(pilot, panel, "UNKNOWN")
                aws, annex = rows(app, panel)["aws"], rows(app, panel)["annex"]
                assert aws[0] == "UNKNOWN" and "aws" in aws[1], aws
                assert annex[0] == "OK", annex  # a silent host holds up nothing else
            text = await panel_becomes(pilot, "starport", "UNKNOWN")
            assert "starport" in text, text
            assert panel_word(app, "restore") == "OK"
            await keys_answer(pilot)
        restart_tunnel(fault_lab)  # the lab's repair: the console is not restarted
        for panel in ("barman", "wal", "starport"):  # the same console reconnects by itself
            await pilot.press("R")
            await panel_becomes(pilot, panel, "OK", timeout=RECOVERY)


def slow_bb8(tmp_path: Path, real: str, seconds: int) -> str:
    """A ``bb8`` that starts ``seconds`` late (its step keeps bb8's name: ``.../bb8 restore``)."""
    wrapper = tmp_path / "bin" / "bb8"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f'#!/bin/sh\nsleep {seconds}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_packets_to_the_starport_dropped_mid_restore_fail_the_restore_step_and_a_new_restore_passes(
    fault_lab, fault_config, tmp_path
):
    def edit(c):
        c["science"]["restore_command"][0] = slow_bb8(tmp_path, c["science"]["restore_command"][0], 3)

    cfg = fault_variant(fault_config, tmp_path / "slow-restore", edit)
    r = console(cfg, "run", "restore", "--yes", "--detach")
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    with packets_dropped(FAULT_PORTS.ssh):
        wait_step_running(cfg, rid, str(tmp_path / "bin" / "bb8"))
        starport = check_panel(cfg, "starport")
        assert starport["status"] == "UNKNOWN" and "starport" in starport["summary"], starport
        assert run_record(cfg, rid)["state"] == "running"  # a silent starport is no success
        # bb8's ssh gives up after its ConnectTimeout, five times: the step fails, named
        rec = wait_run_ended(cfg, rid, timeout=300)
    restart_tunnel(fault_lab)
    assert rec["state"] == "failed" and rec["failed_step"].endswith("bb8 restore"), rec
    assert "rsync failed too many times" in run_log(cfg, rid)
    assert_audit_complete(cfg, rid, "failed", rec["failed_step"])
    restore = wait_for(lambda: panel_is_not(cfg, "restore", "OK"), timeout=ONE_REFRESH, what="restore not OK")
    assert restore["status"] == "CRITICAL", restore  # science stopped after a failed restore: never OK
    wait_for(lambda: check_panel(cfg, "starport")["status"] == "OK", timeout=RECOVERY, what="starport OK again")
    again = console(fault_config, "run", "restore", "--yes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    wait_for(lambda: check_panel(cfg, "restore")["status"] == "OK", timeout=RECOVERY, what="restore OK again")


def panel_is_not(config: Path, name: str, status: str) -> dict | None:
    panel = check_panel(config, name)
    return panel if panel["status"] != status else None


def step_names(config: Path, rid: str) -> list[str]:
    return [s["name"] for s in run_record(config, rid)["steps"]]


def step_states(app) -> dict[str, str]:
    return {row.name: row.state for row in app.screen.query_one(StepList).rows}


async def test_sshd_killed_mid_ship_fails_that_step_in_the_run_view_and_keeps_the_starport_copy(
    fault_lab, fault_config, tmp_path
):
    cfg = fault_variant(
        fault_config,
        tmp_path / "slow-ship",
        lambda c: c["nightly"].update(ship_command=delayed(c["nightly"]["ship_command"], 6)),
    )
    shipped = check_panel(cfg, "starport")["facts"]["targets"][0]["last_backup"]
    r = console(cfg, "run", "nightly-recover", "--yes", "--detach")
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    app = tui_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await panel_becomes(pilot, "starport", "OK", timeout=RECOVERY)  # its SSH connection is open
        wait_step_running(cfg, rid, "ship to the starport")
        killed = kill_sshd(fault_lab)
        try:
            assert killed >= 2  # the listener and the console's own session at least
            ship = next(n for n in step_names(cfg, rid) if n.startswith("ship to the starport"))
            await pilot.press("v")
            await tui_wait_for(pilot, lambda: isinstance(app.screen, RunScreen), timeout=15)
            await tui_wait_for(
                pilot,
                lambda: step_states(app).get(ship) == "failed",
                timeout=120,
            )
            await keys_answer(pilot)
            await pilot.press("escape")
            await pilot.press("R")
            text = await panel_becomes(pilot, "starport", "UNKNOWN")
            assert "starport" in text, text
        finally:
            fault_lab.start_sshd()
            restart_tunnel(fault_lab)
        await pilot.press("R")
        text = await panel_becomes(pilot, "starport", "WARNING", timeout=RECOVERY)  # reconnected by itself
        assert "older than the nightly copy it should carry" in text, text
    rec = run_record(cfg, rid)
    assert rec["state"] == "failed" and rec["failed_step"].startswith("ship to the starport"), rec
    assert_audit_complete(cfg, rid, "failed", "ship to the starport")
    assert check_panel(cfg, "starport")["facts"]["targets"][0]["last_backup"] == shipped

"""The lab's Docker daemon stopped while the console polls and while a nightly recover runs."""

from __future__ import annotations

import pytest

from montagu_console.snapshot import PANELS
from tests.conftest import console, wait_for
from tests.faults.helpers import (
    RECOVERY,
    assert_audit_complete,
    check_panel,
    fault_variant,
    keys_answer,
    panel_becomes,
    run_id,
    run_log,
    start_docker,
    stop_docker,
    tui_app,
    wait_run_ended,
    wait_step_running,
)
from tests.tui.tui_helpers import panel_word
from tests.tui.tui_helpers import wait_for as tui_wait_for

pytestmark = pytest.mark.lab

NOT_REACHABLE = "daemon not reachable"


async def test_docker_stopped_mid_refresh_makes_every_panel_unknown_naming_the_daemon_then_recovers(
    fault_lab, fault_config
):
    app = tui_app(fault_config)
    async with app.run_test(size=(160, 48)) as pilot:
        for name in PANELS:
            await panel_becomes(pilot, name, "OK", timeout=RECOVERY)
        await tui_wait_for(pilot, lambda: app.poller.polling_since("restore") is not None, timeout=30)
        stop_docker(fault_lab)  # while the restore panel's poll is in flight
        try:
            for name in ("barman", "wal", "restore"):  # read every refresh
                text = await panel_becomes(pilot, name, "UNKNOWN")
                assert NOT_REACHABLE in text or "Cannot connect to the Docker daemon" in text, (name, text)
            assert fault_lab.docker_host in app.results["restore"].summary
            await keys_answer(pilot)
            # the starport's facts are read in full every FULL_EVERY_SECONDS; R reads them now
            await pilot.press("R")
            text = await panel_becomes(pilot, "starport", "UNKNOWN")
            assert NOT_REACHABLE in text, text
        finally:
            start_docker(fault_lab)
        for name in PANELS:  # no restart of the console: it reconnects by itself
            await panel_becomes(pilot, name, "OK", timeout=RECOVERY)
        assert all(panel_word(app, n) == "OK" for n in PANELS)


def test_docker_stopped_mid_replay_fails_that_step_keeps_the_starport_copy_and_a_new_run_passes(
    fault_lab, fault_config, tmp_path
):
    def slow_ready(c):  # the replay answers only after a few seconds: time to stop dockerd under it
        replay = c["nightly"]["replay"]
        replay["ready_command"] = ["sh", "-c", "sleep 5; " + replay["ready_command"][-1]]

    cfg = fault_variant(fault_config, tmp_path / "slow-replay", slow_ready)
    shipped = check_panel(cfg, "starport")["facts"]["targets"][0]["last_backup"]
    r = console(cfg, "run", "nightly-recover", "--yes", "--detach")
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    wait_step_running(cfg, rid, "replay the WAL")
    stop_docker(fault_lab)
    try:
        rec = wait_run_ended(cfg, rid, timeout=120)
        assert rec["state"] == "failed", rec
        assert rec["failed_step"].startswith("replay the WAL"), rec
        assert "Traceback" not in run_log(cfg, rid)
        assert "docker" in (rec["error"] or "").lower() or "docker" in run_log(cfg, rid).lower()
        assert_audit_complete(cfg, rid, "failed", "replay the WAL")
    finally:
        start_docker(fault_lab)
    starport = wait_for(lambda: panel_is_known(cfg), timeout=RECOVERY, what="the starport panel known again")
    assert starport["facts"]["targets"][0]["last_backup"] == shipped  # never shipped a copy it did not prove
    assert starport["status"] == "CRITICAL" and ".barman-last-restore missing" in starport["summary"]
    again = console(cfg, "run", "nightly-recover", "--yes")  # not refused: no leftover blocks it
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    wait_for(lambda: check_panel(fault_config, "starport")["status"] == "OK", timeout=RECOVERY, what="starport OK")


def panel_is_known(config) -> dict | None:
    panel = check_panel(config, "starport")
    return panel if panel["status"] != "UNKNOWN" else None

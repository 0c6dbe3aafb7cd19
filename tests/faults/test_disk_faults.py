"""The disk under the nightly copy full: the nightly volume on a small filesystem of its own
(a tmpfs, tests/faults/helpers.py), filled by a file beside the copy."""

from __future__ import annotations

import json

import pytest

from montagu_console.lab.layout import BARMAN_CONTAINER
from tests.conftest import annex_barman, console
from tests.faults.helpers import (
    ONE_REFRESH,
    RECOVERY,
    assert_audit_complete,
    audit_for,
    check_panel,
    fault_variant,
    fill,
    keys_answer,
    nightly_on_a_small_filesystem,
    panel_becomes,
    run_id,
    run_log,
    state_dir,
    tui_app,
    wait_run_ended,
    wait_step_running,
)
from tests.tui.tui_helpers import panel_text

pytestmark = pytest.mark.lab

MIB = 1024**2
FULL = "volume montagu_db_volume full"
# barman recover started late, so the filesystem can be filled while that step runs
SLOW_RECOVER = """#!/bin/sh
case " $* " in *" recover "*) sleep 6 ;; esac
exec barman "$@"
"""


def starport_room(config) -> dict:
    return check_panel(config, "starport")


def refused_records(config) -> list[dict]:
    lines = (state_dir(config) / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == "refused" and r.get("action") == "nightly-recover"]


async def test_a_full_nightly_volume_is_critical_refuses_the_recover_and_clears_when_freed(fault_lab, fault_config):
    with nightly_on_a_small_filesystem(fault_lab, copies=2.6) as root:
        before = starport_room(fault_config)
        assert before["status"] == "OK", before
        copy = before["facts"]["nightly_copy_bytes"]
        assert copy and before["facts"]["nightly_free_bytes"] >= 1.2 * copy, before["facts"]
        app = tui_app(fault_config)
        async with app.run_test(size=(160, 48)) as pilot:
            await panel_becomes(pilot, "starport", "OK", timeout=RECOVERY)
            filler = fill(root, leave=copy // 3)
            await pilot.press("R")  # the room is read with the copy's facts: every 60 s, at once on R
            text = await panel_becomes(pilot, "starport", "CRITICAL")
            assert FULL in text, text
            await keys_answer(pilot)

            # check says the same, with the sizes
            panel = starport_room(fault_config)
            assert panel["status"] == "CRITICAL" and FULL in panel["summary"], panel
            assert panel["facts"]["nightly_free_bytes"] < copy <= panel["facts"]["nightly_needed_bytes"]

            # the nightly recover is refused before any step, the copy as it was, the refusal audited
            refusals = len(refused_records(fault_config))
            r = console(fault_config, "run", "nightly-recover", "--yes")
            assert r.returncode == 2, r.stdout + r.stderr
            assert "nightly-recover refused" in r.stderr and FULL in r.stderr, r.stderr
            assert " started" not in r.stdout
            assert len(refused_records(fault_config)) == refusals + 1
            assert starport_room(fault_config)["facts"]["nightly_restored_at"] == before["facts"]["nightly_restored_at"]

            # repaired: the console sees it by itself within the copy's cadence (60 s), no R
            filler.unlink()
            await panel_becomes(pilot, "starport", "OK", timeout=60 + 2 * ONE_REFRESH)
            assert FULL not in panel_text(app, "starport")


def test_the_disk_filling_mid_recover_fails_that_step_and_keeps_the_copy(fault_lab, fault_config, tmp_path):
    wrapper = fault_lab.barman_dir / "slow-recover" / "barman"  # barman's dir is mounted in its container
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(SLOW_RECOVER)
    wrapper.chmod(0o755)

    def slow_recover(c):
        annex = annex_barman(c)
        annex["command"] = [*annex["command"][:-1], str(wrapper)]

    cfg = fault_variant(fault_config, tmp_path / "slow-recover", slow_recover)
    with nightly_on_a_small_filesystem(fault_lab, copies=2.6) as root:
        before = starport_room(cfg)
        assert before["status"] == "OK", before
        r = console(cfg, "run", "nightly-recover", "--yes", "--detach")
        assert r.returncode == 0, r.stdout + r.stderr
        rid = run_id(r.stdout)
        wait_step_running(cfg, rid, "barman recover")
        filler = fill(root, leave=MIB)
        rec = wait_run_ended(cfg, rid, timeout=180)
        assert rec["state"] == "failed", rec
        assert rec["failed_step"].startswith("barman recover latest into the dump directory"), rec
        log = run_log(cfg, rid)
        assert "No space left on device" in log, log[-3000:]
        assert "Traceback" not in log
        assert "move the recovered files up" not in [s["name"] for s in rec["steps"] if s["state"] != "pending"]
        assert_audit_complete(cfg, rid, "failed", "barman recover latest into the dump directory")

        # the previous copy is still the copy, and the full disk is named
        panel = starport_room(cfg)
        assert panel["facts"]["nightly_restored_at"] == before["facts"]["nightly_restored_at"], panel
        assert panel["status"] == "CRITICAL" and "volume montagu_db_volume" in panel["summary"], panel

        # repaired: the dump the failed recover left counts as room (the next recover removes
        # it first), so the panel is OK again and a new recover passes
        filler.unlink()
        panel = starport_room(cfg)
        assert panel["status"] == "OK", panel
        again = console(fault_config, "run", "nightly-recover", "--yes")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr
        after = starport_room(fault_config)
        assert after["status"] == "OK", after
        assert after["facts"]["nightly_restored_at"] > before["facts"]["nightly_restored_at"]
    assert [r for r in audit_for(cfg, rid) if r["event"] == "finished"]
    assert BARMAN_CONTAINER in fault_lab.docker("ps", "--format", "{{.Names}}").stdout

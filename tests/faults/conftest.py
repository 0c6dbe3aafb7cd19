"""The fault suite's own lab: it stops dockerd, drops packets and kills sshd, so never the shared one.

FAULT_LAB_DIR (``MONTAGU_FAULT_LAB_DIR``) with FAULT_PORTS, apart from the shared lab, the bench
lab and the smoke test's lab. Brought up once per session (reused when running) and taken down
at the end unless MONTAGU_KEEP_LAB=1; before each test it is brought up again, which reuses it
when healthy and rebuilds it when a fault was left behind, so one failed repair fails one test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import console
from tests.faults.helpers import FAULT_LAB_DIR, FAULT_PORTS, fault_variant, remove_drop_rules


@pytest.fixture(scope="session")
def fault_lab_session() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.fail("the fault suite needs root: its lab runs postgres, sshd and dockerd, and it sets iptables rules")
    from montagu_console.lab import lab_down, lab_up

    remove_drop_rules()  # left by a run that was killed
    lab_up(FAULT_LAB_DIR, ports=FAULT_PORTS)
    yield
    if os.environ.get("MONTAGU_KEEP_LAB") != "1":
        lab_down(FAULT_LAB_DIR)


@pytest.fixture
def fault_lab(fault_lab_session):
    """The fault lab, healthy: reused when every part runs, rebuilt otherwise."""
    from montagu_console.lab import Lab, lab_up

    lab_up(FAULT_LAB_DIR, ports=FAULT_PORTS)
    return Lab.load(FAULT_LAB_DIR)


@pytest.fixture
def fault_config(fault_lab, tmp_path) -> Path:
    """The fault lab's bb8-profile config with the suite's refresh, timeouts and lock dir; its
    nightly copy proven (a fresh lab's is not), so a healthy lab is OK on every panel."""
    config = fault_variant(fault_lab.config_path, tmp_path / "bb8")
    if not (fault_lab.state_dir / "proofs.jsonl").exists():
        r = console(config, "run", "prove-nightly", "--yes")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    return config

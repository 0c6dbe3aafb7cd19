"""The console's clock skewed both ways (faketime), the lab's clocks right: never OK by default."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from montagu_console.snapshot import PANELS
from tests.conftest import CONSOLE

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime (Debian package faketime) is missing"),
]


def check_at(config, offset: str) -> tuple[int, dict, str]:
    """``check --json`` with the console's wall clock moved by ``offset`` (monotonic time untouched)."""
    r = subprocess.run(
        ["faketime", "-f", offset, CONSOLE, "check", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout), r.stderr


def test_a_console_clock_behind_says_clock_skew_on_every_panel(fault_lab, fault_config):
    code, doc, _ = check_at(fault_config, "-1d")
    assert code == 1 and doc["status"] == "WARNING", doc
    for name in PANELS:
        panel = doc["panels"][name]
        assert panel["status"] == "WARNING" and "in the future: clock skew?" in panel["summary"], (name, panel)


def test_a_console_clock_ahead_is_never_ok_and_names_the_ages(fault_lab, fault_config):
    code, doc, _ = check_at(fault_config, "+3d")
    assert code == 2 and doc["status"] == "CRITICAL", doc
    assert "last WAL archived 3 days ago (limit 60 minutes)" in doc["panels"]["wal"]["summary"]
    assert "nightly copy 3 days old (limit 50 h)" in doc["panels"]["starport"]["summary"]
    code, doc, _ = check_at(fault_config, "+0")  # the clock right again: the same console is OK
    assert code == 0 and doc["status"] == "OK", doc

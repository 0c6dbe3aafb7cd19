"""The soak, short: the TUI for 3 minutes at a 2 s refresh on the healthy lab (the 30-minute run's
figures are in docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.lab


def test_three_minutes_at_a_2s_refresh_every_status_ok_and_rss_flat(lab_config, tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tui_soak.py"), "--config", str(lab_config)]
        + ["--minutes", "3", "--refresh", "2", "--every", "30", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(Path(out).read_text())
    assert result["problems"] == []
    assert len(result["samples"]) >= 5  # RSS and CPU every 30 s
    seen = {(c["panel"], c["instance"]) for c in result["status_changes"]}
    assert {("barman", None), ("wal", None), ("starport", None), ("restore", None)} <= seen  # the TUI's history
    assert all(c["status"] == "OK" for c in result["status_changes"])

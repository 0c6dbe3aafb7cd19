"""Point-in-time recovery's pure parts: the target time, the base backup barman uses, the plan,
the exit status and the report's Markdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from montagu_console.actions import pitr
from montagu_console.snapshot import BackupInfo

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def backup(backup_id: str, ended: datetime | None, status: str = "DONE") -> BackupInfo:
    return BackupInfo(backup_id, status, ended, 100, 10)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-12-01 14:02:00+00", datetime(2026, 12, 1, 14, 2, tzinfo=UTC)),
        ("2026-12-01T14:02Z", datetime(2026, 12, 1, 14, 2, tzinfo=UTC)),
        ("2026-12-01 14:02", datetime(2026, 12, 1, 14, 2, tzinfo=UTC)),  # no zone: UTC
        ("2026-12-01 15:02:00+01:00", datetime(2026, 12, 1, 14, 2, tzinfo=UTC)),
    ],
)
def test_target_times_that_parse(text, expected):
    assert pitr.parse_target(text) == expected


@pytest.mark.parametrize(
    "text", [None, "", "  ", "yesterday", "14:02", "2026-13-01 00:00", "2026-12-01 14:02" + "0" * 80]
)
def test_target_times_that_do_not(text):
    assert pitr.parse_target(text) is None


def test_the_base_backup_is_the_newest_that_ended_before_the_target():
    backups = (
        backup("20261201T130000", T0 + timedelta(hours=0)),
        backup("20261201T120000", T0 - timedelta(hours=1)),
        backup("20261201T125900", None, "STARTED"),
        backup("20261201T110000", T0 - timedelta(hours=2), "FAILED"),
        backup("20261201T100000", T0 - timedelta(hours=3)),
    )
    assert pitr.base_backup_for(backups, T0 + timedelta(minutes=1)).backup_id == "20261201T130000"
    assert pitr.base_backup_for(backups, T0).backup_id == "20261201T120000"  # ended AT the target: not before it
    assert pitr.base_backup_for(backups, T0 - timedelta(hours=3)) is None
    assert pitr.oldest_backup(backups).backup_id == "20261201T100000"
    assert pitr.oldest_backup(()) is None


def test_exit_status_as_for_drills():
    assert pitr.exit_code({"outcome": "passed", "verified_at": "x"}) == 0
    assert pitr.exit_code({"outcome": "failed", "verified_at": "x"}) == 1  # a verification failed
    assert pitr.exit_code({"outcome": "failed"}) == 2  # a step failed
    assert pitr.exit_code({"outcome": "refused"}) == 2
    assert pitr.exit_code(None) == 2


def test_the_markdown_escapes_what_comes_from_data():
    md = pitr.render_markdown(
        {
            "pitr_id": "20261201T140000Z-pitr-abcd",
            "outcome": "failed",
            "target_time": "<b>x</b>",
            "verify": [
                {"name": "| pipe", "sql": "select `1`", "expect": "> 0", "value": "[a](http://x)", "passed": False}
            ],
            "failure": "# not a heading",
        }
    )
    assert "<b>" not in md and "\\<b\\>" in md and "\\[a\\]\\(http://x\\)" in md and "\n\\# not a heading" in md
    assert "| \\| pipe |" in md and "FAIL" in md


def test_the_plan_recovers_into_the_scratch_volume_only():
    from pathlib import Path

    from montagu_console.config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "config.example.yml")
    plan = pitr.plan(config, T0, "20261201T120000")
    text = repr(plan)
    recover = next(s for s in plan["steps"] if "recover" in s.get("argv", []))
    assert recover["argv"][-3:] == [config.barman.server, "20261201T120000", "/pitr/dump"]
    assert ["--target-time", T0.isoformat()] == recover["argv"][recover["argv"].index("--target-time") :][:2]
    assert config.nightly.volume not in text and config.science.volume not in text and config.nightly.mount not in text
    replay = next(s for s in plan["steps"] if s["kind"] == "pitr_replay")
    assert replay["volume"] == config.pitr.volume and replay["port"] == config.pitr.port
    assert all("=" not in name for name in replay["env_names"])  # names only: no value in plan.json
    assert [s["kind"] for s in plan["steps"]][-1] == "pitr_keep"

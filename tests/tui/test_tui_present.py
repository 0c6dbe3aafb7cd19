"""The presentation rules: status words (STALE), coarse ages, human facts, trends."""

from __future__ import annotations

from datetime import timedelta

import pytest
import tui_fakes

from montagu_console.snapshot import Status
from montagu_console.tui.present import backup_age_trend, fmt_age, lag_trend, overall, panel_view
from montagu_console.tui.widgets.trend import trend_text

NOW = tui_fakes.NOW


def view(name, result, *, now=NOW, period=10, last_good=None, polling_for=None):
    return panel_view(name, result, last_good, now=now, period=period, host="annex", polling_for=polling_for)


@pytest.mark.parametrize(
    "seconds, text, short",
    [
        (None, "unknown", "unknown"),
        (0, "just now", "just now"),
        (9.9, "just now", "just now"),
        (10, "10 s", "10 s"),
        (59, "50 s", "50 s"),
        (95, "1 minute", "1 min"),
        (150, "2 minutes", "2 min"),
        (31 * 3600, "31 hours", "31 h"),
        (3 * 86400, "3 days", "3 days"),
        (33 * 86400, "33 days", "33 days"),  # days, to read against 32 and 35
    ],
)
def test_ages_are_coarse(seconds, text, short):
    assert fmt_age(seconds) == text
    assert fmt_age(seconds, short=True) == short


def test_stale_after_three_periods_keeps_a_critical_critical():
    ok = tui_fakes.wal_result()  # taken 2 s before NOW
    assert view("wal", ok, now=NOW + timedelta(seconds=28)).word == "OK"
    stale = view("wal", ok, now=NOW + timedelta(seconds=29))
    assert (stale.word, stale.effective) == ("STALE", Status.UNKNOWN)
    assert stale.age == "data 30 s old"
    critical = view("wal", tui_fakes.wal_result(receiving=False), now=NOW + timedelta(minutes=5))
    assert (critical.word, critical.effective) == ("STALE", Status.CRITICAL)
    assert "it last said CRITICAL: receive-wal not running" in critical.summary


def test_no_result_yet_is_unknown_and_says_how_long_it_has_waited():
    v = view("starport", None, polling_for=25)
    assert (v.word, v.summary, v.age) == (
        "UNKNOWN",
        "waiting for the first answer from annex",
        "no data yet · polling 20 s",
    )


def test_a_failure_shows_the_last_known_facts_labelled():
    v = view("barman", tui_fakes.failed_result("barman"), last_good=tui_fakes.barman_result())
    assert v.word == "UNKNOWN"
    assert v.lines[0] == "last known, from 07:09:03:"
    assert "last backup 3 days ago" in v.lines


def test_overall_is_the_worst():
    views = {n: view(n, r) for n, r in tui_fakes.troubled().items()}
    assert overall(views) is Status.CRITICAL
    assert overall({}) is Status.UNKNOWN


def test_trend_is_scaled_against_the_threshold():
    assert trend_text((0, 32, 16, 64), 10, 64) == "▁▅▃█"
    assert trend_text((16_384,) * 5, 3, 64 * 1024**2) == "▁▁▁"  # a small steady lag stays low
    assert trend_text((1, 2, 3), 0, 3) == ""


def test_backup_age_trend_is_a_sawtooth_of_whole_days():
    trend = backup_age_trend(tui_fakes.barman_result().detail, NOW, tui_fakes.make_config())
    assert trend.top == 32 and trend.label == "backup age"
    assert len(trend.values) == 30
    assert trend.values[-4:] == (27.0, 0.0, 1.0, 2.0)  # the backup of 2026-11-21 reset it
    assert lag_trend((1.0, 2.0), tui_fakes.make_config()).top == 64 * 1024**2

"""The one time module: one parser, ages, the future tolerance and one duration format."""

from datetime import UTC, datetime, timedelta

import pytest

from montagu_console import clock


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2020-03-02 01:25:03.123456789+00:00", datetime(2020, 3, 2, 1, 25, 3, 123456, tzinfo=UTC)),
        ("2026-11-25T05:01:02Z", datetime(2026, 11, 25, 5, 1, 2, tzinfo=UTC)),
        ("2026-11-25T06:01:02+01:00", datetime(2026, 11, 25, 5, 1, 2, tzinfo=UTC)),
    ],
)
def test_parse_iso_reads_the_chains_stamps(text, expected):
    assert clock.parse_iso(text) == expected


@pytest.mark.parametrize("text", ["2026-11-25 05:01:02", "yesterday", "", "2026-13-01T00:00:00+00:00"])
def test_parse_iso_refuses_what_has_no_zone_or_is_no_time(text):
    with pytest.raises(ValueError):
        clock.parse_iso(text)
    assert clock.parse_iso_or_none(text) is None


def test_ages_and_the_future_tolerance():
    now = datetime(2026, 12, 2, tzinfo=UTC)
    assert clock.age_seconds(now, now - timedelta(minutes=2)) == 120
    assert clock.age_seconds(now, None) is None
    ahead = clock.age_seconds(now, now + timedelta(seconds=clock.FUTURE_TOLERANCE_SECONDS + 1))
    assert ahead is not None and ahead < 0 and clock.in_future(ahead)
    assert not clock.in_future(-clock.FUTURE_TOLERANCE_SECONDS) and not clock.in_future(None)


def test_seconds_between_and_now():
    assert clock.seconds_between("2026-12-02T00:00:00+00:00", "2026-12-02T00:01:30.25+00:00") == 90.2
    assert clock.seconds_between(None, "2026-12-02T00:00:00+00:00") is None
    assert clock.seconds_between("garbage", "2026-12-02T00:00:00+00:00") is None
    assert clock.parse_iso(clock.now_iso()).tzinfo is not None


@pytest.mark.parametrize(
    "seconds,text",
    [
        (None, "unknown"),
        (0.4, "0 s"),
        (42, "42 s"),
        (185, "3 min 05 s"),
        (7620, "2 h 07 min"),
        (3 * 86400 + 7200, "3 d 02 h"),
        (-75, "-1 min 15 s"),
    ],
)
def test_one_duration_format(seconds, text):
    assert clock.duration(seconds) == text

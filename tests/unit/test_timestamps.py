from datetime import UTC

import pytest

from montagu_console.clock import parse_iso as parse_timestamp


def test_rfc3339_ns_from_date():
    t = parse_timestamp("2020-03-02 01:25:03.123456789+00:00\n")
    assert (t.year, t.microsecond, t.utcoffset().total_seconds()) == (2020, 123456, 0)


def test_bb8_isoformat_with_offset():
    t = parse_timestamp("2026-11-25T05:01:02.5+01:00")
    assert t.astimezone(UTC).hour == 4


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-11-25 05:01:02"])
def test_rejects_garbage_and_naive(bad):
    with pytest.raises(ValueError):
        parse_timestamp(bad)


def test_rfc3339_ns_writes_what_date_writes_and_reads_back():
    from datetime import datetime, timedelta, timezone

    from montagu_console.clock import rfc3339_ns

    moment = datetime(2026, 11, 25, 5, 1, 2, 123456, tzinfo=UTC)
    assert rfc3339_ns(moment) == "2026-11-25 05:01:02.123456000+00:00"
    assert rfc3339_ns(moment, nanosecond=123456789) == "2026-11-25 05:01:02.123456789+00:00"
    assert rfc3339_ns(moment.replace(tzinfo=None)) == "2026-11-25 05:01:02.123456000+00:00"  # naive is UTC
    east = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert rfc3339_ns(east) == "2026-11-25 10:31:02.123456000+05:30"
    assert parse_timestamp(rfc3339_ns(east)) == moment

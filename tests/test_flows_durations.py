"""Durations and clock times as staff type them, and the expected return /out derives from them."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from flows.durations import BadDuration, format_duration, parse_clock, parse_duration, resolve_return

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc


# parse_duration ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("24h", timedelta(hours=24)),
        ("365d", timedelta(days=365)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 1H 30M ", timedelta(hours=1, minutes=30)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration_reads_typed_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["45x", "", "   ", "m", "-5m", "1.5h", "30m1h", "h30", "14:30", "45 minutes"])
def test_parse_duration_refuses_bad_forms_with_a_hint(text):
    with pytest.raises(BadDuration) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert "is not a duration" in message
    assert "1h30m" in message  # the hint shows how to write one


def test_bad_duration_is_a_value_error_so_pydantic_can_report_it():
    with pytest.raises(ValueError):
        parse_duration("soon")


# parse_clock --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("14:30", time(14, 30)),
        ("9:05", time(9, 5)),
        ("09:05", time(9, 5)),
        ("14.30", time(14, 30)),
        ("00:00", time(0, 0)),
        ("23:59", time(23, 59)),
        (" 08:15 ", time(8, 15)),
    ],
)
def test_parse_clock_reads_clock_times(text, expected):
    assert parse_clock(text) == expected


@pytest.mark.parametrize("text", ["24:00", "14:60", "1430", "2:3", "45m", "", "noon", "-1:30"])
def test_parse_clock_returns_none_for_anything_else(text):
    assert parse_clock(text) is None


# format_duration ----------------------------------------------------------------


@pytest.mark.parametrize(
    "delta, typed",
    [
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(hours=24), "1d"),
        (timedelta(days=365), "365d"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (timedelta(0), "0m"),
    ],
)
def test_format_duration_writes_it_the_way_it_is_typed(delta, typed):
    assert format_duration(delta) == typed


@pytest.mark.parametrize("text", ["90s", "15m", "1h30m", "24h", "365d", "2h", "1d12h", "45s", "0m"])
def test_format_then_parse_round_trips(text):
    delta = parse_duration(text)
    assert parse_duration(format_duration(delta)) == delta


def test_format_duration_of_a_negative_delta_is_zero():
    assert format_duration(timedelta(minutes=-5)) == "0m"


# resolve_return -----------------------------------------------------------------


def test_resolve_return_adds_a_duration_to_now():
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert resolve_return("45m", now, LONDON) == datetime(2026, 11, 23, 9, 45, tzinfo=UTC)
    assert resolve_return("1h30m", now, LONDON) == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_resolve_return_duration_across_the_autumn_change_is_real_elapsed_time():
    # 00:30 UTC on Sunday 25 Oct 2026 is 01:30 BST; clocks go back at 01:00 UTC.
    now = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert resolve_return("2h", now, LONDON) - now == timedelta(hours=2)


@pytest.mark.parametrize(
    "now_utc, expected_utc",
    [
        # Friday 27 March 2026: still GMT, 14:30 London is 14:30 UTC.
        (datetime(2026, 3, 27, 9, 0, tzinfo=UTC), datetime(2026, 3, 27, 14, 30, tzinfo=UTC)),
        # Monday 30 March 2026: BST, 14:30 London is 13:30 UTC.
        (datetime(2026, 3, 30, 9, 0, tzinfo=UTC), datetime(2026, 3, 30, 13, 30, tzinfo=UTC)),
        # Sunday 29 March 2026, 00:30 GMT: the clocks go forward before the afternoon.
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 3, 29, 13, 30, tzinfo=UTC)),
        # Friday 23 October 2026: still BST.
        (datetime(2026, 10, 23, 9, 0, tzinfo=UTC), datetime(2026, 10, 23, 13, 30, tzinfo=UTC)),
        # Sunday 25 October 2026, 01:30 BST: the clocks go back before the afternoon.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 14, 30, tzinfo=UTC)),
        # Monday 26 October 2026: GMT again.
        (datetime(2026, 10, 26, 9, 0, tzinfo=UTC), datetime(2026, 10, 26, 14, 30, tzinfo=UTC)),
    ],
)
def test_resolve_return_clock_time_later_today_in_london(now_utc, expected_utc):
    expected_return = resolve_return("14:30", now_utc, LONDON)
    assert expected_return == expected_utc
    assert expected_return.astimezone(LONDON).strftime("%H:%M") == "14:30"


def test_resolve_return_clock_time_uses_the_school_date_not_the_utc_date():
    # 23:30 UTC on Monday 1 June 2026 is already 00:30 on Tuesday in London.
    now = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert resolve_return("08:00", now, LONDON) == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)


def test_resolve_return_refuses_a_clock_time_already_passed():
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 15:00 GMT
    with pytest.raises(BadDuration, match="14:30 has already passed"):
        resolve_return("14:30", now, LONDON)


def test_resolve_return_refuses_a_clock_time_equal_to_now():
    now = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)  # 14:30 BST
    with pytest.raises(BadDuration, match="already passed"):
        resolve_return("14:30", now, LONDON)


def test_resolve_return_passed_check_respects_summer_time():
    # 13:45 UTC in June is 14:45 BST: 14:30 has passed even though 14:30 UTC has not.
    now = datetime(2026, 6, 1, 13, 45, tzinfo=UTC)
    with pytest.raises(BadDuration, match="already passed"):
        resolve_return("14:30", now, LONDON)


@pytest.mark.parametrize("text", ["0m", "0s", "0h0m"])
def test_resolve_return_refuses_a_zero_duration(text):
    with pytest.raises(BadDuration, match="more than zero"):
        resolve_return(text, datetime(2026, 11, 23, 9, 0, tzinfo=UTC), LONDON)


@pytest.mark.parametrize("text", ["soon", "45x", "25:00", ""])
def test_resolve_return_refuses_text_that_is_neither(text):
    with pytest.raises(BadDuration, match="not a duration or a time"):
        resolve_return(text, datetime(2026, 11, 23, 9, 0, tzinfo=UTC), LONDON)

"""Calling windows in the campaign's time zone: open/closed, the next change, DST, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pacer.windows import CallingWindows, WindowError

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NY = ZoneInfo("America/New_York")


def test_the_seed_campaign_windows_in_vietnam() -> None:
    w = CallingWindows.parse("Asia/Ho_Chi_Minh", ["10:00-12:00", "15:30-17:30"])
    day = datetime(2026, 11, 23, tzinfo=VN)
    assert not w.is_open(day.replace(hour=9, minute=59))
    assert w.is_open(day.replace(hour=10))
    assert not w.is_open(day.replace(hour=12)), "the end is excluded"
    assert w.next_change(day.replace(hour=12, minute=30)) == day.replace(hour=15, minute=30)
    assert w.next_change(day.replace(hour=18)) == day.replace(hour=10) + timedelta(days=1)
    assert w.open_for(day.replace(hour=11, minute=15)) == timedelta(minutes=45)
    assert w.open_for(day.replace(hour=13)) == timedelta(0)
    # The same instant given in UTC: 03:00 UTC is 10:00 in Vietnam.
    assert w.is_open(datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc))


def test_windows_across_midnight_and_until_midnight() -> None:
    w = CallingWindows.parse("UTC", ["21:00-01:00"])
    d = datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert w.is_open(d.replace(hour=23, minute=59)) and w.is_open(d.replace(hour=0, minute=30))
    assert not w.is_open(d.replace(hour=1))
    assert w.next_change(d.replace(hour=22)) == d.replace(hour=1) + timedelta(days=1)
    assert CallingWindows.parse("UTC", ["18:00-24:00"]).is_open(d.replace(hour=23, minute=59))


def test_daylight_saving_follows_the_wall_clock() -> None:
    w = CallingWindows.parse("America/New_York", ["09:00-17:00"])
    # 2026-03-08: clocks jump 02:00 -> 03:00. The window still opens at 09:00 local (13:00 UTC,
    # not 14:00 as the day before).
    assert w.next_change(datetime(2026, 3, 8, 5, 0, tzinfo=timezone.utc)) == datetime(2026, 3, 8, 9, 0, tzinfo=NY)
    assert w.is_open(datetime(2026, 3, 8, 13, 0, tzinfo=timezone.utc))
    assert not w.is_open(datetime(2026, 3, 7, 13, 0, tzinfo=timezone.utc))
    jumped = CallingWindows.parse("America/New_York", ["02:00-04:00"])
    opens = jumped.next_change(datetime(2026, 3, 8, 5, 0, tzinfo=timezone.utc))  # 00:00 local
    assert opens.astimezone(timezone.utc) == datetime(2026, 3, 8, 7, 0, tzinfo=timezone.utc), "02:00 does not exist: 03:00"


@pytest.mark.parametrize(
    ("tz", "windows", "message"),
    [
        ("Mars/Olympus", ["10:00-12:00"], "IANA"),
        ("UTC", [], "at least one"),
        ("UTC", ["10:00"], "such as 10:00-12:00"),
        ("UTC", ["10:00-10:00"], "empty"),
        ("UTC", ["25:00-26:00"], "HH:MM"),
        ("UTC", ["ten-eleven"], "HH:MM"),
        ("UTC", ["10:00-12:00", "11:30-13:00"], "overlaps"),
    ],
)
def test_bad_windows_are_refused(tz: str, windows: list[str], message: str) -> None:
    with pytest.raises(WindowError, match=message):
        CallingWindows.parse(tz, windows)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(WindowError, match="naive"):
        CallingWindows.parse("UTC", ["10:00-12:00"]).is_open(datetime(2026, 1, 1, 10))


def test_whole_day_window() -> None:
    w = CallingWindows.parse("Asia/Ho_Chi_Minh", ["00:00-24:00"])
    assert [str(x) for x in w.windows] == ["00:00-24:00"]
    d = datetime(2026, 3, 1, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert all(w.is_open(d + timedelta(minutes=m)) for m in range(0, 24 * 60, 7))
    with pytest.raises(WindowError, match="overlaps"):
        CallingWindows.parse("UTC", ["00:00-24:00", "10:00-11:00"])


def test_windows_to_the_second() -> None:
    w = CallingWindows.parse("UTC", ["10:00:30-10:00:45", "10:01-10:02:00"])
    assert [str(x) for x in w.windows] == ["10:00:30-10:00:45", "10:01-10:02"]
    day = datetime(2026, 11, 23, tzinfo=timezone.utc)
    assert not w.is_open(day.replace(hour=10, second=29))
    assert w.is_open(day.replace(hour=10, second=30)) and w.is_open(day.replace(hour=10, second=44))
    assert not w.is_open(day.replace(hour=10, second=45))
    assert w.next_change(day.replace(hour=10, second=31)) == day.replace(hour=10, second=45)
    with pytest.raises(WindowError, match="overlaps"):
        CallingWindows.parse("UTC", ["10:00:30-10:00:45", "10:00:44-10:01"])
    for bad in ("10:00:60-10:01", "10:0-10:01", "10:00:5-10:01"):
        with pytest.raises(WindowError, match="HH:MM:SS"):
            CallingWindows.parse("UTC", [bad])

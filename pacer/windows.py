"""Calling windows: the hours of the day, in the campaign's time zone, when calls may be placed.

Pure: every question takes the instant it is about (an aware `datetime`), never the clock. The
pacer asks `is_open(now)` before each decision and sleeps until `next_change(now)` when closed, so
no INVITE leaves outside a window.

Windows are local wall-clock times (`10:00-12:00`, or to the second: `10:00:30-10:05:00`), start
included, end excluded, and may cross midnight (`21:00-01:00`). On a daylight-saving change the wall clock decides: a window from 02:00
on the night clocks jump from 02:00 to 03:00 opens at 03:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
import zoneinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class WindowError(ValueError):
    """A calling window or time zone is not valid."""


def _parse_time(text: str) -> time:
    parts = text.strip().split(":")
    try:
        if len(parts) not in (2, 3) or not all(len(p) == 2 and p.isdigit() for p in parts):
            raise ValueError
        h, m, sec = (int(p) for p in [*parts, "0"][:3])
    except ValueError:
        raise WindowError(f"{text!r}: expected HH:MM or HH:MM:SS") from None
    if h == 24 and m == 0 and sec == 0:
        return time(0, 0)  # "24:00": the end of the day
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= sec < 60):
        raise WindowError(f"{text!r}: expected HH:MM or HH:MM:SS between 00:00 and 24:00")
    return time(h, m, sec)


def _hms(t: time) -> str:
    return t.strftime("%H:%M:%S") if t.second else t.strftime("%H:%M")


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        """`"10:00-12:00"`."""
        a, sep, b = text.partition("-")
        if not sep:
            raise WindowError(f"{text!r}: expected a window such as 10:00-12:00")
        w = cls(_parse_time(a), _parse_time(b))
        if w.start == w.end and b.strip() != "24:00":  # 00:00-24:00 is the whole day
            raise WindowError(f"{text!r}: a window cannot be empty")
        return w

    def contains(self, t: time) -> bool:
        if self.end == time(0, 0):  # until midnight
            return t >= self.start
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # crosses midnight

    def __str__(self) -> str:
        end = "24:00" if self.end == time(0, 0) else _hms(self.end)
        return f"{_hms(self.start)}-{end}"


_ZONES: dict[str, ZoneInfo] = {}
_preloaded = False


def preload_zones() -> int:
    """Load every IANA time zone (about 600; 0.1 s, a few MB): called at start-up, before the
    event loop runs, so that no campaign's settings ever make the loop read the tz database.
    Answers how many."""
    global _preloaded
    for name in zoneinfo.available_timezones():
        _ZONES.setdefault(name, ZoneInfo(name))
    _preloaded = True
    return len(_ZONES)


def time_zone(tz: str) -> ZoneInfo:
    """The zone of an IANA name, from the preloaded table (`preload_zones`), or read now."""
    z = _ZONES.get(tz)
    if z is None:
        if _preloaded:
            raise ZoneInfoNotFoundError(tz)
        z = _ZONES[tz] = ZoneInfo(tz)
    return z


def _ranges(w: Window) -> list[tuple[int, int]]:
    """A window as one or two ranges of the day in seconds (two when it crosses midnight)."""
    day = 24 * 3600
    a = w.start.hour * 3600 + w.start.minute * 60 + w.start.second
    b = w.end.hour * 3600 + w.end.minute * 60 + w.end.second or day
    return [(a, b)] if a < b else [(a, day), (0, b)]


@dataclass(frozen=True)
class CallingWindows:
    zone: ZoneInfo
    windows: tuple[Window, ...]

    @classmethod
    def parse(cls, tz: str, windows: list[str] | tuple[str, ...]) -> CallingWindows:
        """`CallingWindows.parse("Asia/Ho_Chi_Minh", ["10:00-12:00", "15:30-17:30"])`."""
        try:
            zone = time_zone(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise WindowError(f"{tz!r} is not an IANA time zone (such as Asia/Ho_Chi_Minh)") from None
        if not windows:
            raise WindowError("at least one calling window is needed")
        parsed = tuple(Window.parse(w) for w in windows)
        # Overlaps are refused: they are almost always a typo. Sorted, no range may start before
        # the previous one ends.
        spans = sorted(((a, b, w) for w in parsed for a, b in _ranges(w)), key=lambda x: (x[0], x[1]))
        for (_, end, _), (start, _, w) in zip(spans, spans[1:]):
            if start < end:
                raise WindowError(f"window {w} overlaps another")
        return cls(zone, parsed)

    def spans(self) -> list[tuple[int, int]]:
        """The hours these windows open, as ranges of the day in seconds, sorted, touching ones
        merged (10:00-12:00 and 12:00-13:00 are 10:00-13:00)."""
        out: list[tuple[int, int]] = []
        for a, b in sorted(r for w in self.windows for r in _ranges(w)):
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(b, out[-1][1]))
            else:
                out.append((a, b))
        return out

    def local(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            raise WindowError("a naive datetime: give an aware one (the instant must be unambiguous)")
        return at.astimezone(self.zone)

    def is_open(self, at: datetime) -> bool:
        t = self.local(at).time()
        return any(w.contains(t) for w in self.windows)

    def next_change(self, at: datetime) -> datetime:
        """The next instant after `at` when the windows open or close."""
        loc = self.local(at)
        now_open = self.is_open(at)
        for day in range(0, 3):
            d: date = loc.date() + timedelta(days=day)
            edges = sorted({w.start for w in self.windows} | {w.end for w in self.windows})
            for t in edges:
                cand = datetime.combine(d, t, tzinfo=self.zone)
                # A wall time that does not exist (clocks jumped over it) maps past the jump.
                cand = cand.astimezone(self.zone)
                if cand > loc and self.is_open(cand) != now_open:
                    return cand
        raise WindowError("the windows never change")  # unreachable with non-empty windows

    def open_for(self, at: datetime) -> timedelta:
        """How long the windows stay open from `at` (zero when closed)."""
        if not self.is_open(at):
            return timedelta(0)
        return self.next_change(at) - self.local(at)

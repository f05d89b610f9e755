"""Time-varying facility power cap: a base cap lowered in windows of months and local hours.

KEGOC curtails large consumers first when winter evening load exceeds generation (hub-facts 3:
peak 16.5 GW vs 15.2 GW generation on 7 Dec 2022; 0.9 GW deficit forecast for winter 2025/26), so
a site can declare windows such as "November-February, 17:00-21:00 local: at most 70 MW". The cap at
a moment is the smallest of the base cap and the caps of all windows active then. Windows use
whole local hours, half-open: ``hours = (17, 21)`` covers 17:00 up to, not including, 21:00; a
window may wrap midnight (``(22, 6)``). The cap therefore depends only on the local (month, hour),
and it can change only on a local hour boundary. Local time is the site clock's
(``steppe.energy.clock``): with a zone that has daylight saving, the windows follow the wall clock
across the change (a 17-21 window starts at 16:00 UTC in a Berlin winter and 15:00 UTC in summer).

Times are POSIX seconds (UTC). 2026-01-10 12:00 UTC is 17:00 in Astana (UTC+5):

>>> from datetime import datetime, UTC
>>> sched = CapSchedule(100e6, (CapWindow(frozenset({11, 12, 1, 2}), (17, 21), 70e6, "winter peak"),), 5.0)
>>> t = datetime(2026, 1, 10, 12, tzinfo=UTC).timestamp()
>>> sched.cap_w_at(t - 1), sched.cap_w_at(t)
(100000000.0, 70000000.0)
>>> (sched.next_cap_change_s(t) - t) / 3600          # back to 100 MW at 21:00 local
4.0
>>> (sched.next_cap_change_s(t - 7200) - t) / 3600   # from 15:00 local: the window opens at 17:00
0.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from steppe.energy.clock import SiteClock

_HOURS_RE = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")
_MAX_SEARCH_DAYS = 367  # the schedule repeats every year, so a change is found within a year or never


def parse_hours(text: str) -> tuple[int, int]:
    """Parse ``"17-21"`` into ``(17, 21)``: start hour 0-23, end hour 1-24, start != end (may wrap)."""
    match = _HOURS_RE.match(text)
    if not match:
        raise ValueError(f"expected 'START-END' in local hours, e.g. '17-21', got {text!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if not (0 <= start <= 23 and 0 <= end <= 24) or start == end % 24:
        raise ValueError(f"hours must be START 0-23 and END 0-24 with START != END, got {text!r}")
    return start, end


@dataclass(frozen=True, slots=True)
class CapWindow:
    """A recurring period with a lower facility cap: months (1-12), local hours [start, end), cap in W."""

    months: frozenset[int]
    hours: tuple[int, int]
    cap_w: float
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.months or not all(1 <= m <= 12 for m in self.months):
            raise ValueError(f"months must be a non-empty set of 1..12, got {sorted(self.months)!r}")
        start, end = self.hours
        if not (0 <= start <= 23 and 0 <= end <= 24) or start == end % 24:
            raise ValueError(f"hours must be (start 0-23, end 0-24) with start != end, got {self.hours!r}")
        if not self.cap_w > 0:
            raise ValueError(f"cap_w must be > 0, got {self.cap_w!r}")

    def covers(self, month: int, hour: int) -> bool:
        """True if local ``hour`` (0-23) of ``month`` (1-12) lies in this window.

        Each hour is tested against the month it falls in: a window 22-6 for December only covers
        the early hours of 1 January if January is listed too.
        """
        start, end = self.hours
        in_hours = start <= hour < end if start < end else (hour >= start or hour < end % 24)
        return month in self.months and in_hours


@dataclass(frozen=True)
class CapSchedule:
    """Base cap plus windows, evaluated in the local time of ``clock`` (a site's), or of the fixed
    zone ``UTC + utc_offset_h`` when no clock is given."""

    base_cap_w: float
    windows: tuple[CapWindow, ...] = ()
    utc_offset_h: float = 5.0
    clock: SiteClock | None = None
    _table: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)
    _constant: bool = field(init=False, repr=False, compare=False)
    _zone: tzinfo = field(init=False, repr=False, compare=False)
    _hour: tuple[float, float, float] = field(init=False, repr=False, compare=False)  # last local hour: from, to, cap

    def __post_init__(self) -> None:
        if self.clock is None:
            object.__setattr__(self, "clock", SiteClock.fixed(self.utc_offset_h))
        object.__setattr__(self, "_zone", self.site_clock.zone)
        object.__setattr__(self, "_hour", (math.inf, -math.inf, 0.0))
        if not self.base_cap_w > 0:
            raise ValueError(f"base_cap_w must be > 0, got {self.base_cap_w!r}")
        table = tuple(
            tuple(
                min([self.base_cap_w] + [w.cap_w for w in self.windows if w.covers(month, hour)]) for hour in range(24)
            )
            for month in range(1, 13)
        )
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_constant", all(v == self.base_cap_w for row in table for v in row))

    @property
    def site_clock(self) -> SiteClock:
        assert self.clock is not None  # set in __post_init__
        return self.clock

    def cap_w_at(self, t_utc_s: float) -> float:
        """Facility power cap (W) in force at POSIX time ``t_utc_s``.

        The cap is constant within a local hour, so the last hour looked up answers again without a
        zone lookup (a replay asks many times an hour)."""
        start, end, cap = self._hour
        if start <= t_utc_s < end:
            return cap
        local = datetime.fromtimestamp(t_utc_s, self._zone)
        cap = self._table[local.month - 1][local.hour]
        # The hour's bounds, 1 us inside (fromtimestamp rounds to the microsecond), so a time the memo
        # answers is one a lookup would place in the same hour.
        start = t_utc_s - (local.minute * 60 + local.second + local.microsecond / 1e6)
        object.__setattr__(self, "_hour", (start + 1e-6, start + 3600.0 - 1e-6, cap))  # one tuple: atomic
        return cap

    def next_cap_change_s(self, t_utc_s: float) -> float:
        """First time strictly after ``t_utc_s`` at which the cap differs from ``cap_w_at(t_utc_s)``;
        ``math.inf`` if it never changes.

        Walks local days: the rest of a day in one step when its offset holds to its end, hour by
        hour on a day the offset changes (a daylight-saving day)."""
        if self._constant:
            return math.inf
        clock = self.site_clock
        current = self.cap_w_at(t_utc_s)
        boundary = clock.next_hour_s(t_utc_s)  # POSIX time of the next local hour boundary
        horizon = t_utc_s + (_MAX_SEARCH_DAYS + 1) * 86400.0
        while boundary <= horizon:
            local = clock.local(boundary)
            row = self._table[local.month - 1]
            day_end = boundary + (24 - local.hour) * 3600.0
            if clock.offset_s(day_end - 1.0) == clock.offset_s(boundary):
                for hour in range(local.hour, 24):  # rest of this local day: same month, same offset
                    if row[hour] != current:
                        return boundary + (hour - local.hour) * 3600.0
                boundary = day_end
            else:
                if row[local.hour] != current:
                    return boundary
                boundary = clock.next_hour_s(boundary)
        return math.inf

"""A site clock: POSIX seconds onto the site's local timeline, through its IANA time zone.

Every "local" rule of a site (the hours of a cap window, the tariff's night hours, the daily
temperature and carbon cycles, the date on which approvals start and expire, the hour a live
hub's timeline starts at) reads local time through one ``SiteClock``. The clock wraps a
``tzinfo``: an IANA zone from the system's time zone database (``zoneinfo``), which follows the
zone's history and its daylight-saving rules, or a fixed offset (``SiteClock.fixed(5)``, what a
site file with only ``utc_offset_h`` gets).

Local *wall* time is what a clock on the wall shows, as seconds since 1970-01-01 00:00 of that
wall clock: ``wall = t + offset(t)``. Across a daylight-saving change the wall clock skips an hour
(spring) or shows one hour twice (autumn); every local rule keyed by (month, hour) then simply
follows the wall clock. Offsets are assumed to change only on a whole wall-clock hour of the old
offset, as in every zone with daylight saving today (Berlin: 02:00 -> 03:00, 03:00 -> 02:00).

Kazakhstan has one zone, UTC+5, since 1 March 2024 (tz database 2024a; before, Astana and Almaty
were UTC+6), so ``Asia/Almaty`` is the zone of both bundled sites:

>>> from datetime import datetime, UTC
>>> astana, berlin = SiteClock.named("Asia/Almaty"), SiteClock.named("Europe/Berlin")
>>> t = datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp()          # Berlin springs forward at 01:00 UTC
>>> astana.local(t).isoformat(), berlin.local(t).isoformat(), berlin.local(t + 3600).isoformat()
('2026-03-29T05:30:00+05:00', '2026-03-29T01:30:00+01:00', '2026-03-29T03:30:00+02:00')
>>> berlin.hour_start(t + 3600).isoformat(), str(berlin.local_date(t)), SiteClock.fixed(5.5).name
('2026-03-29T03:00:00+02:00', '2026-03-29', 'UTC+05:30')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

_DAY_S = 86400
_RULES_S = 4_102_444_800.0  # 2100-01-01 UTC: past every listed transition, where a zone's current rules apply


def offset_name(offset_h: float) -> str:
    """``5.0`` -> ``'UTC+05:00'``, ``-3.5`` -> ``'UTC-03:30'``."""
    minutes = round(offset_h * 60)
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def utc_hours(start: datetime, hours: int) -> np.ndarray:
    """``hours`` UTC times (``datetime64[s]``) an hour apart from ``start`` (timezone-aware)."""
    offset = start.utcoffset()
    if offset is None:
        raise ValueError(f"start must be timezone-aware (e.g. tzinfo=UTC), got {start!r}")
    if hours < 0:
        raise ValueError(f"hours must be >= 0, got {hours!r}")
    t0 = np.datetime64((start - offset).replace(tzinfo=None), "s")
    return t0 + np.arange(hours) * np.timedelta64(3600, "s")


@dataclass(frozen=True)
class SiteClock:
    """Local time of a site (module docstring). ``name`` is the IANA key or ``UTC+HH:MM``."""

    zone: tzinfo
    name: str
    fixed_offset_s: float | None = None  # set for a fixed-offset clock: no lookups needed

    @staticmethod
    def named(key: str) -> SiteClock:
        """The clock of IANA zone ``key`` (``Asia/Almaty``); ``ValueError`` if the system does not know it."""
        try:
            return SiteClock(ZoneInfo(key), key)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {key!r} (e.g. 'Asia/Almaty', 'Europe/Berlin')") from None

    @staticmethod
    def fixed(offset_h: float) -> SiteClock:
        """A clock at ``UTC + offset_h`` all year round."""
        offset_s = round(offset_h * 3600.0)
        return SiteClock(timezone(timedelta(seconds=offset_s)), offset_name(offset_h), float(offset_s))

    def offset_s(self, t_s: float) -> float:
        """The zone's offset from UTC (seconds) at POSIX time ``t_s``."""
        if self.fixed_offset_s is not None:
            return self.fixed_offset_s
        off = datetime.fromtimestamp(t_s, self.zone).utcoffset()
        return off.total_seconds() if off is not None else 0.0

    def local(self, t_s: float) -> datetime:
        """POSIX time ``t_s`` as an aware local datetime."""
        return datetime.fromtimestamp(t_s, self.zone)

    def wall_s(self, t_s: float) -> float:
        """Local wall-clock seconds since 1970-01-01 00:00 local."""
        return t_s + self.offset_s(t_s)

    def local_date(self, t_s: float) -> date:
        """The local date at POSIX time ``t_s``."""
        return self.local(t_s).date()

    def hour_start(self, t_s: float) -> datetime:
        """The start of the local hour that holds ``t_s`` (aware; across a change, the right side of it)."""
        hour_wall = math.floor(self.wall_s(t_s) / 3600.0) * 3600.0
        return self.local(hour_wall - self.offset_s(t_s))

    def next_hour_s(self, t_s: float) -> float:
        """POSIX time of the first local hour boundary strictly after ``t_s``."""
        off = self.offset_s(t_s)
        return (math.floor((t_s + off) / 3600.0) + 1) * 3600.0 - off

    def standard_offset_h(self, t_s: float) -> float:
        """The offset (hours) at ``t_s`` without daylight saving, as a fixed ``utc_offset_h`` would give it."""
        local = self.local(t_s)
        dst = local.dst() or timedelta(0)
        off = local.utcoffset() or timedelta(0)
        return (off - dst).total_seconds() / 3600.0

    @property
    def standard_offset_now_h(self) -> float:
        """The standard offset (hours) under the zone's current rules (``Asia/Almaty``: 5, ``Europe/Berlin``: 1)."""
        return self.standard_offset_h(_RULES_S)

    def wall_times(self, utc_t: np.ndarray) -> np.ndarray:
        """Local wall times (``datetime64[s]``) of UTC times ``utc_t`` (``datetime64[s]``).

        One zone lookup per UTC day, plus one per hour on a day whose offset changes.
        """
        if self.fixed_offset_s is not None:
            return utc_t + np.timedelta64(int(self.fixed_offset_s), "s")
        secs = utc_t.astype("datetime64[s]").astype(np.int64)
        offsets = np.empty(len(secs), dtype=np.int64)
        days = secs // _DAY_S
        for day in np.unique(days):
            start_s = float(day) * _DAY_S
            first, last = self.offset_s(start_s), self.offset_s(start_s + _DAY_S - 1)
            mask = days == day
            if first == last:
                offsets[mask] = int(first)
            else:  # the offset changes during this UTC day: look each time up
                offsets[mask] = [int(self.offset_s(float(s))) for s in secs[mask]]
        return (secs + offsets).astype("datetime64[s]")

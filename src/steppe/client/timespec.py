"""Times and lifetimes as Slurm users type them: ``sacct -S``'s forms and ``30d``-style lifetimes.

``parse_when(text, now)`` turns a point in time into epoch seconds, in the caller's local time zone:

* ``now``, and ``now`` plus or minus a count with a unit (``now-1hour``, ``now-30minutes``,
  ``now-2days``, ``now+90``): sacct's ``now[{+|-}count[seconds|minutes|hours|days|weeks]]``, the
  unit in full, singular or plural, or abbreviated (``s``, ``sec``, ``m``, ``min``, ``h``, ``hr``,
  ``d``, ``w``); seconds without a unit;
* ``today`` and ``midnight`` (this day's 00:00), ``yesterday``, ``tomorrow``, ``noon`` (12:00);
* ISO dates and times: ``2026-11-30``, ``2026-11-30T15:00``, ``2026-11-30 15:00:30``.

With ``now`` at 2026-11-30 15:36:50 local time, ``now-1hour`` is 14:36:50 and ``yesterday`` is
2026-11-29 00:00. Anything else is a ``ValueError`` that lists the accepted forms with an example.

``parse_lifetime(text)`` turns a lifetime into seconds: a count with a unit (``90m``, ``12h``,
``30d``, ``2w``, also ``45s``) or Slurm's time-limit forms (``30-00:00:00``, ``12:00:00``,
``90``: minutes).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from steppe.core.units import parse_time_limit

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_RELATIVE = re.compile(r"^now\s*(?:([+-])\s*(\d+)\s*([a-z]*))?$")
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]+)$")
WHEN_FORMS = "now, now-1hour, now-30minutes, now-2days, today, yesterday, or an ISO date/time"
"""The accepted forms of ``parse_when``, for help texts and error messages."""


def parse_when(text: str, now: datetime | None = None) -> float:
    """A point in time (see the module docstring) as epoch seconds; ``now`` defaults to the clock.

    >>> t = datetime(2026, 11, 30, 15, 36, 50)
    >>> datetime.fromtimestamp(parse_when("now-1hour", t)).isoformat()
    '2026-11-30T14:36:50'
    >>> datetime.fromtimestamp(parse_when("yesterday", t)).isoformat()
    '2026-11-29T00:00:00'
    >>> datetime.fromtimestamp(parse_when("2026-11-30T15:00", t)).isoformat()
    '2026-11-30T15:00:00'
    """
    clock = now if now is not None else datetime.now()
    word = text.strip().lower()
    midnight = clock.replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"today": midnight, "midnight": midnight, "yesterday": midnight - timedelta(days=1),
             "tomorrow": midnight + timedelta(days=1), "noon": midnight.replace(hour=12)}  # fmt: skip
    if word in named:
        return named[word].timestamp()
    rel = _RELATIVE.match(word)
    if rel is not None:
        sign, count, unit = rel.groups()
        if sign is None:
            return clock.timestamp()
        if unit not in _UNITS and unit != "":
            raise ValueError(f"unknown unit {unit!r} in {text!r}; use seconds, minutes, hours, days or weeks "
                             "(e.g. now-1hour)")  # fmt: skip
        delta = int(count) * _UNITS.get(unit, 1)
        return clock.timestamp() + (delta if sign == "+" else -delta)
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is not a time; use {WHEN_FORMS} (e.g. now-1hour or 2026-11-30T15:00)") from None


def parse_lifetime(text: str) -> float:
    """A lifetime in seconds: ``30d``, ``12h``, ``90m``, ``2w``, ``45s`` or a Slurm time limit.

    >>> parse_lifetime("30d"), parse_lifetime("12h"), parse_lifetime("90m"), parse_lifetime("1-00:00:00")
    (2592000.0, 43200.0, 5400.0, 86400.0)
    """
    word = text.strip().lower()
    found = _COUNT.match(word)
    if found is not None:
        count, unit = found.groups()
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in {text!r}; use s, m, h, d or w (e.g. 30d)")
        seconds = float(count) * _UNITS[unit]
    else:
        try:
            seconds = parse_time_limit(word)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a lifetime; use a count with a unit (90m, 12h, 30d, 2w) or D-HH:MM:SS (e.g. 30d)"
            ) from None
    if seconds <= 0:
        raise ValueError(f"a lifetime must be more than 0, got {text!r} (e.g. 30d)")
    return seconds

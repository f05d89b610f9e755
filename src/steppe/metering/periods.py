"""Accounting periods: ``2026`` (a year), ``2026-H1`` (a half), ``2026-Q1`` (a quarter), ``2026-03``
(a month), all in UTC. Usage is recorded per calendar month, so every period is a whole number
of months and its usage is the sum of its months.

>>> period_bounds("2026-Q1") == (month_start(2026, 1), month_start(2026, 4))
True
>>> months_between(*period_bounds("2026-Q1"))
['2026-01', '2026-02', '2026-03']
>>> month_key(month_start(2026, 2) + 5.0)
'2026-02'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np

_YEAR = re.compile(r"^(\d{4})$")
_HALF = re.compile(r"^(\d{4})-H([12])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_start(year: int, month: int) -> float:
    """Epoch seconds of the first instant of a month (months past 12 roll into the next year)."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def period_bounds(period: str) -> tuple[float, float]:
    """``(start_s, end_s)`` of a period; raises ValueError naming the accepted forms."""
    text = period.strip()
    if m := _YEAR.match(text):
        y = int(m.group(1))
        return month_start(y, 1), month_start(y + 1, 1)
    if m := _HALF.match(text):
        y, h = int(m.group(1)), int(m.group(2))
        return month_start(y, 6 * h - 5), month_start(y, 6 * h + 1)
    if m := _QUARTER.match(text):
        y, q = int(m.group(1)), int(m.group(2))
        return month_start(y, 3 * q - 2), month_start(y, 3 * q + 1)
    if (m := _MONTH.match(text)) and 1 <= int(m.group(2)) <= 12:
        y, mo = int(m.group(1)), int(m.group(2))
        return month_start(y, mo), month_start(y, mo + 1)
    raise ValueError(f"bad period {period!r}: expected YYYY, YYYY-H1, YYYY-Q1 or YYYY-MM (UTC)")


def month_key(t_s: float) -> str:
    """``YYYY-MM`` of the UTC month holding ``t_s``."""
    d = datetime.fromtimestamp(t_s, tz=UTC)
    return f"{d.year:04d}-{d.month:02d}"


def next_month_start(t_s: float) -> float:
    d = datetime.fromtimestamp(t_s, tz=UTC)
    return month_start(d.year, d.month + 1)


def months_between(start_s: float, end_s: float) -> list[str]:
    """Month keys covering ``[start_s, end_s)``."""
    keys = []
    t = start_s
    while t < end_s:
        keys.append(month_key(t))
        t = next_month_start(t)
    return keys


def split_by_month(a_s: float, b_s: float) -> list[tuple[str, float, float]]:
    """``[a_s, b_s)`` cut at month boundaries: ``[(month, start, end), ...]``."""
    parts = []
    t = a_s
    while t < b_s:
        end = min(next_month_start(t), b_s)
        parts.append((month_key(t), t, end))
        t = end
    return parts


def month_starts(epoch_s: np.ndarray) -> np.ndarray:
    """POSIX seconds of the first instant of the UTC month holding each of ``epoch_s`` (vectorised).

    >>> month_starts(np.array([month_start(2026, 2) + 5.0])) == month_start(2026, 2)
    array([ True])
    """
    months = np.floor(epoch_s).astype("int64").astype("datetime64[s]").astype("datetime64[M]")
    out: np.ndarray = months.astype("datetime64[s]").astype("int64").astype(float)
    return out


def next_month_starts(epoch_s: np.ndarray) -> np.ndarray:
    """POSIX seconds of the first instant of the UTC month after the one holding each of ``epoch_s``."""
    months = np.floor(epoch_s).astype("int64").astype("datetime64[s]").astype("datetime64[M]") + 1
    out: np.ndarray = months.astype("datetime64[s]").astype("int64").astype(float)
    return out

"""Hourly signals a scheduler may minimise: carbon (g CO2e per IT kWh) or price (KZT per IT kWh).

Both include the facility's PUE at that hour, since an IT kWh costs PUE kWh at the meter.
``mean_over(t0, t1)`` is the exact time-average of the hourly step series over ``[t0, t1]``,
from its cumulative integral.

>>> from datetime import datetime, UTC
>>> from steppe.energy.site import load_site
>>> from steppe.energy.timeline import SiteTimeline
>>> sig = TimelineSignal(SiteTimeline(load_site("astana"), datetime(2026, 1, 1, tzinfo=UTC)), "carbon")
>>> 800 < sig.mean_over(0, 7200) < 1000
True
"""

from __future__ import annotations

import numpy as np

from steppe.energy.timeline import SiteTimeline

SIGNALS = ("carbon", "cost")


class TimelineSignal:
    """Carbon or price per IT kWh over a site timeline (implements ``SignalForecast``)."""

    def __init__(self, timeline: SiteTimeline, kind: str = "carbon", horizon_h: int = 24 * 400) -> None:
        if kind not in SIGNALS:
            raise ValueError(f"unknown signal {kind!r}; valid: {', '.join(SIGNALS)}")
        arr = timeline.arrays(horizon_h)
        per_kwh = arr.carbon_g_per_kwh if kind == "carbon" else arr.tariff_kzt_per_kwh
        self.kind = kind
        self.hourly = arr.pue * per_kwh
        self._edges = np.arange(horizon_h + 1) * 3600.0
        self._cum = np.concatenate(([0.0], np.cumsum(self.hourly * 3600.0)))

    def mean_over(self, t0_s: float, t1_s: float) -> float:
        if t1_s <= t0_s:
            return float(np.interp(t0_s, self._edges[:-1], self.hourly))
        c = np.interp([t0_s, t1_s], self._edges, self._cum)
        return float((c[1] - c[0]) / (t1_s - t0_s))

    def spread(self, t0_s: float, t1_s: float) -> tuple[float, float]:
        """(min, max) of the hourly signal over a span, to tell how much shifting could save."""
        h0, h1 = int(t0_s // 3600), max(int(np.ceil(t1_s / 3600)), int(t0_s // 3600) + 1)
        part = self.hourly[h0:h1]
        return float(part.min()), float(part.max())

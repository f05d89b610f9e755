"""A site bound to a simulation clock: hourly temperature, PUE, carbon, tariff and the power cap.

Simulation time ``t_s`` is seconds since ``start`` (a timezone-aware datetime). Hour ``i`` of the
timeline covers ``[start + i h, start + (i + 1) h)`` and temperature, PUE, carbon intensity and
tariff are constant within it. Local rules (the daily cycles, night hours, cap windows) read the
site's clock (``site.clock``: its IANA time zone, daylight saving included). Hourly arrays are
computed on first use and extended (doubling the horizon, one year at least) when a later time
is asked for; the weather noise of a day depends only on ``seed`` and ``start``, so extending
never changes values already handed out. The facility
power cap is exact to the second; ``next_cap_change_s`` gives the next time it changes, for an
event engine to schedule a cap event there.

>>> from datetime import datetime, UTC
>>> from steppe.energy.site import load_site
>>> tl = SiteTimeline(load_site("astana"), start=datetime(2026, 1, 1, tzinfo=UTC), seed=0)
>>> tl.pue_at(0.0), tl.carbon_g_per_kwh_at(0.0) > 800, tl.tariff_kzt_per_kwh_at(0.0)
(1.08, True, 29.14)
>>> tl.cap_w_at(12 * 3600.0), tl.next_cap_change_s(0.0) / 3600     # 17:00 local = 12:00 UTC
(70000000.0, 12.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from steppe.energy.climate import hourly_temperature
from steppe.energy.facility import pue_array
from steppe.energy.grid import CarbonTable, carbon_series_g_per_kwh, tariff_series_kzt_per_kwh

if TYPE_CHECKING:
    from steppe.energy.site import Site

MIN_HORIZON_HOURS = 8760


@dataclass(frozen=True, slots=True)
class TimelineArrays:
    """Hourly series from the timeline's start, one value per hour."""

    temperature_c: np.ndarray
    pue: np.ndarray
    carbon_g_per_kwh: np.ndarray
    tariff_kzt_per_kwh: np.ndarray
    cap_w: np.ndarray


class SiteTimeline:
    """``site`` seen from a simulation whose time 0 is ``start``; ``seed`` drives the weather noise."""

    def __init__(self, site: Site, start: datetime, seed: int = 0) -> None:
        if start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware (e.g. tzinfo=UTC), got {start!r}")
        self.site = site
        self.start = start
        self.seed = seed
        self.start_utc_s = start.timestamp()
        # Loading the CSV named by the site is the one file read; lookups are then per hour.
        self._carbon_table = (
            CarbonTable(site.carbon.csv_path, site.carbon.csv_repeat_year) if site.carbon.csv_path else None
        )
        self._hours = 0
        self._temperature_c = np.empty(0)
        self._pue = np.empty(0)
        self._carbon = np.empty(0)
        self._tariff = np.empty(0)

    def utc_s(self, t_s: float) -> float:
        """POSIX time of simulation time ``t_s``."""
        return self.start_utc_s + t_s

    def _hour(self, t_s: float) -> int:
        if not t_s >= 0.0 or math.isinf(t_s):
            raise ValueError(f"simulation time must be finite and >= 0, got {t_s!r}")
        index = int(t_s // 3600.0)
        if index >= self._hours:
            self._extend(max(index + 1, 2 * self._hours, MIN_HORIZON_HOURS))
        return index

    def _extend(self, hours: int) -> None:
        site = self.site
        self._temperature_c = hourly_temperature(site.climate, self.start, hours, self.seed)
        self._pue = pue_array(self._temperature_c, site.cooling)
        if self._carbon_table is None:
            self._carbon = carbon_series_g_per_kwh(site.carbon, self.start, hours, clock=site.clock)
        self._tariff = tariff_series_kzt_per_kwh(site.tariff, self.start, hours, clock=site.clock)
        self._hours = hours

    def temperature_c_at(self, t_s: float) -> float:
        """Outdoor temperature (deg C) during the hour containing ``t_s``."""
        i = self._hour(t_s)
        return float(self._temperature_c[i])

    def pue_at(self, t_s: float) -> float:
        """Facility PUE during the hour containing ``t_s``."""
        i = self._hour(t_s)
        return float(self._pue[i])

    def carbon_g_per_kwh_at(self, t_s: float) -> float:
        """Grid carbon intensity (gCO2e/kWh) during the hour containing ``t_s``."""
        i = self._hour(t_s)
        if self._carbon_table is not None:
            return self._carbon_table.at_hour(int((self.start_utc_s + i * 3600.0) // 3600.0))
        return float(self._carbon[i])

    def tariff_kzt_per_kwh_at(self, t_s: float) -> float:
        """Electricity price (KZT/kWh, excl. VAT) during the hour containing ``t_s``."""
        i = self._hour(t_s)
        return float(self._tariff[i])

    def cap_w_at(self, t_s: float) -> float:
        """Facility power cap (W) at ``t_s``."""
        return self.site.cap_w_at(self.utc_s(t_s))

    def next_cap_change_s(self, t_s: float) -> float:
        """First simulation time after ``t_s`` at which the cap changes (``math.inf`` if never)."""
        return self.site.next_cap_change_s(self.utc_s(t_s)) - self.start_utc_s

    def next_hour_s(self, t_s: float) -> float:
        """Start of the next timeline hour, where PUE, carbon and tariff may step."""
        return (math.floor(t_s / 3600.0) + 1) * 3600.0

    def arrays(self, hours: int) -> TimelineArrays:
        """Hourly series for the first ``hours`` hours (cap sampled at the start of each hour)."""
        if hours < 0:
            raise ValueError(f"hours must be >= 0, got {hours!r}")
        if hours:
            self._hour((hours - 1) * 3600.0)
        if self._carbon_table is not None:
            utc0 = np.datetime64(int(math.floor(self.start_utc_s)), "s")
            carbon = self._carbon_table.series(utc0 + np.arange(hours) * np.timedelta64(3600, "s"))
        else:
            carbon = self._carbon[:hours].copy()
        cap = np.array([self.cap_w_at(i * 3600.0) for i in range(hours)])
        return TimelineArrays(
            temperature_c=self._temperature_c[:hours].copy(),
            pue=self._pue[:hours].copy(),
            carbon_g_per_kwh=carbon,
            tariff_kzt_per_kwh=self._tariff[:hours].copy(),
            cap_w=cap,
        )

    def __repr__(self) -> str:
        return f"SiteTimeline({self.site.name!r}, start={self.start.isoformat()}, seed={self.seed})"

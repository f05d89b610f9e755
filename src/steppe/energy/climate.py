"""Hourly outdoor temperature for a site: seasonal mean + daily cycle + day-to-day weather noise.

``T(t) = S(t) + D(h_local) + A(t)``:

* ``S`` passes through the 12 monthly means, placed at mid-month, by trigonometric (Fourier)
  interpolation: smooth, periodic over the year, and exact at the 12 points. For Astana and Almaty
  the means are the cosine fits in hub-facts 0.2 (``astana.monthly_mean``, ``almaty.monthly_mean``).
* ``D`` is a daily cycle of half-range ``daily_amplitude_c`` (hub-facts 0.2: +-6.5 Astana, +-6 Almaty),
  lowest at 05:00 and highest at 15:00 local, rising on a half cosine and falling on another.
* ``A`` is a daily anomaly, AR(1) from day to day with stationary standard deviation
  ``noise_sigma_c`` (hub-facts 0.2: sigma = 4 deg C) and lag-1 correlation ``noise_autocorr``, anchored at
  local noon and interpolated linearly between days. It is seeded, and the values for a given day
  do not depend on how many hours are asked for, so a longer window extends a shorter one.

With these inputs the share of hours below 18 deg C over a year is ~0.83 for Astana and ~0.72 for Almaty,
the figures hub-facts 0.2 derives with the same method.

>>> from datetime import datetime, UTC
>>> flat = SiteClimate(monthly_mean_c=(10.0,) * 12, daily_amplitude_c=6.0, noise_sigma_c=0.0)
>>> t = hourly_temperature(flat, datetime(2026, 1, 1, tzinfo=UTC), 24, seed=0)   # 05:00 local = 00:00 UTC
>>> [round(float(v), 2) for v in (t[0], t[10], t[5])]
[4.0, 16.0, 10.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from steppe.energy.clock import SiteClock, utc_hours

T_MIN_HOUR_LOCAL = 5.0  # coldest hour of a typical continental day (assumption, daily-cycle shape)
T_MAX_HOUR_LOCAL = 15.0  # warmest hour (assumption, daily-cycle shape)


@dataclass(frozen=True, slots=True)
class SiteClimate:
    """Climate parameters of a site; ``clock`` (or, without one, the fixed zone ``UTC + utc_offset_h``)
    places the daily cycle and the months in local wall-clock time."""

    monthly_mean_c: tuple[float, ...]
    daily_amplitude_c: float
    noise_sigma_c: float
    noise_autocorr: float = 0.7  # lag-1 day-to-day correlation (assumption; not in hub-facts)
    utc_offset_h: float = 5.0  # Kazakhstan, single zone UTC+5 since 1 Mar 2024
    clock: SiteClock | None = None

    @property
    def site_clock(self) -> SiteClock:
        return self.clock if self.clock is not None else SiteClock.fixed(self.utc_offset_h)

    def __post_init__(self) -> None:
        if len(self.monthly_mean_c) != 12:
            raise ValueError(f"monthly_mean_c needs 12 values, got {len(self.monthly_mean_c)}")
        if self.daily_amplitude_c < 0 or self.noise_sigma_c < 0:
            raise ValueError("daily_amplitude_c and noise_sigma_c must be >= 0")
        if not 0.0 <= self.noise_autocorr < 1.0:
            raise ValueError(f"noise_autocorr must be in [0, 1), got {self.noise_autocorr!r}")


def seasonal_mean_c(monthly_mean_c: tuple[float, ...] | np.ndarray, month_pos: np.ndarray) -> np.ndarray:
    """Smooth seasonal temperature at ``month_pos`` (0.0 = mid-January, 1.0 = mid-February, period 12)."""
    vals = np.asarray(monthly_mean_c, dtype=float)
    coef = np.fft.rfft(vals) / 12.0
    out = np.full(np.shape(month_pos), coef[0].real)
    phase = 2.0 * np.pi * np.asarray(month_pos, dtype=float) / 12.0
    for k in range(1, 7):
        weight = 1.0 if k == 6 else 2.0  # the Nyquist term appears once
        out += weight * (coef[k].real * np.cos(k * phase) - coef[k].imag * np.sin(k * phase))
    return out


def daily_cycle_c(hour_local: np.ndarray, amplitude_c: float) -> np.ndarray:
    """Daily temperature deviation: ``-A`` at 05:00, ``+A`` at 15:00, smooth half-cosines in between."""
    h = np.mod(np.asarray(hour_local, dtype=float) - T_MIN_HOUR_LOCAL, 24.0)  # hours since the minimum
    rise_h = T_MAX_HOUR_LOCAL - T_MIN_HOUR_LOCAL
    fall_h = 24.0 - rise_h
    rising = -amplitude_c * np.cos(np.pi * h / rise_h)
    falling = amplitude_c * np.cos(np.pi * (h - rise_h) / fall_h)
    return np.where(h <= rise_h, rising, falling)


def daily_anomaly_c(days: int, sigma_c: float, autocorr: float, seed: int) -> np.ndarray:
    """AR(1) anomaly for ``days`` consecutive days, stationary with standard deviation ``sigma_c``."""
    eps = np.random.default_rng(seed).standard_normal(days)
    out = np.empty(days)
    innovation = sigma_c * math.sqrt(1.0 - autocorr**2)
    prev = 0.0
    for d in range(days):
        prev = sigma_c * eps[0] if d == 0 else autocorr * prev + innovation * eps[d]
        out[d] = prev
    return out


def month_position(local_times: np.ndarray) -> np.ndarray:
    """Position in the year in months, 0.0 at mid-January, for ``datetime64`` local times."""
    month_start = local_times.astype("datetime64[M]")
    next_start = month_start + np.timedelta64(1, "M")
    frac = (local_times - month_start.astype(local_times.dtype)) / (
        next_start.astype(local_times.dtype) - month_start.astype(local_times.dtype)
    )
    month_index = month_start.astype(int) % 12  # datetime64[M] counts months since 1970-01
    months: np.ndarray = month_index + frac - 0.5
    return months


def hourly_temperature(site_climate: SiteClimate, start: datetime, hours: int, seed: int) -> np.ndarray:
    """Outdoor temperature (deg C) for ``hours`` hours from ``start`` (timezone-aware), one value per hour."""
    clock = site_climate.site_clock
    utc_t = utc_hours(start, hours)
    local_t = clock.wall_times(utc_t)
    local0 = clock.local(start.timestamp())
    seasonal = seasonal_mean_c(site_climate.monthly_mean_c, month_position(local_t))
    hour_of_day = (local_t - local_t.astype("datetime64[D]")).astype(float) / 3600.0
    diurnal = daily_cycle_c(hour_of_day, site_climate.daily_amplitude_c)
    # Anomaly anchors at local noon of each day, from the day before the start to the day after the end.
    first_day = np.datetime64(local0.date(), "D") - np.timedelta64(1, "D")
    # (wall times: across a daylight-saving change an hour repeats or is skipped, as on the wall)
    n_days = hours // 24 + 4
    anchors = daily_anomaly_c(n_days, site_climate.noise_sigma_c, site_climate.noise_autocorr, seed)
    anchor_h = np.arange(n_days) * 24.0 + 12.0  # hours after first_day 00:00 local
    t_h = (local_t - first_day.astype("datetime64[s]")).astype(float) / 3600.0
    anomaly = np.interp(t_h, anchor_h, anchors)
    return np.asarray(seasonal + diurnal + anomaly)

"""Grid carbon intensity and electricity tariff as hourly series.

**Carbon.** Kazakhstan's grid is 84-87 % fossil with ~1.6 % solar and no public hourly intensity
series, so the default is near-flat (hub-facts 0.3 and 3): 800 gCO2e/kWh lifecycle (the recommended
default; Ember 2024: 802) with a seasonal swing, winter higher (CHP-heavy), peaking mid-January::

    g(t) = base * (1 + s * cos(2 pi (doy - 15) / 365.25)) * (1 - d * cos(2 pi (h_local - 13) / 24))

``s`` = 0.07 (hub-facts 3: +-5-10 %); the optional diurnal term ``d`` (default 0) dips at 13:00
local, the solar peak. "Local" is the site clock's wall time (``steppe.energy.clock``; a fixed
``UTC + utc_offset_h`` when no clock is given), so with daylight saving the dip and the tariff's
night hours follow the wall clock. Alternatively the series is read from a CSV with columns
``hour_utc,g_per_kwh`` (``hour_utc`` an ISO-8601 time, UTC unless it carries an offset).

**Tariff.** 29.14 KZT/kWh excluding VAT (legal entities, Kostanay supplier, from 1 Jan 2025),
510 KZT/USD, so ~0.057 USD/kWh. Day/night zones are permitted by rule but no supplier multipliers
were found, so both default to 1.0.

>>> from datetime import datetime, UTC
>>> start = datetime(2026, 1, 15, tzinfo=UTC)
>>> g = carbon_series_g_per_kwh(CarbonSpec(), start, 24)
>>> round(float(g[0]), 1)                            # mid-January: 800 * 1.07
856.0
>>> round(float(carbon_series_g_per_kwh(CarbonSpec(), datetime(2026, 7, 16, tzinfo=UTC), 1)[0]), 1)
744.0
>>> round(kzt_to_usd(29.14), 4)                      # USD per kWh
0.0571
>>> tou = TariffSpec(day_multiplier=1.2, night_multiplier=0.6)
>>> k = tariff_series_kzt_per_kwh(tou, start, 24, utc_offset_h=5)
>>> round(float(k[0]), 2), round(float(k[12]), 2)   # 05:00 local is night, 17:00 local is day
(17.48, 34.97)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from steppe.core.errors import ConfigError
from steppe.energy.clock import SiteClock, utc_hours

DEFAULT_CARBON_G_PER_KWH = 800.0  # hub-facts 3: recommended default 800 gCO2e/kWh lifecycle (Ember 2024: 802)
DEFAULT_SEASONAL_SWING = 0.07  # hub-facts 3: +-5-10 % seasonal swing, winter higher (assumption D)
CARBON_PEAK_DAY_OF_YEAR = 15  # mid-January: winter CHP-heavy peak (hub-facts 3; coldest month, 0.2)
CARBON_DIURNAL_MIN_HOUR_LOCAL = 13.0  # solar noon dip of the optional diurnal term (assumption)
DEFAULT_TARIFF_KZT_PER_KWH = 29.14  # hub-facts 0.3 kz.tariff_legal_entities, Kostanay 2025, excl. VAT
DEFAULT_KZT_PER_USD = 510.0  # hub-facts 0.3 kz.tariff_legal_entities_usd (29-33 KZT / 510); fx 495-530
_EPOCH = datetime(1970, 1, 1)
DEFAULT_NIGHT_HOURS = (23, 7)  # placeholder two-zone split; multipliers default 1.0 (hub-facts 0.3 tou)


@dataclass(frozen=True, slots=True)
class CarbonSpec:
    """Carbon-intensity model: a default with seasonal/diurnal swings, or a CSV (path) of hourly values."""

    g_per_kwh: float = DEFAULT_CARBON_G_PER_KWH
    seasonal_swing: float = DEFAULT_SEASONAL_SWING
    diurnal_swing: float = 0.0
    csv_path: Path | None = None
    csv_repeat_year: bool = False  # look a missing hour up at the same month/day/hour of any year in the file

    def __post_init__(self) -> None:
        if self.g_per_kwh < 0:
            raise ValueError(f"g_per_kwh must be >= 0, got {self.g_per_kwh!r}")
        for name in ("seasonal_swing", "diurnal_swing"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")


@dataclass(frozen=True, slots=True)
class TariffSpec:
    """Electricity price: base KZT/kWh, exchange rate, optional day/night (time-of-use) multipliers."""

    kzt_per_kwh: float = DEFAULT_TARIFF_KZT_PER_KWH
    kzt_per_usd: float = DEFAULT_KZT_PER_USD
    day_multiplier: float = 1.0
    night_multiplier: float = 1.0
    night_hours: tuple[int, int] = DEFAULT_NIGHT_HOURS  # [start, end) local hours, may wrap midnight

    def __post_init__(self) -> None:
        if self.kzt_per_kwh < 0 or self.kzt_per_usd <= 0:
            raise ValueError("kzt_per_kwh must be >= 0 and kzt_per_usd > 0")
        if self.day_multiplier < 0 or self.night_multiplier < 0:
            raise ValueError("day_multiplier and night_multiplier must be >= 0")
        a, b = self.night_hours
        if not (0 <= a <= 23 and 0 <= b <= 24 and a != b):
            raise ValueError(f"night_hours must be two different hours in 0..24, got {self.night_hours!r}")

    @property
    def usd_per_kwh(self) -> float:
        return self.kzt_per_kwh / self.kzt_per_usd


def kzt_to_usd(amount_kzt: float, kzt_per_usd: float = DEFAULT_KZT_PER_USD) -> float:
    """Convert tenge to US dollars at ``kzt_per_usd``."""
    return amount_kzt / kzt_per_usd


def _local_hour_of_day(utc_t: np.ndarray, clock: SiteClock) -> np.ndarray:
    local = clock.wall_times(utc_t)
    hours: np.ndarray = (local - local.astype("datetime64[D]")).astype(float) / 3600.0
    return hours


def carbon_series_g_per_kwh(
    spec: CarbonSpec, start: datetime, hours: int, utc_offset_h: float = 5.0, *, clock: SiteClock | None = None
) -> np.ndarray:
    """Grid carbon intensity (gCO2e/kWh) for each hour from ``start``; local time by ``clock``, else
    the fixed zone ``UTC + utc_offset_h``."""
    utc_t = utc_hours(start, hours)
    if spec.csv_path is not None:
        return CarbonTable(spec.csv_path, spec.csv_repeat_year).series(utc_t)
    doy = (utc_t - utc_t.astype("datetime64[Y]")).astype(float) / 86400.0 + 1.0
    seasonal = 1.0 + spec.seasonal_swing * np.cos(2.0 * np.pi * (doy - CARBON_PEAK_DAY_OF_YEAR) / 365.25)
    hour = _local_hour_of_day(utc_t, clock or SiteClock.fixed(utc_offset_h))
    diurnal = 1.0 - spec.diurnal_swing * np.cos(2.0 * np.pi * (hour - CARBON_DIURNAL_MIN_HOUR_LOCAL) / 24.0)
    return np.asarray(spec.g_per_kwh * seasonal * diurnal)


def tariff_series_kzt_per_kwh(
    spec: TariffSpec, start: datetime, hours: int, utc_offset_h: float = 5.0, *, clock: SiteClock | None = None
) -> np.ndarray:
    """Electricity price (KZT/kWh, excl. VAT) for each hour from ``start``; the night hours are local
    to ``clock``, else to the fixed zone ``UTC + utc_offset_h``."""
    local_hour = _local_hour_of_day(utc_hours(start, hours), clock or SiteClock.fixed(utc_offset_h))
    hour = np.floor(local_hour).astype(int)
    a, b = spec.night_hours
    night = (hour >= a) & (hour < b) if a < b else (hour >= a) | (hour < b)
    return np.where(night, spec.night_multiplier, spec.day_multiplier) * spec.kzt_per_kwh


class CarbonTable:
    """Hourly carbon intensities read from a ``hour_utc,g_per_kwh`` CSV, looked up by UTC hour.

    With ``repeat_year`` an hour missing from the file is taken from the same month, day and hour of
    a year the file does cover (29 February falls back to 28 February), so one year of data can
    drive a run in any year.
    """

    def __init__(self, path: str | Path, repeat_year: bool = False) -> None:
        self.path = Path(path)
        self.repeat_year = repeat_year
        self.values = load_carbon_csv(self.path)
        self._by_year_pos: dict[tuple[int, int, int], float] = {}
        for hour, value in self.values.items():
            d = _hour_to_datetime(hour)
            self._by_year_pos.setdefault((d.month, d.day, d.hour), value)

    def at_hour(self, hour_utc: int) -> float:
        """Intensity for the UTC hour ``hour_utc`` (hours since 1970-01-01T00Z)."""
        value = self.values.get(hour_utc)
        if value is None and self.repeat_year:
            d = _hour_to_datetime(hour_utc)
            value = self._by_year_pos.get((d.month, d.day, d.hour))
            if value is None and (d.month, d.day) == (2, 29):
                value = self._by_year_pos.get((2, 28, d.hour))
        if value is None:
            first, last = (_hour_to_datetime(h).isoformat() for h in (min(self.values), max(self.values)))
            missing = _hour_to_datetime(hour_utc).isoformat()
            problem = f"no value for {missing}Z (file covers {first}Z to {last}Z)"
            raise ConfigError(str(self.path), "hour_utc", problem)
        return value

    def series(self, utc_t: np.ndarray) -> np.ndarray:
        """Intensities for an array of ``datetime64`` UTC times (each looked up by its hour)."""
        hours = utc_t.astype("datetime64[h]").astype(np.int64)
        return np.array([self.at_hour(int(h)) for h in hours], dtype=float)


def load_carbon_csv(path: str | Path) -> dict[int, float]:
    """Read ``hour_utc,g_per_kwh`` rows into a map from UTC hour (hours since 1970) to gCO2e/kWh.

    Errors name ``file:line``.
    """
    p = Path(path)
    out: dict[int, float] = {}
    try:
        fh = p.open(newline="")
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read carbon CSV: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if header != ["hour_utc", "g_per_kwh"]:
            raise ConfigError(f"{p}:1", "header", f"expected 'hour_utc,g_per_kwh', got {','.join(header)!r}")
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise ConfigError(f"{p}:{line}", "row", f"expected 2 columns, got {len(row)}")
            hour = _parse_hour_utc(row[0], f"{p}:{line}")
            try:
                value = float(row[1])
            except ValueError:
                raise ConfigError(f"{p}:{line}", "g_per_kwh", f"not a number: {row[1]!r}") from None
            if not value >= 0:
                raise ConfigError(f"{p}:{line}", "g_per_kwh", f"must be >= 0, got {value!r}")
            if hour in out:
                raise ConfigError(f"{p}:{line}", "hour_utc", f"repeats hour {row[0].strip()!r}")
            out[hour] = value
    if not out:
        raise ConfigError(str(p), "", "no data rows")
    return out


def _parse_hour_utc(text: str, where: str) -> int:
    raw = text.strip()
    try:
        t = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
    except ValueError:
        raise ConfigError(where, "hour_utc", f"not an ISO-8601 time: {raw!r}") from None
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    if t.minute or t.second or t.microsecond:
        raise ConfigError(where, "hour_utc", f"must be on the hour, got {raw!r}")
    return int((t - _EPOCH) // timedelta(hours=1))


def _hour_to_datetime(hour_utc: int) -> datetime:
    return _EPOCH + timedelta(hours=hour_utc)

"""A hub site: name, time zone and jurisdiction, with its energy (climate, cooling, grid carbon,
tariff, facility power cap) and its network (routes, residency facts) attached; from TOML.

Bundled sites (``steppe/data/sites/*.toml``) load by name; any other path loads as a file. Every key
is validated and an error names the file and the key. Layout (all tables but ``power_cap`` optional,
defaults as in ``climate``, ``facility`` and ``grid``)::

    name = "astana"
    time_zone = "Asia/Almaty"                 # IANA zone: Kazakhstan's single zone, UTC+5 since 1 Mar 2024
    utc_offset_h = 5                          # optional; must agree with time_zone's standard offset
    jurisdiction = "KZ"                       # ISO 3166 country whose law governs the site

    [climate]
    monthly_mean_c = [-14.2, ..., -11.9]      # 12 values, January first (required)
    daily_amplitude_c = 6.5                   # half-range of the daily cycle
    noise_sigma_c = 4.0                       # day-to-day anomaly, standard deviation
    noise_autocorr = 0.7                      # lag-1 day-to-day correlation

    [cooling]
    kind = "air"                              # "air" or "liquid": preset, then any of the keys below
    economizer_limit_c = 18.0                 # band_c, f_overhead, t_set_c likewise

    [grid]
    carbon_g_per_kwh = 800.0                  # or carbon_csv = "kz_2026.csv" (hour_utc,g_per_kwh)
    seasonal_swing = 0.07                     # diurnal_swing = 0.0, carbon_csv_repeat_year = false

    [tariff]
    kzt_per_kwh = 29.14                       # kzt_per_usd, day_multiplier, night_multiplier,
                                              # night_hours = "23-7"
    [power_cap]
    base = "100MW"
    [[power_cap.windows]]
    months = [11, 12, 1, 2]
    hours = "17-21"                           # local, [17:00, 21:00)
    cap = "70MW"
    reason = "KEGOC winter evening peak"

The clock: ``time_zone`` gives the site clock (``steppe.energy.clock``), which every local rule
reads (cap windows, tariff night hours, daily cycles, the approval date, a live hub's first hour).
A file with only ``utc_offset_h`` (the older form) gets a fixed-offset clock named ``UTC+05:00``;
with both, ``utc_offset_h`` must equal the zone's standard offset under its current rules, or the
file is refused naming the key (so a system whose time zone database predates Kazakhstan's 2024
change is caught rather than an hour off); with neither, the clock is UTC+5.

The network: ``load_site(name, topology)`` attaches the topology the site is part of (its routes
and the residency facts of ``steppe.governance.residency``); the site must be in it, and its
``jurisdiction`` (and ``time_zone``, where the topology states one) must agree with the topology's.
A file without ``jurisdiction`` takes the topology's.

>>> site = load_site("astana")
>>> site.name, site.time_zone, site.jurisdiction, site.utc_offset_h, site.cooling.kind, site.base_cap_w
('astana', 'Asia/Almaty', 'KZ', 5.0, 'air', 100000000.0)
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from steppe.core.errors import ConfigError
from steppe.core.network import Route, Topology
from steppe.core.units import parse_power
from steppe.energy.climate import SiteClimate
from steppe.energy.clock import SiteClock
from steppe.energy.facility import COOLING_KINDS, COOLING_PRESETS, CoolingSpec
from steppe.energy.grid import CarbonSpec, TariffSpec
from steppe.energy.powercap import CapSchedule, CapWindow, parse_hours

SITES_DIR = Path(__file__).resolve().parent.parent / "data" / "sites"
DEFAULT_UTC_OFFSET_H = 5.0  # a file with neither time_zone nor utc_offset_h: Kazakhstan's UTC+5
_JURISDICTION_RE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Site:
    """One hub site: who it is (name, time zone, jurisdiction), its energy and its network.
    Times are POSIX seconds (UTC); ``clock`` maps them onto the site's local time."""

    name: str
    time_zone: str  # IANA key, or "UTC+05:00" for a fixed offset
    jurisdiction: str  # ISO 3166 alpha-2, "" when neither the file nor a topology says
    clock: SiteClock
    climate: SiteClimate
    cooling: CoolingSpec
    carbon: CarbonSpec
    tariff: TariffSpec
    power_cap: CapSchedule
    network: Topology | None = None  # the topology the site is part of, once attached
    source: str = ""

    @property
    def utc_offset_h(self) -> float:
        """The zone's standard offset from UTC (hours) under its current rules; local rules read
        ``clock``, not this."""
        return self.clock.standard_offset_now_h

    @property
    def routes(self) -> tuple[Route, ...]:
        """The network routes from this site (none before a topology is attached)."""
        return tuple(self.network.routes_from(self.name)) if self.network is not None else ()

    def describe(self) -> dict[str, str]:
        """Name, time zone and jurisdiction, as the hub shows them."""
        return {"name": self.name, "time_zone": self.time_zone, "jurisdiction": self.jurisdiction}

    @property
    def base_cap_w(self) -> float:
        return self.power_cap.base_cap_w

    def cap_w_at(self, t_utc_s: float) -> float:
        """Facility power cap (W) at POSIX time ``t_utc_s``."""
        return self.power_cap.cap_w_at(t_utc_s)

    def next_cap_change_s(self, t_utc_s: float) -> float:
        """Next POSIX time after ``t_utc_s`` at which the cap changes (``math.inf`` if never)."""
        return self.power_cap.next_cap_change_s(t_utc_s)


def bundled_sites() -> list[str]:
    """Names of the sites shipped with steppe."""
    return sorted(p.stem for p in SITES_DIR.glob("*.toml"))


def site_file(name_or_path: str | Path) -> Path | None:
    """The TOML file of a site path or bundled name, or None if there is none."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = SITES_DIR / f"{name_or_path}.toml"
    return bundled if bundled.is_file() else None


def load_site(name_or_path: str | Path, topology: Topology | None = None) -> Site:
    """A site from a TOML path, or a bundled site by name (``astana``, ``almaty``); with ``topology``,
    the network attached (module docstring)."""
    path = site_file(name_or_path)
    if path is None:
        known = ", ".join(bundled_sites())
        raise ConfigError(str(name_or_path), "", f"no such file; bundled sites: {known}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    site = site_from_dict(data, str(path), base_dir=path.parent)
    return site if topology is None else attach_network(site, topology)


def attach_network(site: Site, topology: Topology) -> Site:
    """``site`` with the network it is part of; the topology must know it and agree on its facts."""
    place = topology.sites.get(site.name.lower())
    if place is None:
        problem = f"site {site.name!r} is not in the network topology (sites: {', '.join(sorted(topology.sites))})"
        raise ConfigError(site.source, "name", problem)
    if site.jurisdiction and site.jurisdiction != place.jurisdiction:
        problem = f"{site.jurisdiction!r} disagrees with the topology's {place.jurisdiction!r} for site {place.name}"
        raise ConfigError(site.source, "jurisdiction", problem)
    if place.time_zone and place.time_zone != site.time_zone:
        problem = f"{site.time_zone!r} disagrees with the topology's {place.time_zone!r} for site {place.name}"
        raise ConfigError(site.source, "time_zone", problem)
    return replace(site, jurisdiction=place.jurisdiction, network=topology)


def site_from_dict(data: dict[str, Any], source: str, base_dir: Path | None = None) -> Site:
    """Validate a parsed site document; relative CSV paths resolve against ``base_dir``."""
    top = {"name", "time_zone", "utc_offset_h", "jurisdiction", "climate", "cooling", "grid", "tariff", "power_cap"}
    _only_keys(data, top, source, "")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise ConfigError(source, "name", "must be a non-empty string")
    clock = _clock(data, source)
    jurisdiction = data.get("jurisdiction", "")
    if not isinstance(jurisdiction, str) or (jurisdiction and not _JURISDICTION_RE.match(jurisdiction)):
        problem = f"must be an ISO 3166 country code such as 'KZ', got {jurisdiction!r}"
        raise ConfigError(source, "jurisdiction", problem)
    if "power_cap" not in data:
        raise ConfigError(source, "power_cap", 'required table with at least base = "100MW"')
    return Site(
        name=name,
        time_zone=clock.name,
        jurisdiction=jurisdiction,
        clock=clock,
        climate=_climate(_table(data, "climate", source), source, clock),
        cooling=_cooling(_table(data, "cooling", source), source),
        carbon=_carbon(_table(data, "grid", source), source, base_dir),
        tariff=_tariff(_table(data, "tariff", source), source),
        power_cap=_power_cap(_table(data, "power_cap", source), source, clock),
        source=source,
    )


def _clock(data: dict[str, Any], source: str) -> SiteClock:
    """The site clock from ``time_zone`` and/or ``utc_offset_h`` (module docstring)."""
    has_offset = "utc_offset_h" in data
    offset = _number(data, "utc_offset_h", source, "", default=DEFAULT_UTC_OFFSET_H, lo=-12.0, hi=14.0)
    if "time_zone" not in data:
        return SiteClock.fixed(offset)
    key = data["time_zone"]
    if not isinstance(key, str) or not key:
        raise ConfigError(source, "time_zone", f"must be an IANA time zone name such as 'Asia/Almaty', got {key!r}")
    try:
        clock = SiteClock.named(key)
    except ValueError as exc:
        raise ConfigError(source, "time_zone", str(exc)) from None
    standard_h = clock.standard_offset_now_h
    if has_offset and abs(standard_h - offset) > 1e-9:
        problem = (
            f"{offset:g} disagrees with time_zone {key!r}, whose standard offset is now {standard_h:g} h "
            "(fix one of the two, or update the system's time zone database)"
        )
        raise ConfigError(source, "utc_offset_h", problem)
    return clock


def _climate(t: dict[str, Any], source: str, clock: SiteClock) -> SiteClimate:
    keys = {"monthly_mean_c", "daily_amplitude_c", "noise_sigma_c", "noise_autocorr"}
    _only_keys(t, keys, source, "climate")
    means = t.get("monthly_mean_c")
    if not isinstance(means, list) or len(means) != 12 or not all(_is_number(v) for v in means):
        raise ConfigError(source, "climate.monthly_mean_c", "required, a list of 12 numbers (January first)")
    return SiteClimate(
        monthly_mean_c=tuple(float(v) for v in means),
        daily_amplitude_c=_number(t, "daily_amplitude_c", source, "climate", default=6.0, lo=0.0, hi=30.0),
        noise_sigma_c=_number(t, "noise_sigma_c", source, "climate", default=4.0, lo=0.0, hi=20.0),
        noise_autocorr=_number(t, "noise_autocorr", source, "climate", default=0.7, lo=0.0, hi=0.99),
        clock=clock,
    )


def _cooling(t: dict[str, Any], source: str) -> CoolingSpec:
    _only_keys(t, {"kind", "economizer_limit_c", "band_c", "f_overhead", "t_set_c"}, source, "cooling")
    kind = t.get("kind", "air")
    if kind not in COOLING_KINDS:
        raise ConfigError(source, "cooling.kind", f"must be one of {', '.join(COOLING_KINDS)}, got {kind!r}")
    p = COOLING_PRESETS[kind]
    return replace(
        p,
        economizer_limit_c=_number(t, "economizer_limit_c", source, "cooling", p.economizer_limit_c, -40, 60),
        band_c=_number(t, "band_c", source, "cooling", p.band_c, 0.1, 30.0),
        f_overhead=_number(t, "f_overhead", source, "cooling", p.f_overhead, 0.0, 0.99),
        t_set_c=_number(t, "t_set_c", source, "cooling", p.t_set_c, 5.0, 60.0),
    )


def _carbon(t: dict[str, Any], source: str, base_dir: Path | None) -> CarbonSpec:
    keys = {"carbon_g_per_kwh", "seasonal_swing", "diurnal_swing", "carbon_csv", "carbon_csv_repeat_year"}
    _only_keys(t, keys, source, "grid")
    default = CarbonSpec()
    csv_path: Path | None = None
    if "carbon_csv" in t:
        raw = t["carbon_csv"]
        if not isinstance(raw, str) or not raw:
            raise ConfigError(source, "grid.carbon_csv", "must be a file path string")
        csv_path = Path(raw) if Path(raw).is_absolute() or base_dir is None else base_dir / raw
        if not csv_path.is_file():
            raise ConfigError(source, "grid.carbon_csv", f"no such file: {csv_path}")
    repeat = t.get("carbon_csv_repeat_year", False)
    if not isinstance(repeat, bool):
        raise ConfigError(source, "grid.carbon_csv_repeat_year", "must be true or false")
    return CarbonSpec(
        g_per_kwh=_number(t, "carbon_g_per_kwh", source, "grid", default.g_per_kwh, 0.0, 5000.0),
        seasonal_swing=_number(t, "seasonal_swing", source, "grid", default.seasonal_swing, 0.0, 0.99),
        diurnal_swing=_number(t, "diurnal_swing", source, "grid", default.diurnal_swing, 0.0, 0.99),
        csv_path=csv_path,
        csv_repeat_year=repeat,
    )


def _tariff(t: dict[str, Any], source: str) -> TariffSpec:
    keys = {"kzt_per_kwh", "kzt_per_usd", "day_multiplier", "night_multiplier", "night_hours"}
    _only_keys(t, keys, source, "tariff")
    d = TariffSpec()
    night_hours = d.night_hours
    if "night_hours" in t:
        night_hours = _hours(t["night_hours"], source, "tariff.night_hours")
    return TariffSpec(
        kzt_per_kwh=_number(t, "kzt_per_kwh", source, "tariff", d.kzt_per_kwh, 0.0, 1e4),
        kzt_per_usd=_number(t, "kzt_per_usd", source, "tariff", d.kzt_per_usd, 1e-6, 1e6),
        day_multiplier=_number(t, "day_multiplier", source, "tariff", d.day_multiplier, 0.0, 10.0),
        night_multiplier=_number(t, "night_multiplier", source, "tariff", d.night_multiplier, 0.0, 10.0),
        night_hours=night_hours,
    )


def _power_cap(t: dict[str, Any], source: str, clock: SiteClock) -> CapSchedule:
    _only_keys(t, {"base", "windows"}, source, "power_cap")
    base_w = _power(t.get("base"), source, "power_cap.base")
    raw_windows = t.get("windows", [])
    if not isinstance(raw_windows, list):
        raise ConfigError(source, "power_cap.windows", "must be an array of tables ([[power_cap.windows]])")
    windows: list[CapWindow] = []
    for i, w in enumerate(raw_windows):
        key = f"power_cap.windows[{i}]"
        if not isinstance(w, dict):
            raise ConfigError(source, key, "must be a table")
        _only_keys(w, {"months", "hours", "cap", "reason"}, source, key)
        months = w.get("months")
        if (
            not isinstance(months, list)
            or not months
            or not all(isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12 for m in months)
        ):
            problem = f"required, a list of month numbers 1-12, got {months!r}"
            raise ConfigError(source, f"{key}.months", problem)
        hours = _hours(w.get("hours"), source, f"{key}.hours")
        cap_w = _power(w.get("cap"), source, f"{key}.cap")
        if cap_w > base_w:
            raise ConfigError(source, f"{key}.cap", f"{w['cap']!r} exceeds the base cap {t['base']!r}")
        reason = w.get("reason", "")
        if not isinstance(reason, str):
            raise ConfigError(source, f"{key}.reason", "must be a string")
        windows.append(CapWindow(frozenset(months), hours, cap_w, reason))
    return CapSchedule(base_w, tuple(windows), clock=clock)


def _power(raw: Any, source: str, key: str) -> float:
    if not isinstance(raw, str):
        raise ConfigError(source, key, f'required, a power string such as "100MW", got {raw!r}')
    try:
        watts = parse_power(raw)
    except ValueError as exc:
        raise ConfigError(source, key, str(exc)) from None
    if watts <= 0:
        raise ConfigError(source, key, f"must be > 0, got {raw!r}")
    return watts


def _hours(raw: Any, source: str, key: str) -> tuple[int, int]:
    if not isinstance(raw, str):
        raise ConfigError(source, key, f"required, local hours 'START-END' such as '17-21', got {raw!r}")
    try:
        return parse_hours(raw)
    except ValueError as exc:
        raise ConfigError(source, key, str(exc)) from None


def _table(data: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(source, name, f"must be a table ([{name}])")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _number(t: dict[str, Any], name: str, source: str, table: str, default: float, lo: float, hi: float) -> float:
    key = f"{table}.{name}" if table else name
    value = t.get(name, default)
    if not _is_number(value):
        raise ConfigError(source, key, f"must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(source, key, f"must be between {lo:g} and {hi:g}, got {value!r}")
    return float(value)


def _only_keys(table: dict[str, Any], allowed: set[str], source: str, key: str) -> None:
    for k in table:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ConfigError(source, where, f"unknown key; allowed: {', '.join(sorted(allowed))}")

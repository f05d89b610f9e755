"""The live hub's site clock: POSIX seconds onto a site timeline, and the facility invariant.

The twin reads its site timeline at simulated seconds from its ``start``. The live loop's
``now`` is POSIX seconds, so ``live_power`` starts the timeline at ``t0``, the start of the hour
(local to the site: its clock, from the ``time_zone`` of its site file) in which the hub starts, and the budget
reads the timeline at ``now - t0`` through ``EpochLimits``; the times it hands back (the next
change of the cap, or of the hourly PUE) are POSIX seconds again, so the loop wakes at them.
Example: a hub at astana (UTC+5) started at 13:42:10 local time has ``t0`` = 13:00 local
(08:00 UTC); at 14:00 local, ``now - t0`` = 3600 s, hour 1 of its timeline, and the winter
evening window (17:00-21:00 local) begins at ``t0 + 4 h``. A time before ``t0`` (a clock set
back) reads hour 0. Timeline hours stay aligned with local hours across a daylight-saving
change (the zone moves by whole hours), so a Berlin hub's windows follow Berlin's wall clock.

>>> from datetime import datetime, UTC
>>> from steppe.energy.clock import SiteClock
>>> t = datetime(2026, 3, 1, 8, 42, 10, tzinfo=UTC).timestamp()
>>> hour_start(t, 5.0).isoformat(), hour_start(t, 5.5).isoformat()
('2026-03-01T13:00:00+05:00', '2026-03-01T14:00:00+05:30')
>>> hour_start(t, SiteClock.named("Europe/Berlin")).isoformat()
'2026-03-01T09:00:00+01:00'

A hub's calendar (the date approvals start and expire on) reads the same clock: ``hub_clock``
gives the clock of the hub's site file, or, for a topology site without one (a partner site such
as ``frankfurt``), the topology's time zone for it.

The invariant both modes check after every cycle: ``PUE(now) x (static IT + running jobs'
added power) <= cap(now)`` (``over_cap`` says how it is broken, or None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from steppe.core.cluster import Cluster
from steppe.core.errors import ConfigError
from steppe.core.network import Topology
from steppe.energy.clock import SiteClock
from steppe.energy.site import Site, load_site, site_file
from steppe.power.budget import PowerSetup, build_power
from steppe.scheduling.power import FacilityLimits, PowerBudget, SiteLimits


def hour_start(epoch_s: float, clock: SiteClock | float) -> datetime:
    """The start of the local hour of ``clock`` (a site clock, or a fixed offset from UTC in hours)
    that holds POSIX time ``epoch_s``."""
    zone = clock if isinstance(clock, SiteClock) else SiteClock.fixed(clock)
    return zone.hour_start(epoch_s)


def hub_site(site_name: str, topology: Topology) -> Site | None:
    """The hub's ``Site`` with its network attached, or None for a topology site without a site file."""
    if site_file(site_name) is None:
        topology.site(site_name)  # UnknownNameError naming the known sites
        return None
    return load_site(site_name, topology)


def hub_clock(site_name: str, topology: Topology) -> SiteClock:
    """The clock of a hub at ``site_name`` (see the module docstring)."""
    site = hub_site(site_name, topology)
    if site is not None:
        return site.clock
    place = topology.site(site_name)
    if not place.time_zone:
        problem = f"site {place.name} has neither a site file nor a time_zone in the topology"
        raise ConfigError("topology", f"sites.{place.name}.time_zone", problem)
    return SiteClock.named(place.time_zone)


def hub_site_facts(site_name: str, topology: Topology) -> dict[str, str]:
    """Name, time zone and jurisdiction of a hub at ``site_name``, as the hub describes itself."""
    site = hub_site(site_name, topology)
    if site is not None:
        return site.describe()
    place = topology.site(site_name)
    return {"name": place.name, "time_zone": hub_clock(site_name, topology).name, "jurisdiction": place.jurisdiction}


class EpochLimits:
    """``limits`` (over timeline seconds from ``t0_s``) read at POSIX seconds (implements ``FacilityLimits``)."""

    def __init__(self, limits: FacilityLimits, t0_s: float) -> None:
        self.limits = limits
        self.t0_s = t0_s

    def site_s(self, t_s: float) -> float:
        """Timeline seconds of POSIX time ``t_s`` (0 before ``t0``)."""
        return max(t_s - self.t0_s, 0.0)

    def cap_w_at(self, t_s: float) -> float:
        return self.limits.cap_w_at(self.site_s(t_s))

    def pue_at(self, t_s: float) -> float:
        return self.limits.pue_at(self.site_s(t_s))

    def next_change_s(self, t_s: float) -> float:
        return self.limits.next_change_s(self.site_s(t_s)) + self.t0_s


def live_power(
    cluster: Cluster,
    site_name: str | Site,
    now_s: float,
    *,
    power_cap_w: float | None = None,
    capping: bool = True,
    floor: float = 0.6,
    seed: int = 0,
) -> PowerSetup:
    """``build_power`` for the live hub: the timeline starts at the site-local hour holding ``now_s``
    and the budget is read at POSIX seconds."""
    site = site_name if isinstance(site_name, Site) else load_site(site_name)
    setup = build_power(
        cluster, site, power_cap_w=power_cap_w, capping=capping, floor=floor,
        start=hour_start(now_s, site.clock), seed=seed,
    )  # fmt: skip
    assert setup.budget is not None  # enforce=True
    sites = {
        name: SiteLimits(EpochLimits(x.limits, setup.site_timelines[name].start_utc_s), x.static_it_w)
        for name, x in setup.budget.sites.items()
    }
    limits = EpochLimits(setup.budget.limits, setup.timeline.start_utc_s)
    setup.budget = replace(setup.budget, limits=limits, sites=sites)
    return setup


def facility_draw_w(budget: PowerBudget, it_draw_w: float, now: float, site: str | None = None) -> float:
    """The facility's draw at ``now`` when running jobs add ``it_draw_w`` above the idle fleet (at
    ``site``, in a fleet at several sites: its PUE and idle draw)."""
    if site is not None:
        x = budget.sites[site]
        return x.limits.pue_at(now) * (x.static_it_w + it_draw_w)
    return budget.limits.pue_at(now) * (budget.static_it_w + it_draw_w)


def site_powers(
    budget: PowerBudget, site_draw_w: Mapping[str, float], now: float
) -> dict[str, tuple[float, float, float]]:
    """Per site of a fleet at several sites: (facility draw W, cap W, PUE) at ``now``."""
    return {
        name: (facility_draw_w(budget, site_draw_w.get(name, 0.0), now, name), x.limits.cap_w_at(now),
               x.limits.pue_at(now))
        for name, x in budget.sites.items()
    }  # fmt: skip


def over_cap(
    budget: PowerBudget, it_draw_w: float, now: float, site_draw_w: Mapping[str, float] | None = None
) -> str | None:
    """How the facility invariant is broken at ``now`` (the twin's tolerance), or None if it holds;
    with several sites, at each site (``site_draw_w``: running jobs' added power per site)."""
    if budget.sites:
        for name, (draw_w, cap_w, _) in site_powers(budget, site_draw_w or {}, now).items():
            if draw_w > cap_w * (1 + 1e-9) + 1e-3:
                return f"t={now}: site {name} draws {draw_w:,.0f} W over its cap of {cap_w:,.0f} W"
        return None
    draw_w, cap_w = facility_draw_w(budget, it_draw_w, now), budget.limits.cap_w_at(now)
    if draw_w > cap_w * (1 + 1e-9) + 1e-3:
        return f"t={now}: facility draws {draw_w:,.0f} W over its cap of {cap_w:,.0f} W"
    return None

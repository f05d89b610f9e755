"""The power setup a cycle needs to schedule under a facility cap, in either mode.

``PowerSetup`` ties a site timeline (PUE, carbon, tariff, cap over time from ``start``), the
fleet's power model and the scheduler's ``PowerBudget`` together. Timeline time 0 is ``start``
(a whole hour, local to the site by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from steppe.core.cluster import Cluster, SiteSpec
from steppe.core.errors import SteppeError
from steppe.energy.fleet import FleetPower, TimelineLimits, with_base_cap
from steppe.energy.site import Site, load_site
from steppe.energy.timeline import SiteTimeline
from steppe.scheduling.power import PowerBudget, SiteLimits

DEFAULT_START = "2026-01-01T00:00"


@dataclass
class PowerSetup:
    """Everything power-related a replay (or the live loop) is given."""

    site: Site
    timeline: SiteTimeline
    fleet: FleetPower
    budget: PowerBudget | None  # None: account energy only, do not schedule power
    site_timelines: dict[str, SiteTimeline] = field(default_factory=dict)  # several sites: each one's (else empty)
    site_fleets: dict[str, FleetPower] = field(default_factory=dict)  # several sites: each one's nodes

    @property
    def enforced(self) -> bool:
        return self.budget is not None


def parse_start(text: str, site: Site) -> datetime:
    """``YYYY-MM-DD[THH:MM]`` in the site's local time (its clock's zone; or with an explicit offset);
    must be a whole hour."""
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise SteppeError(f"--start: not a date/time like 2026-01-01T00:00: {text!r}") from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=site.clock.zone)
    if start.minute or start.second or start.microsecond:
        raise SteppeError(f"--start: must be on a whole hour, got {text!r}")
    return start


def build_power(
    cluster: Cluster,
    site_name: str | Site,
    *,
    power_cap_w: float | None = None,
    capping: bool = True,
    enforce: bool = True,
    floor: float = 0.6,
    start: str | datetime = DEFAULT_START,
    seed: int = 0,
) -> PowerSetup:
    """A power setup for ``cluster`` at a bundled or file site (or a loaded ``Site``), optionally with
    another base cap.

    ``start`` is text for ``parse_start`` or a timezone-aware datetime on a whole hour.
    """
    if cluster.sites:
        return _build_sites(cluster, site_name, power_cap_w, capping, enforce, floor, start, seed)
    site = site_name if isinstance(site_name, Site) else load_site(site_name)
    if power_cap_w is not None:
        if power_cap_w <= 0:
            raise SteppeError(f"--power-cap must be positive, got {power_cap_w:g} W")
        site = with_base_cap(site, power_cap_w)
    if enforce and not 0.4 <= floor <= 1.0:
        raise SteppeError(f"--cap-floor must be within 0.4-1.0 of TDP, got {floor:g}")
    start_at = start if isinstance(start, datetime) else parse_start(start, site)
    timeline = SiteTimeline(site, start_at, seed=seed)
    fleet = FleetPower(cluster)
    budget = None
    if enforce:
        budget = PowerBudget(fleet, TimelineLimits(timeline), fleet.static_it_w(), capping=capping, floor=floor)
        _check_idle_fits(timeline, fleet.static_it_w())
    return PowerSetup(site, timeline, fleet, budget)


def _build_sites(
    cluster: Cluster,
    site_name: str | Site,
    power_cap_w: float | None,
    capping: bool,
    enforce: bool,
    floor: float,
    start: str | datetime,
    seed: int,
) -> PowerSetup:
    """``build_power`` for a fleet at several sites: each site its own site file, cap, timeline and
    idle draw (``PowerBudget.sites``); the setup's own site and timeline are the first site's (or
    ``site_name``'s, when it is one of them), for whatever the hub reports as a whole."""
    if power_cap_w is not None:
        raise SteppeError(
            "--power-cap: a fleet at several sites has a cap per site; set power_cap_kw in each "
            "[sites.NAME] table of its cluster file (the site file's own cap applies where none is set)"
        )
    if enforce and not 0.4 <= floor <= 1.0:
        raise SteppeError(f"--cap-floor must be within 0.4-1.0 of TDP, got {floor:g}")
    home = site_name.name if isinstance(site_name, Site) else site_name
    if home not in cluster.sites:
        home = next(iter(cluster.sites))
    first = load_site(cluster.sites[home].site_file)
    start_at = start if isinstance(start, datetime) else parse_start(start, first)
    timelines: dict[str, SiteTimeline] = {}
    fleets: dict[str, FleetPower] = {}
    limits: dict[str, SiteLimits] = {}
    for name, spec in cluster.sites.items():
        site = _site_of(spec)
        timeline = timelines[name] = SiteTimeline(site, start_at, seed=seed)
        here = Cluster(name, tuple(n for n in cluster.nodes if n.site == name), cluster.tenants, cluster.qos)
        fleets[name] = FleetPower(here)
        static_w = fleets[name].static_it_w()
        limits[name] = SiteLimits(TimelineLimits(timeline), static_w)
        if enforce:
            _check_idle_fits(timeline, static_w, f"site {name}: ")
    fleet = FleetPower(cluster)
    budget = None
    if enforce:
        home_limits = limits[home].limits
        budget = PowerBudget(fleet, home_limits, fleet.static_it_w(), capping=capping, floor=floor, sites=limits)
    return PowerSetup(timelines[home].site, timelines[home], fleet, budget, timelines, fleets)


def _site_of(spec: SiteSpec) -> Site:
    try:
        site = load_site(spec.site_file)
    except SteppeError as exc:
        raise SteppeError(f"site {spec.name}: {exc}") from None
    return with_base_cap(site, spec.power_cap_w) if spec.power_cap_w is not None else site


def _check_idle_fits(timeline: SiteTimeline, static_w: float, where: str = "") -> None:
    """Refuse a cap that ever falls below the idle fleet's facility draw: no schedule keeps under it."""
    arr = timeline.arrays(24 * 366)
    margin_w = arr.cap_w - static_w * arr.pue
    worst = int(margin_w.argmin())
    if margin_w[worst] < 0:
        raise SteppeError(
            f"{where}the facility cap falls to {arr.cap_w[worst] / 1e6:.3f} MW (hour {worst} of the year), below "
            f"the idle fleet's draw of {static_w * arr.pue[worst] / 1e6:.3f} MW at that hour's "
            "PUE: no schedule can keep under it"
        )


def power_ceiling_w(power: PowerSetup) -> float:
    """The most IT power jobs may ever add at this site (over a year of its timeline): a job
    needing more even at its lowest cap can never start, and the submission gate refuses it.
    With several sites, the most any one site ever leaves (a job runs at one site)."""
    budget = power.budget
    if budget is not None and budget.sites:
        return max(
            float((arr.cap_w / arr.pue).max()) - budget.sites[name].static_it_w
            for name, timeline in power.site_timelines.items()
            for arr in (timeline.arrays(24 * 366),)
        )
    arr = power.timeline.arrays(24 * 366)
    return float((arr.cap_w / arr.pue).max()) - power.fleet.static_it_w()

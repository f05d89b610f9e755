"""The power setup a cycle needs to schedule under a facility cap, in either mode.

``PowerSetup`` ties a site timeline (PUE, carbon, tariff, cap over time from ``start``), the
fleet's power model and the scheduler's ``PowerBudget`` together. Timeline time 0 is ``start``
(a whole hour, local to the site by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from steppe.core.cluster import Cluster
from steppe.core.errors import SteppeError
from steppe.energy.fleet import FleetPower, TimelineLimits, with_base_cap
from steppe.energy.site import Site, load_site
from steppe.energy.timeline import SiteTimeline
from steppe.scheduling.power import PowerBudget

DEFAULT_START = "2026-01-01T00:00"


@dataclass
class PowerSetup:
    """Everything power-related a replay (or the live loop) is given."""

    site: Site
    timeline: SiteTimeline
    fleet: FleetPower
    budget: PowerBudget | None  # None: account energy only, do not schedule power

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
    if enforce and len(cluster.site_names) > 1:
        raise SteppeError(
            f"a fleet at several sites ({', '.join(cluster.site_names)}) has one power budget per site, which the "
            "scheduler does not apply yet: replay it without --power-cap, or each site alone"
        )
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
        arr = timeline.arrays(24 * 366)
        margin_w = arr.cap_w - fleet.static_it_w() * arr.pue
        worst = int(margin_w.argmin())
        if margin_w[worst] < 0:
            raise SteppeError(
                f"the facility cap falls to {arr.cap_w[worst] / 1e6:.3f} MW (hour {worst} of the year), below "
                f"the idle fleet's draw of {fleet.static_it_w() * arr.pue[worst] / 1e6:.3f} MW at that hour's "
                "PUE: no schedule can keep under it"
            )
    return PowerSetup(site, timeline, fleet, budget)


def power_ceiling_w(power: PowerSetup) -> float:
    """The most IT power jobs may ever add at this site (over a year of its timeline): a job
    needing more even at its lowest cap can never start, and the submission gate refuses it."""
    arr = power.timeline.arrays(24 * 366)
    return float((arr.cap_w / arr.pue).max()) - power.fleet.static_it_w()

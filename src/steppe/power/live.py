"""The live hub's site clock: POSIX seconds onto a site timeline, and the facility invariant.

The twin reads its site timeline at simulated seconds from its ``start``. The live loop's
``now`` is POSIX seconds, so ``live_power`` starts the timeline at ``t0``, the start of the hour
(local to the site: ``utc_offset_h`` of its site file) in which the hub starts, and the budget
reads the timeline at ``now - t0`` through ``EpochLimits``; the times it hands back (the next
change of the cap, or of the hourly PUE) are POSIX seconds again, so the loop wakes at them.
Example: a hub at astana (UTC+5) started at 13:42:10 local time has ``t0`` = 13:00 local
(08:00 UTC); at 14:00 local, ``now - t0`` = 3600 s, hour 1 of its timeline, and the winter
evening window (17:00-21:00 local) begins at ``t0 + 4 h``. A time before ``t0`` (a clock set
back) reads hour 0.

>>> from datetime import datetime, UTC
>>> t = datetime(2026, 3, 1, 8, 42, 10, tzinfo=UTC).timestamp()
>>> hour_start(t, 5.0).isoformat(), hour_start(t, 5.5).isoformat()
('2026-03-01T13:00:00+05:00', '2026-03-01T14:00:00+05:30')

The invariant both modes check after every cycle: ``PUE(now) x (static IT + running jobs'
added power) <= cap(now)`` (``over_cap`` says how it is broken, or None).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from steppe.core.cluster import Cluster
from steppe.energy.site import load_site
from steppe.power.budget import PowerSetup, build_power
from steppe.scheduling.power import FacilityLimits, PowerBudget


def hour_start(epoch_s: float, utc_offset_h: float) -> datetime:
    """The start of the hour, in the zone ``UTC + utc_offset_h``, that holds POSIX time ``epoch_s``."""
    local = datetime.fromtimestamp(epoch_s, timezone(timedelta(hours=utc_offset_h)))
    return local.replace(minute=0, second=0, microsecond=0)


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
    site_name: str,
    now_s: float,
    *,
    power_cap_w: float | None = None,
    capping: bool = True,
    floor: float = 0.6,
    seed: int = 0,
) -> PowerSetup:
    """``build_power`` for the live hub: the timeline starts at the site-local hour holding ``now_s``
    and the budget is read at POSIX seconds."""
    site = load_site(site_name)
    setup = build_power(
        cluster, site_name, power_cap_w=power_cap_w, capping=capping, floor=floor,
        start=hour_start(now_s, site.utc_offset_h), seed=seed,
    )  # fmt: skip
    assert setup.budget is not None  # enforce=True
    setup.budget = replace(setup.budget, limits=EpochLimits(setup.budget.limits, setup.timeline.start_utc_s))
    return setup


def facility_draw_w(budget: PowerBudget, it_draw_w: float, now: float) -> float:
    """The facility's draw at ``now`` when running jobs add ``it_draw_w`` above the idle fleet."""
    return budget.limits.pue_at(now) * (budget.static_it_w + it_draw_w)


def over_cap(budget: PowerBudget, it_draw_w: float, now: float) -> str | None:
    """How the facility invariant is broken at ``now`` (the twin's tolerance), or None if it holds."""
    draw_w, cap_w = facility_draw_w(budget, it_draw_w, now), budget.limits.cap_w_at(now)
    if draw_w > cap_w * (1 + 1e-9) + 1e-3:
        return f"t={now}: facility draws {draw_w:,.0f} W over its cap of {cap_w:,.0f} W"
    return None

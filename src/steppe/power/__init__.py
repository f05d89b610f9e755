"""Facility power for both modes: one setup (site timeline, fleet power, the scheduler's budget).

The twin and the live hub schedule under the facility cap with the same ``PowerBudget``; they
differ only in the clock the budget is read with:

* the twin's time is seconds from its ``start`` (``build_power(..., start="2026-01-01T00:00")``);
* the live hub's time is POSIX seconds: ``live_power`` starts the site timeline at the hour,
  local to the site (its clock: the ``time_zone`` of its site file), in which the hub starts, and
  reads the timeline at ``now - t0`` (``EpochLimits``); ``hub_clock`` is the hub's calendar.

Layering: this package sits above ``scheduling`` and ``energy`` (it joins them) and below
``twin`` and ``control``, which both use it.
"""

from steppe.power.budget import DEFAULT_START, PowerSetup, build_power, parse_start, power_ceiling_w
from steppe.power.live import (
    EpochLimits,
    facility_draw_w,
    hour_start,
    hub_clock,
    hub_site,
    hub_site_facts,
    live_power,
    over_cap,
)

__all__ = [
    "DEFAULT_START",
    "EpochLimits",
    "PowerSetup",
    "build_power",
    "facility_draw_w",
    "hour_start",
    "hub_clock",
    "hub_site",
    "hub_site_facts",
    "live_power",
    "over_cap",
    "parse_start",
    "power_ceiling_w",
]

"""Energy models of the hub: GPU/job/node power, power capping, facility PUE vs climate, outdoor
temperature, grid carbon and tariff, and sites (time zone, jurisdiction, network) with a
time-varying facility power cap, read through the site clock.

Pure functions and immutable data, no clock; the only files read are those asked for (a site TOML,
a carbon CSV it names, a measured power CDF). See ``docs/energy.md``.
"""

from steppe.energy.capping import (
    binding_slowdown_factor,
    capped_power_w,
    check_cap_fraction,
    gpu_energy_ratio,
    slowdown_factor,
    throughput_ratio,
)
from steppe.energy.climate import SiteClimate, hourly_temperature
from steppe.energy.clock import SiteClock
from steppe.energy.facility import AIR_COOLING, LIQUID_COOLING, CoolingSpec, cop, pue, pue_array
from steppe.energy.grid import (
    CarbonSpec,
    CarbonTable,
    TariffSpec,
    carbon_series_g_per_kwh,
    kzt_to_usd,
    tariff_series_kzt_per_kwh,
)
from steppe.energy.power import (
    WORKLOAD_PROFILES,
    WorkloadProfile,
    gpu_power_w,
    host_power_w,
    job_gpu_power_w,
    job_power_w,
    job_slowdown_factor,
    node_idle_power_w,
    power_cdf_stats,
)
from steppe.energy.powercap import CapSchedule, CapWindow
from steppe.energy.site import Site, attach_network, bundled_sites, load_site, site_file
from steppe.energy.timeline import SiteTimeline, TimelineArrays

__all__ = [
    "AIR_COOLING",
    "LIQUID_COOLING",
    "WORKLOAD_PROFILES",
    "CapSchedule",
    "CapWindow",
    "CarbonSpec",
    "CarbonTable",
    "CoolingSpec",
    "Site",
    "SiteClimate",
    "SiteClock",
    "SiteTimeline",
    "TariffSpec",
    "TimelineArrays",
    "WorkloadProfile",
    "attach_network",
    "binding_slowdown_factor",
    "bundled_sites",
    "capped_power_w",
    "carbon_series_g_per_kwh",
    "check_cap_fraction",
    "cop",
    "gpu_energy_ratio",
    "gpu_power_w",
    "host_power_w",
    "hourly_temperature",
    "job_gpu_power_w",
    "job_power_w",
    "job_slowdown_factor",
    "kzt_to_usd",
    "load_site",
    "node_idle_power_w",
    "power_cdf_stats",
    "pue",
    "pue_array",
    "site_file",
    "slowdown_factor",
    "tariff_series_kzt_per_kwh",
    "throughput_ratio",
]

"""The energy models seen from the scheduler and the twin: a job's added power, the fleet's
static draw, the facility's limits over time, and a job's slowdown under a cap.

* a job's **added power** is what its GPUs draw above idle at its cap:
  ``gpus x (P_gpu(workload, cap) - P_idle)``;
* the **static IT draw** is the fleet with every GPU idle: hosts (a node's ``host_power_w`` if
  its cluster file gives one, else ``host_power_w`` of the power model) plus every GPU's idle power;
* jobs whose QOS is latency-critical are never capped.

>>> from steppe.core.cluster import Cluster
>>> fleet = FleetPower(Cluster.uniform(1, 8, "H200"))
>>> round(fleet.static_it_w())  # 1,836 W host + 8 x 80.3 W idle
2478
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

from steppe.core.cluster import Cluster
from steppe.core.gpu import GpuType, gpu_type
from steppe.core.job import WorkloadClass
from steppe.core.records import JobRecord
from steppe.energy.power import host_power_w, job_gpu_power_w, job_slowdown_factor
from steppe.energy.powercap import CapSchedule, CapWindow
from steppe.energy.site import Site
from steppe.energy.timeline import SiteTimeline


@lru_cache(maxsize=1024)
def _gpu_w(gpu: GpuType, workload: WorkloadClass, cap_fraction: float) -> float:
    return job_gpu_power_w(gpu, workload, cap_fraction)


@lru_cache(maxsize=1024)
def _slowdown(gpu: GpuType, workload: WorkloadClass, cap_fraction: float) -> float:
    return job_slowdown_factor(gpu, workload, cap_fraction)


class FleetPower:
    """Power of jobs and of the idle fleet (implements the scheduler's ``JobPowerModel``)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._per_gpu: dict[tuple[str, WorkloadClass, float], tuple[float, float]] = {}

    def _gpu(self, gpu_type_name: str, workload: WorkloadClass, cap_fraction: float) -> tuple[float, float]:
        """(GPU power, power above idle) of one GPU, memoised."""
        key = (gpu_type_name, workload, cap_fraction)
        got = self._per_gpu.get(key)
        if got is None:
            g = gpu_type(gpu_type_name)
            w = _gpu_w(g, workload, cap_fraction)
            got = self._per_gpu[key] = (w, w - g.idle_w)
        return got

    def gpu_power_w(self, rec: JobRecord, gpu_type_name: str, cap_fraction: float) -> float:
        """Total GPU power of the job (idle part included)."""
        return rec.gpus * self._gpu(gpu_type_name, rec.spec.workload, cap_fraction)[0]

    def added_w(self, rec: JobRecord, gpu_type_name: str, cap_fraction: float) -> float:
        return rec.gpus * self._gpu(gpu_type_name, rec.spec.workload, cap_fraction)[1]

    def cappable(self, rec: JobRecord) -> bool:
        return not self.cluster.qos_of(rec.spec.qos).latency_critical

    def slowdown(self, rec: JobRecord) -> float:
        """Run-time stretch of ``rec`` at its current cap (1.0 when the cap does not bind)."""
        if rec.cap_fraction >= 1.0:
            return 1.0
        return _slowdown(gpu_type(rec.gpu_type), rec.spec.workload, rec.cap_fraction)

    def host_w(self) -> float:
        nodes = self.cluster.nodes
        return sum(n.host_power_w if n.host_power_w > 0 else host_power_w(n.gpu_type, n.gpus) for n in nodes)

    def idle_gpus_w(self) -> float:
        return sum(n.gpus * n.gpu_type.idle_w for n in self.cluster.nodes)

    def static_it_w(self) -> float:
        return self.host_w() + self.idle_gpus_w()

    def peak_it_w(self) -> float:
        """IT draw with every GPU running training at full power."""
        return self.host_w() + sum(n.gpus * _gpu_w(n.gpu_type, WorkloadClass.TRAINING, 1.0) for n in self.cluster.nodes)


class TimelineLimits:
    """The facility's cap and PUE from a site timeline (implements ``FacilityLimits``)."""

    def __init__(self, timeline: SiteTimeline) -> None:
        self.timeline = timeline
        self._next: tuple[float, float] = (math.inf, -math.inf)  # (asked at, answer), valid until the answer

    def cap_w_at(self, t_s: float) -> float:
        return self.timeline.cap_w_at(t_s)

    def pue_at(self, t_s: float) -> float:
        return self.timeline.pue_at(t_s)

    def next_change_s(self, t_s: float) -> float:
        asked, answer = self._next
        if asked <= t_s < answer:
            return answer
        answer = min(self.timeline.next_hour_s(t_s), self.timeline.next_cap_change_s(t_s))
        self._next = (t_s, answer)
        return answer


def with_base_cap(site: Site, base_cap_w: float) -> Site:
    """The site with another base cap; its lower windows keep their ratio to the base.

    >>> from steppe.energy.site import load_site
    >>> s = with_base_cap(load_site("astana"), 20e6)
    >>> s.base_cap_w, s.power_cap.windows[0].cap_w   # 70 MW of 100 MW -> 14 MW of 20 MW
    (20000000.0, 14000000.0)
    """
    old = site.power_cap
    ratio = base_cap_w / old.base_cap_w
    windows = tuple(CapWindow(w.months, w.hours, w.cap_w * ratio, w.reason) for w in old.windows)
    return replace(site, power_cap=CapSchedule(base_cap_w, windows, clock=old.clock))

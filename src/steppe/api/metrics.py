"""Prometheus metrics at ``/metrics``, named in the ``hub_`` style of the ecosystem notes.

* ``hub_queue_pending_jobs{reason}``: pending jobs by pending reason (gauge);
* ``hub_running_jobs``: running jobs (gauge);
* ``hub_jobs_total{state}``: transitions into each state over the hub's life (counter);
* ``hub_gpus{site,gpu_type,state}``: GPUs ``allocated`` and ``free`` per site and GPU type (gauge);
  a one-site hub's site is its ``--site``;
* ``hub_gpu_allocated_seconds_total{project,gpu_type}``: GPU-seconds metered (counter);
* ``hub_it_energy_kwh_total{project}``, ``hub_facility_energy_kwh_total{project}``,
  ``hub_carbon_kg_total{project}``, ``hub_energy_cost_kzt_total{project}``: the meter's energy,
  carbon and cost of each project's jobs over the hub's life (``steppe.metering``; counters);
* ``hub_allocation_remaining_gpu_seconds{project}``: what is left of the current allocation;
* ``hub_scheduler_cycle_duration_seconds``: one loop step, histogram;
* ``hub_scheduler_errors_total``: steps that raised;
* with a facility power cap (``steppe serve --power-cap``), ``hub_facility_power_watts`` (PUE x
  (idle fleet + running jobs' added power), as the scheduler counts it), ``hub_facility_power_cap_watts``
  and ``hub_pue``, all at the time of the scrape on the site's timeline; absent without a cap; a
  hub at several sites reports them per site, labelled ``{site}``;
* ``hub_site_info{name,time_zone,jurisdiction}``: the hub's site (``steppe.power.hub_site_facts``);
* ``hub_engine_up``: 1 while the engine that runs the jobs (local, Slurm, Ray) answers, else 0 (jobs
  then wait with ``EngineDown``); ``hub_gpus_held_by_others``: GPUs on the hub's nodes that jobs it
  did not start hold (given to its engine directly).

Labels never carry job or user ids. Values come from the read model the loop published after its
last step (``steppe.control.views``), so a scrape never waits for a scheduling step; the power
figures are evaluated at the scrape's time from the model's power draw.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steppe.control.loop import HubLoop
from steppe.control.views import ReadModel, ReadModelPublisher
from steppe.power.live import facility_draw_w, hub_site_facts, site_powers

ENERGY_COUNTERS = (  # in the order of the ledger's energy totals (steppe.metering.records.ENERGY_FIELDS)
    ("hub_it_energy_kwh", "IT energy of projects' jobs, kWh"),
    ("hub_facility_energy_kwh", "Facility energy (IT x PUE) of projects' jobs, kWh"),
    ("hub_carbon_kg", "Grid carbon of projects' jobs, kg CO2e"),
    ("hub_energy_cost_kzt", "Electricity cost of projects' jobs, KZT"),
)
CYCLE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _snapshot(loop: HubLoop, model: ReadModel) -> dict[str, Any]:
    c = model.counters
    return {
        "pending": model.pending_by_reason,
        "running": c.running,
        "entered": c.entered,
        "gpus": c.gpus,
        "charged": c.charged,
        "energy": c.energy,
        "remaining": c.remaining,
        "errors": max(c.errors, loop.errors),  # a step that raised published nothing: count it at once
        "power": _power(loop, c.power_draw_w),
        "site_power": site_powers(loop.power, c.site_power_draw_w, loop.clock()) if loop.power else {},
    }


def _power(loop: HubLoop, draw_w: float) -> tuple[float, float, float] | None:
    """(facility draw W, cap W, PUE) now, or None when the hub does not schedule power."""
    budget = loop.power
    if budget is None:
        return None
    now = loop.clock()
    return facility_draw_w(budget, draw_w, now), budget.limits.cap_w_at(now), budget.limits.pue_at(now)


class HubCollector:
    """Reads the loop's last read model at scrape time."""

    def __init__(self, loop: HubLoop, reads: ReadModelPublisher) -> None:
        self.loop = loop
        self.reads = reads

    def describe(self) -> list[Metric]:
        return []  # do not collect at registration

    def collect(self) -> Iterator[Metric]:
        snap = _snapshot(self.loop, self.reads.model)
        pending = GaugeMetricFamily("hub_queue_pending_jobs", "Pending jobs by pending reason", labels=["reason"])
        for reason, n in sorted(snap["pending"].items()):
            pending.add_metric([reason], n)
        yield pending
        yield GaugeMetricFamily("hub_running_jobs", "Running jobs", value=snap["running"])
        entered = CounterMetricFamily("hub_jobs", "Jobs that entered each state", labels=["state"])
        for st, n in sorted(snap["entered"].items()):
            entered.add_metric([st], n)
        yield entered
        gpus = GaugeMetricFamily(
            "hub_gpus", "GPUs by site and type, allocated or free", labels=["site", "gpu_type", "state"]
        )
        hub_site = self.loop.governance.site
        for (site, t), (used, free) in sorted(snap["gpus"].items()):
            gpus.add_metric([site or hub_site, t, "allocated"], used)
            gpus.add_metric([site or hub_site, t, "free"], free)
        yield gpus
        charged = CounterMetricFamily(
            "hub_gpu_allocated_seconds", "GPU-seconds charged to projects", labels=["project", "gpu_type"]
        )
        for (project, t), s in sorted(snap["charged"].items()):
            charged.add_metric([project, t], s)
        yield charged
        for i, (name, text) in enumerate(ENERGY_COUNTERS):
            family = CounterMetricFamily(name, text, labels=["project"])
            for project, values in sorted(snap["energy"].items()):
                family.add_metric([project], values[i])
            yield family
        remaining = GaugeMetricFamily(
            "hub_allocation_remaining_gpu_seconds", "GPU-seconds left in the current allocation", labels=["project"]
        )
        for project, s in sorted(snap["remaining"].items()):
            remaining.add_metric([project], s)
        yield remaining
        yield CounterMetricFamily("hub_scheduler_errors", "Scheduler steps that raised", value=snap["errors"])
        up = 1 if self.loop.executor.reachable() else 0  # the executor's cached answer: it never waits
        yield GaugeMetricFamily("hub_engine_up", "1 while the engine that runs the jobs answers", value=up)
        others = sum(v.others for v in self.reads.model.nodes)
        yield GaugeMetricFamily("hub_gpus_held_by_others", "GPUs held by jobs the hub did not start", value=others)
        if snap["site_power"]:
            families = (
                GaugeMetricFamily("hub_facility_power_watts", "Facility power drawn (PUE x IT)", labels=["site"]),
                GaugeMetricFamily("hub_facility_power_cap_watts", "Facility power cap now", labels=["site"]),
                GaugeMetricFamily("hub_pue", "Power usage effectiveness now", labels=["site"]),
            )
            for site, values in sorted(snap["site_power"].items()):
                for gauge, value in zip(families, values, strict=True):
                    gauge.add_metric([site], value)
            yield from families
        elif snap["power"] is not None:
            draw_w, cap_w, pue = snap["power"]
            yield GaugeMetricFamily("hub_facility_power_watts", "Facility power drawn (PUE x IT)", value=draw_w)
            yield GaugeMetricFamily("hub_facility_power_cap_watts", "Facility power cap now", value=cap_w)
            yield GaugeMetricFamily("hub_pue", "Power usage effectiveness now", value=pue)


def hub_registry(loop: HubLoop, reads: ReadModelPublisher) -> CollectorRegistry:
    """A registry (one per app, so tests can run several hubs) with the hub's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(loop, reads))
    site = hub_site_facts(loop.governance.site, loop.governance.topology)
    Info("hub_site", "The hub's site: name, IANA time zone, jurisdiction", registry=registry).info(site)
    cycle = Histogram(
        "hub_scheduler_cycle_duration_seconds",
        "Duration of one scheduler step",
        buckets=CYCLE_BUCKETS,
        registry=registry,
    )
    loop.cycle_observers.append(cycle.observe)
    return registry

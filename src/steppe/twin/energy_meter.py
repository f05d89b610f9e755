"""Energy, carbon and money of a replay: per job and per tenant from the meter, and for the hub.

Per job and per tenant, the figures are the meter's usage records (``steppe.metering``: the same
meter the live hub runs, with a ``MemorySink``; ``twin_metering`` sets it up on the replay's
clock). This module adds what only the hub as a whole has: a state listener that records the
hub's IT power as a step function, ``static + added power of running jobs``, integrated at the
end against the site's hourly PUE, carbon intensity and tariff.

The idle draw (hosts, idle GPUs not held by a job) belongs to the hub, not to tenants; the
sum of per-job IT energy plus idle energy equals the hub's integrated IT power (a test checks
it). Peak facility power and hours at the cap come from the step function split at hour
boundaries; "at the cap" means within 2 % of it.

A fleet at several sites has one such meter per site (``EnergyMeter(state, setup, site)``, each
following its own site's jobs against its own timeline and cap); ``combine`` sums their figures
for the hub (the facility's peak from the sites' step functions added together) and keeps each
site's under ``hub["sites"]``.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from steppe.core.records import JobRecord
from steppe.core.state import HubState
from steppe.energy.grid import kzt_to_usd
from steppe.metering import MemorySink, MeterSetup
from steppe.twin.power import PowerSetup

AT_CAP_FRACTION = 0.98
TWIN_EPOCH_S = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # a replay without a site: its months count from here
PER_JOB_KEYS = {"it_energy_kwh": "it_kwh", "facility_energy_kwh": "facility_kwh", "carbon_kg": "carbon_kg",
                "cost_kzt": "cost_kzt"}  # fmt: skip


def twin_metering(power: PowerSetup | None) -> MeterSetup:
    """The replay's meter: simulated seconds from the site timeline's start (or from 2026-01-01 UTC
    without a site, GPU-seconds only); it emits in batches and at the end, never by interval."""
    if power is None:
        return MeterSetup(epoch_offset_s=TWIN_EPOCH_S)
    return MeterSetup(
        power.fleet, power.timeline, power.timeline.start_utc_s, site_timelines=power.site_timelines or None
    )


class EnergyMeter:
    """A state listener that follows the hub's IT power; ``report(t_end, usage)`` integrates it."""

    def __init__(self, state: HubState, setup: PowerSetup, site: str | None = None) -> None:
        self.state = state
        self.setup = setup
        self.site = site  # several sites: this meter's (it ignores the others' jobs)
        self.fleet = setup.site_fleets[site] if site is not None else setup.fleet
        self.timeline = setup.site_timelines[site] if site is not None else setup.timeline
        self.static_w = self.fleet.static_it_w()
        self._busy_idle_w = 0.0
        self._added_w = 0.0
        self._job_added_w: dict[int, float] = {}
        self.step_t: list[float] = [0.0]
        self.step_it_w: list[float] = [self.static_w]
        self.step_idle_w: list[float] = [self.static_w]
        self.capped_jobs: set[int] = set()
        self.recaps = 0

    # -- listener ----------------------------------------------------------------------------
    def on_submit(self, rec: JobRecord, now: float) -> None:
        """Nothing runs yet."""

    def on_start(self, rec: JobRecord, now: float) -> None:
        if self.site is not None and rec.site != self.site:
            return
        self._busy_idle_w += self._idle_part(rec)
        self._segment(rec, now)
        self._step(now)

    def on_recap(self, rec: JobRecord, now: float) -> None:
        if self.site is not None and rec.site != self.site:
            return
        self.recaps += 1
        self._close(rec.job_id, now)
        self._segment(rec, now)
        self._step(now)

    def on_stop(self, rec: JobRecord, now: float) -> None:
        if self.site is not None and rec.site != self.site:
            return
        self._busy_idle_w -= self._idle_part(rec)
        self._close(rec.job_id, now)
        self._step(now)

    def it_power_w(self) -> float:
        """The hub's IT draw now, by this meter's own count."""
        return self.static_w + self._added_w

    def _idle_part(self, rec: JobRecord) -> float:
        return self.fleet.gpu_power_w(rec, rec.gpu_type, 1.0) - self.fleet.added_w(rec, rec.gpu_type, 1.0)

    def _segment(self, rec: JobRecord, now: float) -> None:
        if rec.cap_fraction < 1.0:
            self.capped_jobs.add(rec.job_id)
        added = self.fleet.added_w(rec, rec.gpu_type, rec.cap_fraction)
        self._job_added_w[rec.job_id] = added
        self._added_w += added

    def _close(self, job_id: int, now: float) -> None:
        self._added_w -= self._job_added_w.pop(job_id)

    def _step(self, now: float) -> None:
        it = self.static_w + self._added_w
        idle = self.static_w - self._busy_idle_w
        if self.step_t[-1] == now:
            self.step_it_w[-1], self.step_idle_w[-1] = it, idle
        else:
            self.step_t.append(now)
            self.step_it_w.append(it)
            self.step_idle_w.append(idle)

    # -- integration ---------------------------------------------------------------------------
    def report(self, t_end: float, usage: MemorySink) -> EnergyReport:
        """The hub's figures up to ``t_end``, with the per-job and per-tenant ones of ``usage`` (the meter's sink)."""
        hours = max(int(math.ceil(t_end / 3600.0)), 1) + 1
        arr = self.timeline.arrays(hours)
        edges = np.arange(hours + 1) * 3600.0

        # the hub's step functions, split at hour boundaries
        st = np.asarray(self.step_t)
        grid = np.union1d(st, edges[edges < t_end])
        grid = grid[grid <= t_end]
        idx = np.searchsorted(st, grid, side="right") - 1
        it_w = np.asarray(self.step_it_w)[idx]
        idle_w = np.asarray(self.step_idle_w)[idx]
        dur = np.diff(np.append(grid, t_end))
        hour = np.minimum((grid // 3600).astype(np.int64), hours - 1)
        pue = arr.pue[hour]
        facility_w = it_w * pue
        cap_w = arr.cap_w[hour]  # caps change only on whole hours and the timeline starts on one
        hub_facility_kwh = float(np.sum(facility_w * dur)) / 3.6e6
        by_hour = np.bincount(hour, weights=facility_w * dur / 3.6e6, minlength=hours)
        hub: dict[str, Any] = {
            "it_energy_kwh": float(np.sum(it_w * dur)) / 3.6e6,
            "idle_it_energy_kwh": float(np.sum(idle_w * dur)) / 3.6e6,
            "facility_energy_kwh": hub_facility_kwh,
            "carbon_kg": float(np.sum(facility_w * dur * arr.carbon_g_per_kwh[hour])) / 3.6e9,
            "cost_kzt": float(np.sum(facility_w * dur * arr.tariff_kzt_per_kwh[hour])) / 3.6e6,
            "peak_facility_power_w": float(facility_w.max()) if len(facility_w) else 0.0,
            "peak_it_power_w": float(it_w.max()) if len(it_w) else 0.0,
            "power_cap_w": self.timeline.site.base_cap_w,
            "min_power_cap_w": float(cap_w.min()) if len(cap_w) else self.timeline.site.base_cap_w,
            "hours_at_cap": float(np.sum(dur[facility_w >= AT_CAP_FRACTION * cap_w])) / 3600.0,
            "power_cap_violations": int(np.sum((facility_w > cap_w * (1 + 1e-9)) & (dur > 0))),
            "mean_pue": hub_facility_kwh / (float(np.sum(it_w * dur)) / 3.6e6) if np.sum(it_w * dur) > 0 else 0.0,
            "grid_carbon_min_g_per_kwh": float(arr.carbon_g_per_kwh[: hours - 1].min()),
            "grid_carbon_max_g_per_kwh": float(arr.carbon_g_per_kwh[: hours - 1].max()),
            "capped_jobs": len(self.capped_jobs),
            "recaps": self.recaps,
            "site": self.timeline.site.name,
        }
        hub["cost_usd"] = kzt_to_usd(float(hub["cost_kzt"]), self.timeline.site.tariff.kzt_per_usd)
        return EnergyReport(hub, usage, by_hour[: hours - 1], grid, facility_w, cap_w, arr)


_SUMMED = ("it_energy_kwh", "idle_it_energy_kwh", "facility_energy_kwh", "carbon_kg", "cost_kzt", "cost_usd",
           "power_cap_w", "min_power_cap_w", "power_cap_violations", "capped_jobs", "recaps")  # fmt: skip


def combine(reports: dict[str, EnergyReport], usage: MemorySink) -> EnergyReport:
    """One report for a fleet at several sites (module docstring); series and per-hour figures are
    the sites' added together on the union of their step times; ``arrays`` are the first site's."""
    first = next(iter(reports.values()))
    times = np.unique(np.concatenate([r.times for r in reports.values()]))

    def at(r: EnergyReport, values: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(r.times, times, side="right") - 1
        return np.where(idx >= 0, values[np.maximum(idx, 0)], 0.0)

    facility_w = sum((at(r, r.facility_w) for r in reports.values()), np.zeros(len(times)))
    cap_w = sum((at(r, r.cap_w) for r in reports.values()), np.zeros(len(times)))
    hours = min(len(r.facility_kwh_by_hour) for r in reports.values())
    by_hour = sum((r.facility_kwh_by_hour[:hours] for r in reports.values()), np.zeros(hours))
    hub: dict[str, Any] = {key: sum(r.hub[key] for r in reports.values()) for key in _SUMMED}
    it_kwh = hub["it_energy_kwh"]
    hub.update(
        peak_facility_power_w=float(facility_w.max()) if len(facility_w) else 0.0,
        peak_it_power_w=max(r.hub["peak_it_power_w"] for r in reports.values()),
        hours_at_cap=max(r.hub["hours_at_cap"] for r in reports.values()),
        mean_pue=hub["facility_energy_kwh"] / it_kwh if it_kwh > 0 else 0.0,
        grid_carbon_min_g_per_kwh=min(r.hub["grid_carbon_min_g_per_kwh"] for r in reports.values()),
        grid_carbon_max_g_per_kwh=max(r.hub["grid_carbon_max_g_per_kwh"] for r in reports.values()),
        site="+".join(reports),
        sites={name: dict(r.hub) for name, r in reports.items()},
    )
    return EnergyReport(hub, usage, by_hour, times, facility_w, cap_w, first.arrays)


class EnergyReport:
    """Integrated figures: hub-wide (``hub``), per job and per tenant (the meter's records), series for plots."""

    def __init__(
        self,
        hub: dict[str, Any],
        usage: MemorySink,
        facility_kwh_by_hour: np.ndarray,
        times: np.ndarray,
        facility_w: np.ndarray,
        cap_w: np.ndarray,
        arrays: Any,
    ) -> None:
        self.hub = hub
        self.facility_kwh_by_hour = facility_kwh_by_hour
        self.times, self.facility_w, self.cap_w, self.arrays = times, facility_w, cap_w, arrays
        self.per_job: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(PER_JOB_KEYS, 0.0))
        self.per_tenant: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(PER_JOB_KEYS, 0.0))
        for r in usage.records():
            job, tenant = self.per_job[r.job_id], self.per_tenant[r.tenant]
            for key, field in PER_JOB_KEYS.items():
                v = getattr(r, field)
                job[key] += v
                tenant[key] += v
        self.jobs_it_energy_kwh = float(sum(f["it_energy_kwh"] for f in self.per_job.values()))
        usd = hub["cost_usd"] / hub["cost_kzt"] if hub["cost_kzt"] else 0.0
        for figures in (*self.per_job.values(), *self.per_tenant.values()):
            figures["cost_usd"] = figures["cost_kzt"] * usd

    def tenants(self) -> list[dict[str, Any]]:
        return [{"tenant": t, **f} for t, f in sorted(self.per_tenant.items())]

    def write_csvs(self, out_dir: Path, prefix: str) -> list[Path]:
        """``<prefix>-job-energy.csv`` and ``<prefix>-energy-by-hour.csv``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        jobs_path = out_dir / f"{prefix}-job-energy.csv"
        cols = ("it_energy_kwh", "facility_energy_kwh", "carbon_kg", "cost_kzt", "cost_usd")
        with jobs_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("job_id", *cols))
            for job_id in sorted(self.per_job):
                writer.writerow((job_id, *(f"{self.per_job[job_id][c]:.6f}" for c in cols)))
        hours_path = out_dir / f"{prefix}-energy-by-hour.csv"
        with hours_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("hour", "facility_energy_kwh", "pue", "carbon_g_per_kwh", "cap_w"))
            for h, kwh in enumerate(self.facility_kwh_by_hour.tolist()):
                writer.writerow(
                    (
                        h,
                        f"{kwh:.3f}",
                        f"{self.arrays.pue[h]:.4f}",
                        f"{self.arrays.carbon_g_per_kwh[h]:.1f}",
                        f"{self.arrays.cap_w[h]:.0f}",
                    )
                )
        return [jobs_path, hours_path]

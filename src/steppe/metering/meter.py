"""The meter: one state listener, in the twin and in the live hub, that turns running time into usage records.

A job's run is cut into *segments* ``[t0, t1)`` of constant GPU power: a segment opens when the
job starts (or its GPU cap changes: ``on_recap``) and closes when it stops (or its cap changes).
In the live hub ``charge(now)`` also cuts every running job's segment every ``charge_interval_s``,
so usage reaches the store (and the allocation ledger) while jobs run. Closed segments are kept
as columns (no integration per event); ``emit`` turns a batch of them into records at once,
vectorised with numpy:

1. **split at month ends** (UTC months of the POSIX time ``t + epoch_offset_s``): a segment that
   crosses one is cut in two (rare; these alone take a Python loop);
2. **integrate** against the site timeline with cumulative hourly arrays: with
   ``C_x(t) = integral_0^t x(s) ds`` (piecewise linear, x hourly), a segment of power P costs
   ``IT kWh = P (t1 - t0) / 3.6e6``, ``facility kWh = P (C_pue(t1) - C_pue(t0)) / 3.6e6``,
   ``kg CO2e = P (C_pue*ci(t1) - C_pue*ci(t0)) / 3.6e9`` and ``KZT = P (C_pue*tariff(t1) - ...) / 3.6e6``.
   P is the power model's (``FleetPower.gpu_power_w``: the job's GPUs at their cap, idle part
   included), or, where a ``GpuEnergyCounter`` was read at both ends, the counters' energy over
   the segment's length (source ``"nvml"``);
3. **group** per ``(job, month, GPU type)`` and hand the records to the sink.

Example: a 2-GPU job runs from 23:00 on 31 January to 01:00 on 1 February at 700 W per GPU, under
a flat PUE of 1.1: one segment, cut at midnight into two records (``2026-01`` and ``2026-02``),
each of 7,200 GPU-seconds, 1.4 IT kWh and 1.54 facility kWh.

A fleet at several sites meters each segment against the timeline of the site its job runs at
(``site_timelines``: Almaty's PUE, grid carbon and tariff for a job in Almaty).

Without a site (``timeline`` None) records carry GPU-seconds only (energy 0, source ``"none"``).
**Totals only**: without a site and counters, into a ``MemorySink`` that keeps no records (a
replay without power), nothing but GPU-seconds per tenant is wanted, so the meter keeps no
segments and makes no records: a start notes its time, a stop adds ``gpus x (now - start)`` to
its tenant's total (a cap change does not change GPU-seconds) and ``emit`` hands the totals to
the sink. Example: a 4-GPU job of tenant ``a`` that ran from 10 s to 110 s adds 400 GPU-seconds
to ``a``; nothing of the job is kept after its stop.
The twin emits in batches of ``batch`` (16,384) segments and at the end; the live hub at each step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from steppe.core.records import JobRecord
from steppe.energy.fleet import FleetPower
from steppe.energy.timeline import SiteTimeline
from steppe.metering.counters import GpuEnergyCounter
from steppe.metering.periods import next_month_starts, split_by_month
from steppe.metering.records import EnergySource, UsageRecord
from steppe.metering.sinks import MemorySink, UsageSink

BATCH = 1 << 14  # closed segments the twin keeps before it emits them (~2 MB)


class _Cumulative:
    """Cumulative hourly integrals of PUE, PUE x carbon and PUE x tariff over a site timeline, grown on demand."""

    def __init__(self, timeline: SiteTimeline) -> None:
        self.timeline = timeline
        self.hours = 0
        self.edges: np.ndarray = np.zeros(1)
        self.pue: np.ndarray = np.zeros(1)
        self.ci: np.ndarray = self.pue
        self.tariff: np.ndarray = self.pue

    def cover(self, t_s: float) -> None:
        """Make the arrays reach timeline second ``t_s``."""
        need = int(math.ceil(t_s / 3600.0)) + 1
        if need <= self.hours:
            return
        hours = max(need, 2 * self.hours, 24 * 32)
        arr = self.timeline.arrays(hours)

        def cumulative(x: np.ndarray) -> np.ndarray:
            return np.concatenate(([0.0], np.cumsum(x * 3600.0)))

        self.edges = np.arange(hours + 1) * 3600.0
        self.pue = cumulative(arr.pue)
        self.ci = cumulative(arr.pue * arr.carbon_g_per_kwh)
        self.tariff = cumulative(arr.pue * arr.tariff_kzt_per_kwh)
        self.hours = hours

    def between(self, c: np.ndarray, s0: np.ndarray, s1: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.interp(s1, self.edges, c) - np.interp(s0, self.edges, c)
        return out


@dataclass(frozen=True)
class MeterSetup:
    """How to meter, without the sink: a mode builds its meter with its own sink (``build``)."""

    fleet: FleetPower | None = None
    timeline: SiteTimeline | None = None
    epoch_offset_s: float = 0.0
    charge_interval_s: float = math.inf
    counter: GpuEnergyCounter | None = None
    site_timelines: Mapping[str, SiteTimeline] | None = None  # several sites: each one's timeline

    def build(self, sink: UsageSink) -> Meter:
        return Meter(
            sink, fleet=self.fleet, timeline=self.timeline, epoch_offset_s=self.epoch_offset_s,
            charge_interval_s=self.charge_interval_s, counter=self.counter, site_timelines=self.site_timelines,
        )  # fmt: skip


class Meter:
    """A state listener that meters running jobs into usage records; see the module docstring.

    ``epoch_offset_s`` maps the meter's clock to POSIX seconds (0 live; the timeline's start in
    the twin, whose clock counts from it). ``fleet`` and ``timeline`` give the power model and the
    site; without them only GPU-seconds are recorded. ``counter`` reads GPUs' energy counters.
    """

    def __init__(
        self,
        sink: UsageSink,
        *,
        fleet: FleetPower | None = None,
        timeline: SiteTimeline | None = None,
        epoch_offset_s: float = 0.0,
        charge_interval_s: float = math.inf,
        counter: GpuEnergyCounter | None = None,
        batch: int = BATCH,
        site_timelines: Mapping[str, SiteTimeline] | None = None,
    ) -> None:
        self.sink = sink
        self.fleet = fleet if timeline is not None else None
        self.timeline = timeline
        self.epoch_offset_s = epoch_offset_s
        self.charge_interval_s = charge_interval_s
        self.counter = counter
        self.batch = batch
        self.last_charge_s = -math.inf
        self._cum = _Cumulative(timeline) if timeline is not None else None
        self._site_cums = (
            {s: _Cumulative(tl) for s, tl in (site_timelines or {}).items()} if timeline is not None else {}
        )
        self._types: dict[str, int] = {}  # pool (GPU type, at its site with several sites) -> index
        self._type_names: list[str] = []
        self._type_sites: list[str] = []
        # open segments: job -> (t0, GPU W, counter mJ at t0 or None, GPU type index, GPUs)
        self._open: dict[int, tuple[float, float, float | None, int, int]] = {}
        self._who: dict[int, tuple[str, str]] = {}  # job -> (project, tenant)
        # closed segments, as columns
        self._job: list[int] = []
        self._t0: list[float] = []
        self._t1: list[float] = []
        self._w: list[float] = []
        self._mj: list[float] = []
        self._tix: list[int] = []
        self._gpus: list[int] = []
        # totals only (see the module docstring): GPU-seconds per tenant since the last emit
        self._totals: MemorySink | None = (
            sink if isinstance(sink, MemorySink) and not sink.keep_records and timeline is None and counter is None
            else None
        )  # fmt: skip
        self._tenant_gpu_s: dict[str, float] = {}
        self._since: dict[int, float] = {}  # totals only: running job -> when its metering began

    # -- listener ----------------------------------------------------------------------------------
    def on_submit(self, rec: JobRecord, now: float) -> None:
        """Nothing runs yet."""

    def on_start(self, rec: JobRecord, now: float) -> None:
        if self._totals is not None:
            self._since[rec.job_id] = now
            return
        self._who[rec.job_id] = (rec.spec.project, rec.spec.tenant)
        self._begin(rec, now, self.counter.read_mj(rec.job_id) if self.counter is not None else None)

    def on_recap(self, rec: JobRecord, now: float) -> None:
        if self._totals is not None:
            return  # the same GPUs: the same GPU-seconds
        reading = self._close(rec.job_id, now)
        self._begin(rec, now, reading)
        if len(self._job) >= self.batch:
            self.emit()

    def on_stop(self, rec: JobRecord, now: float) -> None:
        if self._totals is not None:
            start = self._since.pop(rec.job_id, None)  # None: it did not run (a pending job cancelled)
            if start is not None and now > start:
                self._add_gpu_s(rec.spec.tenant, rec.gpus * (now - start))
            return
        if rec.job_id in self._open:
            self._close(rec.job_id, now)
            if len(self._job) >= self.batch:
                self.emit()

    def adopt(self, rec: JobRecord, since_s: float) -> None:
        """Meter a running job from ``since_s`` on (one restored after a restart, charged until then)."""
        self.on_start(rec, since_s)

    def charge_span(self, rec: JobRecord, a_s: float, b_s: float) -> None:
        """Meter ``[a_s, b_s)`` of a job no longer running (it ended while the hub was down)."""
        if self._totals is not None:
            if b_s > a_s:
                self._add_gpu_s(rec.spec.tenant, rec.gpus * (b_s - a_s))
            self.emit()
            return
        self._who[rec.job_id] = (rec.spec.project, rec.spec.tenant)
        self._begin(rec, a_s, None)
        self._close(rec.job_id, max(a_s, b_s))
        self.emit()

    def read_baselines(self, job_ids: Iterable[int]) -> None:
        """Read the counters of jobs whose open segment has no baseline yet (their devices became known
        when the executor launched them, after the start opened the segment)."""
        if self.counter is None:
            return
        for job_id in job_ids:
            seg = self._open.get(job_id)
            if seg is not None and seg[2] is None:
                self._open[job_id] = (seg[0], seg[1], self.counter.read_mj(job_id), seg[3], seg[4])

    # -- the live hub's clock ----------------------------------------------------------------------
    def charge(self, now: float) -> bool:
        """Cut every running job's segment at ``now`` if the charge interval has passed (True if it
        did), then emit what is closed, so usage flows while jobs run."""
        cut = math.isfinite(self.charge_interval_s) and now - self.last_charge_s >= self.charge_interval_s
        if cut:
            for job_id, (t0, w, _, tix, gpus) in list(self._open.items()):
                if now > t0:
                    reading = self._close(job_id, now)
                    self._open[job_id] = (now, w, reading, tix, gpus)
            self.last_charge_s = now
        self.emit()
        return cut

    def next_charge_s(self) -> float | None:
        """When ``charge`` cuts next (None while nothing runs)."""
        return self.last_charge_s + self.charge_interval_s if self._open or self._since else None

    # -- segments ----------------------------------------------------------------------------------
    def _add_gpu_s(self, tenant: str, gpu_s: float) -> None:
        totals = self._tenant_gpu_s
        totals[tenant] = totals.get(tenant, 0.0) + gpu_s

    def _begin(self, rec: JobRecord, now: float, reading: float | None) -> None:
        pool = rec.pool or rec.gpu_type
        tix = self._types.get(pool)
        if tix is None:
            tix = self._types[pool] = len(self._type_names)
            self._type_names.append(rec.gpu_type)
            self._type_sites.append(rec.site)
        w = self.fleet.gpu_power_w(rec, rec.gpu_type, rec.cap_fraction) if self.fleet is not None else 0.0
        self._open[rec.job_id] = (now, w, reading, tix, rec.gpus)

    def _close(self, job_id: int, now: float) -> float | None:
        """Close ``job_id``'s open segment at ``now``; the counter reading there (the next baseline)."""
        t0, w, mj0, tix, gpus = self._open.pop(job_id)
        reading = self.counter.read_mj(job_id) if self.counter is not None else None
        if now > t0:
            self._job.append(job_id)
            self._t0.append(t0)
            self._t1.append(now)
            self._w.append(w)
            self._mj.append(reading - mj0 if reading is not None and mj0 is not None else math.nan)
            self._tix.append(tix)
            self._gpus.append(gpus)
        return reading

    # -- emission ----------------------------------------------------------------------------------
    def emit(self) -> None:
        """Turn the closed segments into usage records (see the module docstring) and hand them to the sink."""
        if self._totals is not None:
            if self._tenant_gpu_s:
                self._totals.add_tenant_gpu_s(self._tenant_gpu_s)
                self._tenant_gpu_s = {}
            return
        if not self._job:
            return
        job = np.asarray(self._job, dtype=np.int64)
        t0, t1 = np.asarray(self._t0), np.asarray(self._t1)
        w, mj = np.asarray(self._w), np.asarray(self._mj)
        tix, gpus = np.asarray(self._tix, dtype=np.int64), np.asarray(self._gpus, dtype=np.float64)
        for col in (self._job, self._t0, self._t1, self._w, self._mj, self._tix, self._gpus):
            col.clear()
        # 1. split at month ends
        off = self.epoch_offset_s
        src = np.arange(len(job))
        a, b = t0, t1
        cross = t1 + off > next_month_starts(t0 + off)
        if cross.any():
            keep = np.flatnonzero(~cross)
            extra_src: list[int] = []
            extra_a: list[float] = []
            extra_b: list[float] = []
            for i in np.flatnonzero(cross).tolist():
                for _, pa, pb in split_by_month(float(t0[i]) + off, float(t1[i]) + off):
                    extra_src.append(i)
                    extra_a.append(pa - off)
                    extra_b.append(pb - off)
            src = np.concatenate((keep, np.asarray(extra_src, dtype=np.int64)))
            a = np.concatenate((t0[keep], np.asarray(extra_a)))
            b = np.concatenate((t1[keep], np.asarray(extra_b)))
        dur = b - a
        gpu_s = gpus[src] * dur
        # 2. integrate
        measured_mj = mj[src] * (dur / (t1 - t0)[src])
        nvml = ~np.isnan(measured_mj)
        zeros = np.zeros(len(src))
        it_j, facility, carbon, cost = zeros, zeros, zeros, zeros
        if self._cum is not None and self.timeline is not None:
            it_j = np.where(nvml, measured_mj / 1e3, w[src] * dur)
            eff_w = np.divide(it_j, dur, out=np.zeros_like(it_j), where=dur > 0)
            if self._site_cums:  # each segment against its own site's timeline
                facility, carbon, cost = np.zeros(len(src)), np.zeros(len(src)), np.zeros(len(src))
                seg_site = np.asarray(self._type_sites, dtype=object)[tix[src]]
                for site, cum in self._site_cums.items():
                    here = seg_site == site
                    if here.any():
                        f, c, k = self._integrate(cum, eff_w[here], a[here] + off, b[here] + off)
                        facility[here], carbon[here], cost[here] = f, c, k
            else:
                facility, carbon, cost = self._integrate(self._cum, eff_w, a + off, b + off)
        # 3. group per (job, month, GPU type)
        months = (np.floor(a + off).astype("int64").astype("datetime64[s]").astype("datetime64[M]")).astype(np.int64)
        m0 = int(months.min())
        n_types = max(len(self._type_names), 1)
        span = int(months.max()) - m0 + 1
        key = (job[src] * span + (months - m0)) * n_types + tix[src]
        uniq, inv = np.unique(key, return_inverse=True)
        n = len(uniq)

        def total(x: np.ndarray) -> list[float]:
            out: list[float] = np.bincount(inv, weights=x, minlength=n).tolist()
            return out

        first = np.full(n, np.inf)
        np.minimum.at(first, inv, a)
        last = np.full(n, -np.inf)
        np.maximum.at(last, inv, b)
        n_nvml = np.bincount(inv, weights=nvml.astype(np.float64), minlength=n)
        n_all = np.bincount(inv, minlength=n)
        g_job = (uniq // n_types // span).tolist()
        g_month = ((uniq // n_types) % span + m0).astype("datetime64[M]")
        g_period = np.datetime_as_string(g_month, unit="M").tolist()
        g_type = (uniq % n_types).tolist()
        sources = self._sources(n_nvml, n_all)
        cols = (total(gpu_s), total(it_j / 3.6e6), total(facility), total(carbon), total(cost))
        records = [
            UsageRecord(
                j, *self._who[j], period, self._type_names[t], gs, it, fac, co2, kzt, source, f, lst
            )  # fmt: skip
            for j, period, t, gs, it, fac, co2, kzt, source, f, lst in zip(
                g_job, g_period, g_type, *cols, sources, first.tolist(), last.tolist(), strict=True
            )
        ]
        for j in set(g_job):
            if j not in self._open:
                del self._who[j]
        self.sink.add(records)

    @staticmethod
    def _integrate(
        cum: _Cumulative, eff_w: np.ndarray, a_utc: np.ndarray, b_utc: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Facility kWh, kg CO2e and KZT of segments ``[a, b)`` (POSIX seconds) at ``eff_w`` watts."""
        base = -cum.timeline.start_utc_s
        s0, s1 = np.maximum(a_utc + base, 0.0), np.maximum(b_utc + base, 0.0)
        cum.cover(float(s1.max()))
        facility = eff_w * cum.between(cum.pue, s0, s1) / 3.6e6
        carbon = eff_w * cum.between(cum.ci, s0, s1) / 3.6e9
        cost = eff_w * cum.between(cum.tariff, s0, s1) / 3.6e6
        return facility, carbon, cost

    def _sources(self, n_nvml: np.ndarray, n_all: np.ndarray) -> Sequence[EnergySource]:
        if self.timeline is None:
            return ["none"] * len(n_all)
        names: tuple[EnergySource, EnergySource, EnergySource] = ("model", "mixed", "nvml")
        kind = np.where(n_nvml == 0, 0, np.where(n_nvml == n_all, 2, 1))
        return [names[k] for k in kind.tolist()]

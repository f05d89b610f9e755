"""The meter on its own (``steppe.metering``): segments, month ends, the site's hourly integrals,
energy counters, batches, and the twin's figures read from its records."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from steppe.core.cluster import Cluster
from steppe.core.job import JobSpec
from steppe.core.records import JobRecord
from steppe.metering import MemorySink, Meter, UsageRecord
from steppe.metering.periods import month_start, next_month_starts
from steppe.power import build_power
from steppe.twin.replay import replay
from steppe.twin.trace import Trace

GPU = "H200"
START = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)  # the timeline's hour 0; February begins at hour 4


def running(job_id: int, gpus: int, cap: float = 1.0, tenant: str = "kaznu") -> JobRecord:
    rec = JobRecord(JobSpec(job_id, 0.0, gpus, 3600.0, 3600.0, tenant), seq=job_id)
    rec.gpu_type, rec.cap_fraction = GPU, cap
    return rec


def site_meter(sink: MemorySink, **kw: object) -> Meter:
    power = build_power(Cluster.uniform(1, 8, GPU), "astana", enforce=False, start=START)
    return Meter(sink, fleet=power.fleet, timeline=power.timeline, epoch_offset_s=START.timestamp(), **kw)  # type: ignore[arg-type]


def hourly(meter: Meter, watts: float, t0: float, t1: float) -> tuple[float, float, float]:
    """(facility kWh, kg CO2e, KZT) of ``watts`` over ``[t0, t1)``, summed hour by hour (the slow way)."""
    tl = meter.timeline
    assert tl is not None
    fac = co2 = kzt = 0.0
    h = math.floor(t0 / 3600.0)
    while h * 3600.0 < t1:
        a, b = max(t0, h * 3600.0), min(t1, (h + 1) * 3600.0)
        kwh = watts * (b - a) / 3.6e6 * tl.pue_at(h * 3600.0)
        fac, co2, kzt = (
            fac + kwh,
            co2 + kwh * tl.carbon_g_per_kwh_at(h * 3600.0) / 1e3,
            kzt + kwh * tl.tariff_kzt_per_kwh_at(h * 3600.0),
        )
        h += 1
    return fac, co2, kzt


def test_a_run_across_a_month_end_becomes_two_records_that_add_up_to_the_hourly_integral() -> None:
    sink = MemorySink()
    meter = site_meter(sink)
    rec = running(1, 2)
    meter.on_start(rec, 1800.0)  # 20:30 UTC on 31 January
    meter.on_stop(rec, 6 * 3600.0 + 900.0)  # 02:15 UTC on 1 February
    meter.emit()
    jan, feb = sink.records()
    assert (jan.period, feb.period) == ("2026-01", "2026-02")
    assert (jan.first_s, jan.last_s, feb.first_s, feb.last_s) == (1800.0, 4 * 3600.0, 4 * 3600.0, 6 * 3600.0 + 900.0)
    assert jan.gpu_seconds == pytest.approx(2 * (4 * 3600.0 - 1800.0))
    watts = meter.fleet.gpu_power_w(rec, GPU, 1.0)  # type: ignore[union-attr]
    for r in (jan, feb):
        assert r.source == "model"
        assert r.it_kwh == pytest.approx(watts * (r.last_s - r.first_s) / 3.6e6)
        assert (r.facility_kwh, r.carbon_kg, r.cost_kzt) == pytest.approx(hourly(meter, watts, r.first_s, r.last_s))


def test_a_cap_change_cuts_the_segment_at_the_new_power() -> None:
    sink = MemorySink()
    meter = site_meter(sink)
    rec = running(1, 4)
    full = meter.fleet.gpu_power_w(rec, GPU, 1.0)  # type: ignore[union-attr]
    meter.on_start(rec, 0.0)
    rec.cap_fraction = 0.6
    meter.on_recap(rec, 1000.0)
    meter.on_stop(rec, 3000.0)
    meter.emit()
    (r,) = sink.records()
    capped = meter.fleet.gpu_power_w(rec, GPU, 0.6)  # type: ignore[union-attr]
    assert capped < full
    assert r.it_kwh == pytest.approx((full * 1000.0 + capped * 2000.0) / 3.6e6)
    assert r.gpu_seconds == pytest.approx(4 * 3000.0)


def test_without_a_site_only_gpu_seconds_are_metered() -> None:
    sink = MemorySink()
    meter = Meter(sink, epoch_offset_s=month_start(2026, 3))
    rec = running(7, 3, tenant="enu")
    meter.on_start(rec, 10.0)
    meter.on_stop(rec, 110.0)
    meter.emit()
    assert sink.records() == [
        UsageRecord(7, "enu", "enu", "2026-03", GPU, 300.0, 0.0, 0.0, 0.0, 0.0, "none", 10.0, 110.0)
    ]
    assert sink.tenant_gpu_s == {"enu": 300.0}


def test_batches_and_charges_give_the_same_records_as_one_emission() -> None:
    def run(**kw: object) -> list[UsageRecord]:
        sink = MemorySink()
        meter = site_meter(sink, **kw)
        recs = [running(i, 1 + i % 3) for i in range(1, 30)]
        for i, rec in enumerate(recs):
            meter.on_start(rec, 100.0 * i)
        for t in range(0, 20_000, 700):
            meter.charge(float(t))
        for i, rec in enumerate(recs):
            meter.on_stop(rec, 20_000.0 + 333.0 * i)
        meter.emit()
        return sink.records()

    one = run()
    for other in (run(batch=1), run(batch=7, charge_interval_s=1000.0)):
        assert [(r.job_id, r.period) for r in other] == [(r.job_id, r.period) for r in one]
        for a, b in zip(one, other, strict=True):
            assert (b.gpu_seconds, b.it_kwh, b.facility_kwh, b.carbon_kg, b.cost_kzt) == pytest.approx(
                (a.gpu_seconds, a.it_kwh, a.facility_kwh, a.carbon_kg, a.cost_kzt), rel=1e-9
            )
            assert (b.first_s, b.last_s) == (a.first_s, a.last_s)


class FakeEnergyCounter:
    """A test double of a GPU energy counter: each job's GPUs draw ``watts``; ``readable`` jobs only."""

    def __init__(self, watts: float) -> None:
        self.watts = watts
        self.now = 0.0
        self.readable: set[int] = set()

    def read_mj(self, job_id: int) -> float | None:
        return 1e9 + self.watts * 1e3 * self.now if job_id in self.readable else None


def test_energy_counters_give_the_it_energy_and_say_so() -> None:
    sink = MemorySink()
    counter = FakeEnergyCounter(watts=1234.0)
    meter = site_meter(sink, counter=counter, charge_interval_s=600.0)
    a, b, c = running(1, 2), running(2, 2), running(3, 2)
    counter.readable = {1}
    for rec in (a, b, c):
        meter.on_start(rec, 0.0)
    counter.now = 600.0
    counter.readable = {1, 3}  # c's counters read from now on: its first segment is modelled
    meter.charge(600.0)
    counter.now = 1200.0
    for rec in (a, b, c):
        meter.on_stop(rec, 1200.0)
    meter.emit()
    by_job = {r.job_id: r for r in sink.records()}
    assert (by_job[1].source, by_job[2].source, by_job[3].source) == ("nvml", "model", "mixed")
    assert by_job[1].it_kwh == pytest.approx(1234.0 * 1200.0 / 3.6e6)
    assert by_job[3].it_kwh == pytest.approx(by_job[2].it_kwh / 2 + 1234.0 * 600.0 / 3.6e6)
    pue = meter.timeline.pue_at(0.0)  # type: ignore[union-attr]
    assert by_job[1].facility_kwh == pytest.approx(by_job[1].it_kwh * pue)


def test_next_month_starts_is_the_first_second_of_the_next_utc_month() -> None:
    import numpy as np

    t = np.array([month_start(2026, 12) + 1.0, month_start(2026, 2) - 0.5])
    assert next_month_starts(t).tolist() == [month_start(2027, 1), month_start(2026, 2)]


def test_the_twin_reads_tenant_gpu_hours_and_energy_from_the_meter() -> None:
    cluster = Cluster.uniform(1, 8, GPU)
    jobs = [JobSpec(i, 600.0 * i, 1 + i % 4, 5000.0, 7200.0, ("a", "b")[i % 2]) for i in range(1, 9)]
    power = build_power(cluster, "astana", power_cap_w=1e6, start=START)
    result = replay(Trace("small", jobs), cluster, "fifo", power=power)
    records = result.metrics.usage.records()
    assert {r.period for r in records} == {"2026-01", "2026-02"}
    gpu_s = {t: sum(r.gpu_seconds for r in records if r.tenant == t) for t in ("a", "b")}
    assert {t["tenant"]: t["gpu_hours"] for t in result.metrics.tenants()} == pytest.approx(
        {t: s / 3600.0 for t, s in gpu_s.items()}
    )
    assert gpu_s == pytest.approx({t: sum(j.gpus * 5000.0 for j in jobs if j.tenant == t) for t in ("a", "b")})
    assert result.energy is not None
    for t in result.energy.tenants():
        assert t["it_energy_kwh"] == pytest.approx(sum(r.it_kwh for r in records if r.tenant == t["tenant"]))
    s = result.summary
    assert result.energy.jobs_it_energy_kwh + s["idle_it_energy_kwh"] == pytest.approx(s["it_energy_kwh"], rel=1e-9)


def test_a_sink_that_keeps_no_records_still_counts_tenants() -> None:
    sink = MemorySink(keep_records=False)
    meter = Meter(sink)
    rec = running(1, 2)
    meter.on_start(rec, 0.0)
    meter.on_stop(rec, 50.0)
    meter.emit()
    assert sink.records() == [] and sink.tenant_gpu_s == {"kaznu": 100.0}


def test_no_nvml_counter_where_no_driver_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from steppe.metering import counters

    monkeypatch.setattr(counters, "NVIDIA_CTL", "/nonexistent/nvidiactl")
    assert counters.open_nvml_counter(lambda job_id: [0]) is None  # the meter then uses the power model


def test_the_nvml_counter_sums_a_jobs_devices_and_reads_none_when_they_fail() -> None:
    from steppe.metering import NvmlEnergyCounter

    class FakeNvml:
        """A test double of the pynvml module: device i has counted 1000 * (i + 1) mJ; device 9 fails."""

        def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
            return i

        def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
            if handle == 9:
                raise RuntimeError("NVMLError_NotSupported")
            return 1000 * (handle + 1)

    devices = {1: [0, 2], 2: [9], 3: None}
    counter = NvmlEnergyCounter(FakeNvml(), devices.get)
    assert counter.read_mj(1) == 4000.0
    assert counter.read_mj(2) is None and counter.read_mj(3) is None


class _NoRecords(MemorySink):
    """A sink that keeps no records and refuses any: the totals-only meter makes none."""

    def __init__(self) -> None:
        super().__init__(keep_records=False)

    def add(self, records: object) -> None:
        raise AssertionError("no records in totals-only metering")


def test_without_a_site_into_a_sink_that_keeps_no_records_the_meter_keeps_totals_only() -> None:
    sink = _NoRecords()
    meter = Meter(sink)
    a, b, c = running(1, 2), running(2, 4, tenant="other"), running(3, 8)
    meter.on_start(a, 0.0)
    meter.on_start(b, 10.0)
    meter.on_recap(a, 20.0)  # the same GPUs: the same GPU-seconds
    meter.on_stop(a, 50.0)
    meter.on_stop(c, 60.0)  # never ran (a pending job cancelled): nothing
    meter.on_stop(b, 110.0)
    meter.emit()
    assert sink.tenant_gpu_s == {"kaznu": 100.0, "other": 400.0}
    meter.on_start(a, 200.0)
    meter.on_stop(a, 210.0)
    meter.emit()
    assert sink.tenant_gpu_s["kaznu"] == 120.0 and meter.next_charge_s() is None


def test_a_replay_without_power_counts_the_same_tenant_gpu_seconds_as_per_job_records() -> None:
    jobs = [JobSpec(i, float(i), 1 + i % 3, 100.0 + 7 * i, 500.0, "ab"[i % 2]) for i in range(1, 40)]
    result = replay(Trace("t", jobs), Cluster.uniform(1, 4, GPU), "fifo", keep_jobs=True)
    expected: dict[str, float] = {}
    for rec in result.state.jobs.values():
        if rec.end_s is not None:
            expected[rec.spec.tenant] = expected.get(rec.spec.tenant, 0.0) + rec.gpus * rec.executed_s
    assert dict(result.metrics.usage.tenant_gpu_s) == pytest.approx(expected)

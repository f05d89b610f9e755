"""The one meter in the live hub: usage records with energy in the store, NVML counters where they
read, and the twin and the live loop agreeing record for record on a replayed excerpt.

In process (``LoopHarness``: temporary SQLite, mock executor, fake clock). The excerpt is the first
40 jobs of the bundled Philly sample on one 4 x H200 node at astana, so jobs queue; it starts at
18:00 UTC on 31 January 2027, so runs cross a month end and are split into two records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from steppe.control.harness import FakeClock, LoopHarness
from steppe.core.cluster import Cluster
from steppe.core.job import JobSpec
from steppe.core.records import JobRecord
from steppe.metering import GpuEnergyCounter, MeterSetup
from steppe.power import build_power, live_power
from steppe.store.schema import usage_records
from steppe.twin.readers import load_trace
from steppe.twin.replay import replay
from steppe.twin.trace import Trace

T0 = datetime(2027, 1, 31, 18, 0, tzinfo=UTC).timestamp()  # 23:00 at astana, a whole hour; February in 6 h
GPU, GPUS = "H200", 4
FIGURES = ("gpu_seconds", "it_kwh", "facility_kwh", "carbon_kg", "cost_kzt")
Totals = dict[int, dict[str, float]]


def excerpt(n: int = 40) -> list[JobSpec]:
    """The first ``n`` jobs of the Philly sample, from time 0, all of project kaznu/nlp, at most 4 GPUs."""
    jobs = load_trace("philly-sample").jobs[:n]
    t0 = jobs[0].submit_s
    return [
        JobSpec(i, j.submit_s - t0, min(j.gpus, GPUS), j.runtime_s, j.walltime_s, "kaznu", "kaznu/nlp")
        for i, j in enumerate(jobs, start=1)
    ]


def run_twin(jobs: list[JobSpec]) -> Totals:
    cluster = Cluster.uniform(1, GPUS, GPU)
    power = build_power(cluster, "astana", power_cap_w=1e6, start=datetime.fromtimestamp(T0, UTC))
    result = replay(Trace("excerpt", jobs), cluster, "easy-backfill", power=power)
    assert result.summary["unfinished"] == 0
    out: Totals = defaultdict(lambda: dict.fromkeys(FIGURES, 0.0))
    for r in result.metrics.usage.records():
        assert r.source == "model"
        for f in FIGURES:
            out[r.job_id][f] += getattr(r, f)
    return dict(out)


def live_harness(
    tmp_path: Path, counter: GpuEnergyCounter | None = None, clock: FakeClock | None = None
) -> LoopHarness:
    """A 4 x H200 hub at astana under a cap that never binds, metered every 600 s."""
    cluster = Cluster.uniform(1, GPUS, GPU)
    power = live_power(cluster, "astana", T0, power_cap_w=1e6)
    metering = MeterSetup(power.fleet, power.timeline, 0.0, 600.0, counter)
    return LoopHarness(tmp_path, gpus=GPUS, gpu_type=GPU, clock=clock or FakeClock(T0), power=power.budget,
                       metering=metering)  # fmt: skip


def run_live(h: LoopHarness, jobs: list[JobSpec]) -> None:
    """Submit each job at its time, end each at its start + run time, step at every such moment."""
    submits = sorted(jobs, key=lambda j: (j.submit_s, j.job_id))
    ends: dict[int, float] = {}
    runtime = {j.job_id: j.runtime_s for j in jobs}
    seen = 0
    i = 0
    while i < len(submits) or ends:
        t = min([T0 + submits[i].submit_s] if i < len(submits) else [], default=float("inf"))
        t = min([t, *ends.values()])
        h.clock.advance(t - h.clock())
        for job_id in sorted(j for j, end in ends.items() if end == t):
            del ends[job_id]
            h.executor.end(job_id, 0, 0, t)
        while i < len(submits) and T0 + submits[i].submit_s == t:
            assert h.submit(gpus=submits[i].gpus, walltime_s=submits[i].walltime_s) == submits[i].job_id
            i += 1
        assert h.step()
        for kind, job_id in h.executor.calls[seen:]:
            if kind == "start":
                ends[job_id] = t + runtime[job_id]
        seen = len(h.executor.calls)
    h.step(1.0)


def stored(h: LoopHarness) -> tuple[Totals, list[tuple[int, str, str]]]:
    out: Totals = defaultdict(lambda: dict.fromkeys(FIGURES, 0.0))
    with h.store.read() as conn:
        rows = list(conn.execute(select(usage_records)).mappings())
    for row in rows:
        for f in FIGURES:
            out[row["job_id"]][f] += row[f]
    return dict(out), [(row["job_id"], row["period"], row["energy_source"]) for row in rows]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[LoopHarness]:
    h = live_harness(tmp_path)
    yield h
    h.close()


def test_the_twin_and_the_live_hub_meter_a_replayed_excerpt_alike(harness: LoopHarness) -> None:
    jobs = excerpt()
    twin = run_twin(jobs)
    run_live(harness, jobs)
    live, rows = stored(harness)
    assert set(live) == set(twin) == {j.job_id for j in jobs}
    for job_id, figures in twin.items():
        for f in FIGURES:
            assert live[job_id][f] == pytest.approx(figures[f], rel=1e-6, abs=1e-12), (job_id, f)
    assert {source for _, _, source in rows} == {"model"}
    assert {period for _, period, _ in rows} == {"2027-01", "2027-02"}  # split at the month end
    totals = {f: sum(t[f] for t in twin.values()) for f in FIGURES}
    print("excerpt totals, twin:", {f: round(v, 6) for f, v in totals.items()})
    print("excerpt totals, live:", {f: round(sum(t[f] for t in live.values()), 6) for f in FIGURES})


def test_usage_reaches_the_store_while_a_job_runs(harness: LoopHarness) -> None:
    a = harness.submit(gpus=2, walltime_s=7200.0)
    assert harness.step()
    assert harness.step(600.0)  # a charge interval later: the meter cut the running job's segment
    live, rows = stored(harness)
    assert live[a]["gpu_seconds"] == pytest.approx(1200.0)
    assert live[a]["it_kwh"] > 0 and live[a]["facility_kwh"] > live[a]["it_kwh"]
    assert rows == [(a, "2027-01", "model")]
    assert harness.job(a)["charged_until_s"] == pytest.approx(T0 + 600.0)
    ledger = harness.loop.ledger
    assert ledger.used_s[("kaznu/nlp", "2027-01")] == pytest.approx(1200.0)
    assert ledger.energy["kaznu/nlp"][0] == pytest.approx(live[a]["it_kwh"])


class FakeEnergyCounter:
    """A test double of the GPUs' energy counters (NVML's ``nvmlDeviceGetTotalEnergyConsumption``):
    every job's GPUs draw ``watts`` in all; ``known`` lists the jobs whose devices can be read."""

    def __init__(self, clock: FakeClock, watts: float) -> None:
        self.clock = clock
        self.watts = watts
        self.known: set[int] | None = None  # None: every job

    def read_mj(self, job_id: int) -> float | None:
        if self.known is not None and job_id not in self.known:
            return None
        return 5e9 + self.watts * 1e3 * (self.clock() - T0)  # millijoules since the driver loaded


def test_the_live_meter_uses_the_gpus_energy_counters_where_they_read(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    counter = FakeEnergyCounter(clock, watts=900.0)
    h = live_harness(tmp_path, counter, clock)
    a = h.submit(gpus=2, walltime_s=7200.0)
    assert h.step()
    assert h.step(1200.0)
    live, rows = stored(h)
    assert rows == [(a, "2027-01", "nvml")]
    assert live[a]["it_kwh"] == pytest.approx(900.0 * 1200.0 / 3.6e6)  # the counters' 900 W, not the model's
    pue = h.loop.meter.timeline.pue_at(0.0)  # type: ignore[union-attr]  # 23:00-00:00 local: one hour
    assert live[a]["facility_kwh"] == pytest.approx(live[a]["it_kwh"] * pue)
    h.close()


def test_counters_are_read_from_the_launch_on_and_a_job_they_cannot_read_is_modelled(tmp_path: Path) -> None:
    """The start opens a job's segment before the executor gives it devices: the loop reads the
    counters' baseline right after the launch, so the whole run is measured."""
    clock = FakeClock(T0)
    counter = FakeEnergyCounter(clock, watts=900.0)
    counter.known = set()
    h = live_harness(tmp_path, counter, clock)
    a = h.submit(gpus=1, walltime_s=7200.0)
    b = h.submit(gpus=1, walltime_s=7200.0)
    h.executor.start = launching(h, counter, only=a)  # type: ignore[method-assign]
    assert h.step()
    assert h.step(600.0)
    assert h.step(600.0)
    live, rows = stored(h)
    assert sorted(rows) == [(a, "2027-01", "nvml"), (b, "2027-01", "model")]
    assert live[a]["it_kwh"] == pytest.approx(900.0 * 1200.0 / 3.6e6)
    h.close()


def launching(h: LoopHarness, counter: FakeEnergyCounter, only: int) -> Any:
    """The mock executor's start, after which job ``only``'s devices can be read (as the local executor's)."""
    start = h.executor.start

    def launch(rec: JobRecord, now: float) -> None:
        start(rec, now)
        if rec.job_id == only:
            assert counter.known is not None
            counter.known.add(only)

    return launch


def test_without_a_counter_the_source_is_model_and_without_a_site_none(tmp_path: Path) -> None:
    h = live_harness(tmp_path)
    a = h.submit(gpus=1, walltime_s=60.0)
    assert h.step()
    h.executor.end(a, 0, 0, h.clock() + 30.0)
    assert h.step(30.0)
    assert stored(h)[1] == [(a, "2027-01", "model")]
    h.close()
    (tmp_path / "bare").mkdir()
    bare = LoopHarness(tmp_path / "bare", gpus=GPUS, gpu_type=GPU, clock=FakeClock(T0))  # no metering setup
    b = bare.submit(gpus=1, walltime_s=60.0)
    assert bare.step()
    bare.executor.end(b, 0, 0, bare.clock() + 30.0)
    assert bare.step(30.0)
    live, rows = stored(bare)
    assert rows == [(b, "2027-01", "none")] and live[b]["gpu_seconds"] == pytest.approx(30.0)
    assert live[b]["it_kwh"] == 0.0
    bare.close()


def test_metrics_count_each_projects_energy(harness: LoopHarness) -> None:
    from steppe.api.metrics import HubCollector
    from steppe.control.views import ReadModelPublisher

    reads = ReadModelPublisher(harness.loop)

    a = harness.submit(gpus=2, walltime_s=7200.0)
    assert harness.step()
    assert harness.step(600.0)
    live, _ = stored(harness)
    reads.publish()  # the harness has no loop thread: publish what the metrics read
    samples = {
        (s.name, s.labels.get("project")): s.value
        for m in HubCollector(harness.loop, reads).collect()
        for s in m.samples
    }
    assert samples[("hub_it_energy_kwh_total", "kaznu/nlp")] == pytest.approx(live[a]["it_kwh"])
    assert samples[("hub_facility_energy_kwh_total", "kaznu/nlp")] == pytest.approx(live[a]["facility_kwh"])
    assert samples[("hub_carbon_kg_total", "kaznu/nlp")] == pytest.approx(live[a]["carbon_kg"])
    assert samples[("hub_energy_cost_kzt_total", "kaznu/nlp")] == pytest.approx(live[a]["cost_kzt"])
    harness.restart()  # the totals come back from the store
    reads = ReadModelPublisher(harness.loop)
    reads.publish()
    samples = {
        (s.name, s.labels.get("project")): s.value
        for m in HubCollector(harness.loop, reads).collect()
        for s in m.samples
    }
    assert samples[("hub_it_energy_kwh_total", "kaznu/nlp")] == pytest.approx(live[a]["it_kwh"])

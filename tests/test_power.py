"""Scheduling under the facility power cap: capping, holding, shedding, deferral, energy accounting."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from builders import Hub, job

from steppe.core.cluster import Cluster, QosSpec
from steppe.core.cluster_config import load_cluster
from steppe.core.errors import SteppeError
from steppe.core.job import JobState, PendingReason, WorkloadClass
from steppe.core.records import JobRecord
from steppe.energy.fleet import FleetPower
from steppe.executors.fake import FakeExecutor
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.deferral import DeferralCheck
from steppe.scheduling.power import ConstantLimits, PowerBudget
from steppe.twin.deferral import deferral_savings, mark_deferrable
from steppe.twin.power import build_power
from steppe.twin.readers import load_trace
from steppe.twin.readers.synthetic import SyntheticSpec, generate_synthetic
from steppe.twin.replay import replay
from steppe.twin.trace import Trace


def powered_hub(cap_w: float, capping: bool, policy: str = "easy-backfill", nodes: int = 2) -> tuple[Hub, PowerBudget]:
    cluster = Cluster(
        "t",
        Cluster.uniform(nodes, 8, "H200").nodes,
        {},
        {"normal": QosSpec("normal"), "serve": QosSpec("serve", latency_critical=True)},
    )
    fleet = FleetPower(cluster)
    budget = PowerBudget(fleet, ConstantLimits(cap_w), fleet.static_it_w(), capping=capping, floor=0.6)
    return Hub(cluster, policy, power=budget), budget


def per_gpu_added(cap: float) -> float:
    probe = JobRecord(job(0, 1), 0)
    cluster = Cluster.uniform(1, 8, "H200")
    return FleetPower(cluster).added_w(probe, "H200", cap)


# -- admission under the cap -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("capping", "expect_start", "expect_cap"),
    [(True, True, 0.6), (False, False, None)],
)
def test_capping_starts_a_job_that_holding_keeps_waiting(
    capping: bool, expect_start: bool, expect_cap: float | None
) -> None:
    full, floor = per_gpu_added(1.0), per_gpu_added(0.6)
    hub0, _ = powered_hub(1e12, capping)
    static = FleetPower(hub0.cluster).static_it_w()
    # room for 8 GPUs at full power plus 4 GPUs at the floor, not 12 at full power
    hub, budget = powered_hub(static + 8 * full + 4 * floor + 1.0, capping)
    hub.submit(job(1, 8, runtime=1000.0))
    assert hub.started(hub.step(now=0.0)) == [1]
    hub.submit(job(2, 4, runtime=100.0, submit=1.0), at=1.0)
    plan = hub.step(now=1.0)
    assert (hub.started(plan) == [2]) is expect_start
    if expect_start:
        assert plan.starts[0].cap_fraction == pytest.approx(expect_cap)
    else:
        assert hub.state.jobs[2].reason is PendingReason.POWER_CAP


def test_capping_caps_running_jobs_to_make_room() -> None:
    full, floor = per_gpu_added(1.0), per_gpu_added(0.6)
    hub, budget = powered_hub(1e12, True)
    # two full-power 4-GPU jobs start, then the cap tightens
    hub.submit(job(1, 4, runtime=1000.0), job(2, 4, runtime=1000.0))
    hub.step(now=0.0)
    budget.limits.cap_w = budget.static_it_w + 8 * full + 0.5 * (8 * full - 8 * floor)  # type: ignore[attr-defined]
    hub.submit(job(3, 4, runtime=100.0, submit=1.0), at=1.0)
    plan = hub.step(now=1.0)
    assert hub.started(plan) == [3]
    assert plan.recaps, "running jobs were capped to make room"
    draw = budget.static_it_w + hub.state.power_draw_w
    assert draw <= budget.limits.cap_w + 1e-6  # type: ignore[attr-defined]


def test_latency_critical_job_is_never_capped() -> None:
    full = per_gpu_added(1.0)
    hub, budget = powered_hub(1e12, True)
    budget.limits.cap_w = budget.static_it_w + 8 * full + 4 * full * 0.9  # type: ignore[attr-defined]
    hub.submit(job(1, 8, runtime=1000.0, qos="serve"))
    assert hub.started(hub.step(now=0.0)) == [1]
    hub.submit(job(2, 4, runtime=100.0, submit=1.0, qos="serve"), at=1.0)
    plan = hub.step(now=1.0)
    assert plan.starts == [] and plan.recaps == []
    assert hub.state.jobs[2].reason is PendingReason.POWER_CAP
    assert hub.state.jobs[1].cap_fraction == 1.0


def test_shedding_gets_under_a_falling_cap_within_one_cycle() -> None:
    full, floor = per_gpu_added(1.0), per_gpu_added(0.6)
    hub, budget = powered_hub(1e12, True)
    hub.submit(job(1, 8, runtime=1000.0, qos="serve"), job(2, 8, runtime=1000.0))
    hub.step(now=0.0)
    # the cap drops to less than job 1 at full power plus job 2 at its floor: capping is not enough
    budget.limits.cap_w = budget.static_it_w + 8 * full + 8 * floor * 0.5  # type: ignore[attr-defined]
    plan = hub.step(now=10.0)
    assert plan.recaps and plan.preemptions == [2]
    assert hub.state.jobs[2].state is JobState.PENDING
    assert hub.state.jobs[1].cap_fraction == 1.0  # latency-critical: never capped
    assert budget.static_it_w + hub.state.power_draw_w <= budget.limits.cap_w + 1e-6  # type: ignore[attr-defined]


# -- replays: the cap is never exceeded, energy is conserved ------------------------------------------
@pytest.fixture(scope="module")
def busy_trace() -> Trace:
    return generate_synthetic(SyntheticSpec(jobs=800, arrival_rate_per_h=60.0, tenants=3, seed=5))


@pytest.mark.parametrize("policy", ["fifo", "easy-backfill", "multifactor", "las", "srtf"])
@pytest.mark.parametrize("capping", [True, False])
def test_replay_never_exceeds_the_cap_and_conserves_energy(policy: str, capping: bool, busy_trace: Trace) -> None:
    cluster = load_cluster("4x8:H200")
    fleet = FleetPower(cluster)
    cap_w = (fleet.static_it_w() + 0.6 * (fleet.peak_it_w() - fleet.static_it_w())) * 1.1
    power = build_power(cluster, "almaty", power_cap_w=cap_w, capping=capping, start="2026-07-01T00:00")
    result = replay(busy_trace, cluster, policy, power=power)  # raises if the draw ever passes the cap
    s = result.summary
    assert s["power_cap_violations"] == 0
    assert s["peak_facility_power_w"] <= s["power_cap_w"] * (1 + 1e-9)
    assert s["hours_at_cap"] > 0
    assert result.energy is not None
    assert result.energy.jobs_it_energy_kwh + s["idle_it_energy_kwh"] == pytest.approx(s["it_energy_kwh"], rel=1e-9)
    assert s["facility_energy_kwh"] > s["it_energy_kwh"]
    assert s["jobs"] + s["rejected"] == len(busy_trace.jobs) and s["unfinished"] == 0


def test_per_job_capping_beats_holding_on_mean_jct() -> None:
    trace = load_trace("philly-sample")
    cluster = load_cluster("hub-sample")
    held = replay(
        trace, cluster, "easy-backfill", power=build_power(cluster, "astana", power_cap_w=45e3, capping=False)
    )
    capped = replay(trace, cluster, "easy-backfill", power=build_power(cluster, "astana", power_cap_w=45e3))
    assert capped.summary["mean_jct_s"] < 0.8 * held.summary["mean_jct_s"]
    assert capped.summary["capped_jobs"] > 0 and held.summary["capped_jobs"] == 0
    assert capped.summary["power_cap_violations"] == held.summary["power_cap_violations"] == 0


def test_latency_critical_jobs_never_capped_in_a_replay(busy_trace: Trace) -> None:
    jobs = [
        replace(j, qos="serve", workload=WorkloadClass.INFERENCE) if j.job_id % 4 == 0 else j for j in busy_trace.jobs
    ]
    base = load_cluster("4x8:H200")
    cluster = Cluster(base.name, base.nodes, {}, {"normal": QosSpec("normal"), "serve": QosSpec("serve", 100.0, True)})
    fleet = FleetPower(cluster)
    cap_w = (fleet.static_it_w() + 0.5 * (fleet.peak_it_w() - fleet.static_it_w())) * 1.1
    caps: dict[int, set[float]] = {}

    class CapLog:
        def on_submit(self, rec: JobRecord, now: float) -> None: ...
        def on_start(self, rec: JobRecord, now: float) -> None:
            caps.setdefault(rec.job_id, set()).add(rec.cap_fraction)

        def on_recap(self, rec: JobRecord, now: float) -> None:
            caps.setdefault(rec.job_id, set()).add(rec.cap_fraction)

        def on_stop(self, rec: JobRecord, now: float) -> None: ...

    power = build_power(cluster, "astana", power_cap_w=cap_w, start="2026-07-01T00:00")
    result = replay(Trace("t", jobs), cluster, "easy-backfill", power=power, listeners=[CapLog()])
    critical = [j.job_id for j in jobs if j.qos == "serve"]
    assert all(caps[j] == {1.0} for j in critical)
    assert any(min(c) < 1.0 for j, c in caps.items() if j not in set(critical))
    assert result.summary["power_cap_violations"] == 0


def test_fake_executor_stretches_the_rest_of_a_job_when_capped() -> None:
    ends: list[tuple[float, JobState]] = []
    rec = JobRecord(job(1, 1, runtime=100.0, walltime=1000.0), 1)
    stretch = {1.0: 1.0, 0.7: 1.05}
    ex = FakeExecutor(lambda t, j, tok, st: ends.append((t, st)), lambda r: stretch[r.cap_fraction])
    rec.state = JobState.RUNNING
    ex.start(rec, 0.0)
    rec.cap_fraction = 0.7
    ex.recap(rec, 50.0)
    assert ends[-1][0] == pytest.approx(50.0 + 50 * 1.05) and ends[-1][1] is JobState.COMPLETED


def test_a_cap_below_the_idle_fleet_is_refused() -> None:
    with pytest.raises(SteppeError, match="below the idle fleet"):
        build_power(load_cluster("80x8:H200"), "astana", power_cap_w=50e3)


# -- deferral ---------------------------------------------------------------------------------------
class StepSignal:
    """800 everywhere except 600 between 02:00 and 06:00."""

    def mean_over(self, t0: float, t1: float) -> float:
        lo0, lo1 = 2 * 3600.0, 6 * 3600.0
        overlap = max(0.0, min(t1, lo1) - max(t0, lo0))
        return (800.0 * (t1 - t0) - 200.0 * overlap) / (t1 - t0)


def test_lowest_window_picks_the_cleanest_hours() -> None:
    check = DeferralCheck(StepSignal(), "lowest-window")
    rec = JobRecord(job(1, 1, runtime=3600.0, walltime=7200.0, deferrable=True, deadline_s=8 * 3600.0), 1)
    assert check.begin_time(rec) == 2 * 3600.0
    tight = JobRecord(job(2, 1, walltime=7200.0, deferrable=True, deadline_s=7200.0), 2)
    assert check.begin_time(tight) == 0.0  # no slack: runs now
    assert DeferralCheck(StepSignal(), "run-now").begin_time(rec) == 0.0


def test_deferred_jobs_wait_with_begintime_and_meet_their_deadline() -> None:
    cluster = load_cluster("4x8:H200")
    trace = mark_deferrable(load_trace("philly-sample", limit=400), 0.5, 24 * 3600.0, seed=1)
    power = build_power(cluster, "astana", enforce=False, start="2026-04-01T00:00")
    from steppe.energy.signals import TimelineSignal

    signal = TimelineSignal(power.timeline, "carbon")
    base = replay(
        trace, cluster, "easy-backfill", power=power, checks=(*DEFAULT_CHECKS, DeferralCheck(signal, "run-now"))
    )
    power2 = build_power(cluster, "astana", enforce=False, start="2026-04-01T00:00")
    check = DeferralCheck(signal, "lowest-window")
    deferred = replay(trace, cluster, "easy-backfill", power=power2, checks=(*DEFAULT_CHECKS, check), keep_jobs=True)
    rows = {r[0]: r for r in deferred.metrics.rows}
    for spec in trace.jobs:
        if spec.deferrable:
            start = rows[spec.job_id][6]
            assert start >= check.begin_time(deferred.state.jobs[spec.job_id]) - 1e-6
    out = deferral_savings(base, deferred, signal.spread(0.0, deferred.summary["makespan_s"]), "carbon")
    assert out["deferrable_jobs"] > 100
    assert out["carbon_kg_lowest_window"] <= out["carbon_kg_run_now"] * 1.001
    assert "nearly flat" in out["verdict"]  # Kazakhstan's grid: honest about small savings


def test_cli_power_cap_adds_energy_keys_to_json() -> None:
    code = "import sys; from steppe.cli.main import main; sys.argv[0] = 'steppe'; main()"
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "simulate",
            "--trace",
            "philly-sample",
            "--cluster",
            "hub-sample",
            "--limit",
            "300",
            "--site",
            "astana",
            "--power-cap",
            "45kW",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in (
        "it_energy_kwh",
        "facility_energy_kwh",
        "peak_facility_power_w",
        "power_cap_w",
        "hours_at_cap",
        "carbon_kg",
        "cost_kzt",
    ):
        assert key in data, key
    assert data["power_cap_w"] == 45e3 and data["peak_facility_power_w"] <= 45e3 * (1 + 1e-9)

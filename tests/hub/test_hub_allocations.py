"""Allocation periods, the usage ledger (fed by the meter) and its admission checks, under a real policy (no mocks)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from steppe.control.ledger import GpuHoursCheck, Ledger, ProjectGpuLimit
from steppe.control.periods import month_start, months_between, period_bounds, split_by_month
from steppe.control.usage_sink import StoreSink
from steppe.core.cluster import Cluster
from steppe.core.job import JobSpec, JobState, PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import HubState
from steppe.core.usage import DecayedUsage
from steppe.metering import Meter
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.policies import make_policy

JAN = month_start(2026, 1)


@pytest.mark.parametrize(
    ("period", "months"),
    [("2026", 12), ("2026-H2", 6), ("2026-Q1", 3), ("2026-02", 1)],
)
def test_periods(period: str, months: int) -> None:
    assert len(months_between(*period_bounds(period))) == months


@pytest.mark.parametrize("bad", ["2026-Q5", "2026-13", "26", "2026-H3", "Q1"])
def test_bad_periods(bad: str) -> None:
    with pytest.raises(ValueError, match="expected YYYY"):
        period_bounds(bad)


def test_usage_is_split_at_month_ends() -> None:
    feb = month_start(2026, 2)
    assert [(m, b - a) for m, a, b in split_by_month(feb - 10, feb + 5)] == [("2026-01", 10), ("2026-02", 5)]


def hub(ledger: Ledger, grants: list[tuple[str, float, int | None]], gpus: int = 8) -> tuple[HubState, object]:
    rows = [SimpleNamespace(project_id=i, period="2026-Q1", start_s=JAN, end_s=month_start(2026, 4), gpu_hours=h,
                            max_gpus=mx, gpu_types=None) for i, (_, h, mx) in enumerate(grants)]  # fmt: skip
    ledger.load(rows, [], {i: key for i, (key, _, _) in enumerate(grants)})
    ledger.now = JAN  # the loop sets the ledger's clock before every cycle
    policy = make_policy("easy-backfill", checks=(*DEFAULT_CHECKS, GpuHoursCheck(ledger), ProjectGpuLimit(ledger)))
    cluster = Cluster.uniform(1, gpus, "H100")
    usage = DecayedUsage()
    state = HubState(cluster, policy.new_queue(cluster, usage), usage)
    state.listeners.append(ledger)
    return state, policy


def spec(job_id: int, gpus: int, project: str = "a/p", walltime: float = 3600.0) -> JobSpec:
    return JobSpec(job_id, JAN, gpus, walltime, walltime, project.split("/")[0], project)


@pytest.mark.parametrize(
    ("name", "jobs", "max_gpus", "started", "held"),
    [
        ("under the limit", [2, 2], 4, [1, 2], {}),
        ("second job would pass it", [3, 2], 4, [1], {2: PendingReason.QOS_GRP_GRES}),
        ("a smaller job behind still fits", [3, 2, 1], 4, [1, 3], {2: PendingReason.QOS_GRP_GRES}),
        ("no limit", [4, 4], None, [1, 2], {}),
    ],
)
def test_concurrent_gpu_limit(name: str, jobs: list[int], max_gpus: int | None, started: list[int],
                              held: dict[int, PendingReason]) -> None:  # fmt: skip
    ledger = Ledger()
    state, policy = hub(ledger, [("a/p", 1000.0, max_gpus)])
    for i, g in enumerate(jobs, start=1):
        state.submit(spec(i, g), JAN)
    plan = policy.schedule(state, JAN)  # type: ignore[attr-defined]
    assert [s.job_id for s in plan.starts] == started, name
    assert {j: r for j, r in plan.reasons.items() if r is not PendingReason.PRIORITY} == held, name


def test_gpu_hours_run_out_as_jobs_run() -> None:
    ledger = Ledger()
    sink = StoreSink(ledger)
    meter = Meter(sink, charge_interval_s=60.0)
    state, policy = hub(ledger, [("a/p", 2.0, None), ("b/p", 100.0, None)])
    state.listeners.append(meter)
    state.submit(spec(1, 2), JAN)
    state.apply(policy.schedule(state, JAN), JAN)  # type: ignore[attr-defined]
    assert ledger.project_gpus["a/p"] == 2
    t = JAN + 3600.0  # 2 GPUs x 1 h = the whole allocation, metered while the job still runs
    ledger.now = t
    assert meter.charge(t)
    assert ledger.used_in("a/p", ledger.current("a/p", t)) == pytest.approx(7200.0)  # type: ignore[arg-type]
    state.submit(spec(2, 1), t)
    state.submit(spec(3, 1, "b/p"), t)
    plan = policy.schedule(state, t)  # type: ignore[attr-defined]
    assert plan.reasons[2] is PendingReason.ASSOC_GRP_GRES_MINUTES and [s.job_id for s in plan.starts] == [3]
    rows = sink.take_rows()
    assert [(r["job_id"], r["period"], r["gpu_type"], r["gpu_seconds"], r["energy_source"]) for r in rows] == [
        (1, "2026-01", "H100", 7200.0, "none")  # no site: GPU-seconds only
    ]


def test_projects_without_allocations() -> None:
    free, _ = hub(Ledger(), [])
    strict_ledger = Ledger(require_allocation=True)
    strict, policy = hub(strict_ledger, [])
    strict.submit(spec(1, 1), JAN)
    assert policy.schedule(strict, JAN).reasons[1] is PendingReason.ASSOC_GRP_GRES_MINUTES  # type: ignore[attr-defined]
    assert free.queue is not None


def test_a_held_job_says_its_grant_ran_out_though_nothing_started_or_stopped() -> None:
    """A project's only job runs on all it may hold (``max_gpus``), its next waits with
    ``QOSGrpGRES``; the cycle that found every job held is memoised. Usage then charged without a
    start or stop (a job that ended while the hub was down) uses the grant up: the next cycle says
    ``AssocGrpGRESMinutes`` (charges are an admission input, not a stale memo)."""
    ledger = Ledger()
    meter = Meter(StoreSink(ledger), charge_interval_s=60.0)
    state, policy = hub(ledger, [("a/p", 2.0, 2)])
    state.listeners.append(meter)
    state.submit(spec(1, 2, walltime=1800.0), JAN)  # reserves 1 of the 2 GPU-hours
    state.apply(policy.schedule(state, JAN), JAN)  # type: ignore[attr-defined]
    state.submit(spec(2, 1, walltime=1800.0), JAN + 1.0)
    plan = policy.schedule(state, JAN + 1.0)  # type: ignore[attr-defined]
    assert plan.reasons == {2: PendingReason.QOS_GRP_GRES} and not plan.starts
    state.apply(plan, JAN + 1.0)
    assert policy.schedule(state, JAN + 2.0).reasons == {}  # type: ignore[attr-defined]  # memoised: nothing new
    t = JAN + 60.0
    ledger.now = t
    meter.charge_span(JobRecord(spec(99, 2), seq=99), JAN + 10.0, JAN + 1810.0)  # 1 GPU-hour more
    assert policy.schedule(state, t).reasons == {2: PendingReason.ASSOC_GRP_GRES_MINUTES}  # type: ignore[attr-defined]


def test_the_gpus_a_cycle_started_do_not_count_again_in_the_next_cycle() -> None:
    """max_gpus 3: jobs 1 and 2 (1 GPU each) start in one cycle; in the next, job 3 (1 GPU) makes 3,
    within the limit. The per-project starts a check infers in one cycle used to carry into the next
    and count twice, holding job 3 with QOSGrpGRES."""
    ledger = Ledger()
    state, policy = hub(ledger, [("a/p", 1000.0, 3)])
    state.submit(spec(1, 1), JAN)
    state.submit(spec(2, 1), JAN)
    plan = policy.schedule(state, JAN)  # type: ignore[attr-defined]
    assert [s.job_id for s in plan.starts] == [1, 2]
    state.apply(plan, JAN)
    state.submit(spec(3, 1), JAN + 1.0)
    plan = policy.schedule(state, JAN + 1.0)  # type: ignore[attr-defined]
    assert [s.job_id for s in plan.starts] == [3] and not plan.reasons


def test_a_job_starts_only_if_its_walltime_fits_what_is_left_of_the_balance() -> None:
    """2.5 GPU-hours; job 1 (1 GPU x 1 h) runs and reserves 1 GPU-hour; job 2 (1 GPU x 2 h) would need
    more than the 1.5 left and waits with AssocGrpGRESMinutes and a sentence saying so; job 3 (1 GPU x
    1 h) fits and starts; job 4 (1 h) then waits (0.5 left). Job 1 ends after 30 min: 1 GPU-hour is
    free again, job 4 starts, job 2 still waits. Before, job 2 started at once and the project could
    use 4 of its 2.5 GPU-hours."""
    ledger = Ledger()
    meter = Meter(StoreSink(ledger), charge_interval_s=60.0)
    state, policy = hub(ledger, [("a/p", 2.5, None)])
    state.listeners.append(meter)
    state.submit(spec(1, 1), JAN)
    state.apply(policy.schedule(state, JAN), JAN)  # type: ignore[attr-defined]
    state.submit(spec(2, 1, walltime=7200.0), JAN + 1.0)
    plan = policy.schedule(state, JAN + 1.0)  # type: ignore[attr-defined]
    assert plan.reasons == {2: PendingReason.ASSOC_GRP_GRES_MINUTES} and not plan.starts
    state.apply(plan, JAN + 1.0)
    assert GpuHoursCheck(ledger).why(state.jobs[2]) == (
        "needs 2.00 GPU-hours (1 GPUs x its time limit); project a/p has 2.50 of its 2.50 GPU-hours for "
        "2026-Q1 left, 1.00 of them reserved by its running jobs"
    )
    state.submit(spec(3, 1), JAN + 2.0)
    state.submit(spec(4, 1), JAN + 2.0)
    plan = policy.schedule(state, JAN + 2.0)  # type: ignore[attr-defined]
    assert [s.job_id for s in plan.starts] == [3]  # 1 h fits the 1.5 left; then job 4's hour does not
    assert plan.reasons[4] is PendingReason.ASSOC_GRP_GRES_MINUTES
    state.apply(plan, JAN + 2.0)
    t = JAN + 1800.0
    ledger.now = t
    state.finish(1, t, JobState.COMPLETED)
    meter.charge(t)  # used: 1,800 s (job 1) + 1,798 s (job 3); reserved: job 3's 1,802 s left; free: 3,600 s
    plan = policy.schedule(state, t)  # type: ignore[attr-defined]
    assert [s.job_id for s in plan.starts] == [4] and plan.reasons.get(2, state.jobs[2].reason) is (
        PendingReason.ASSOC_GRP_GRES_MINUTES
    )

"""Dependencies and begin times (Slurm's --dependency and --begin) in the twin's replay and the cycle."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import Hub, job

from steppe.core.arrays import parse_array
from steppe.core.cluster import Cluster
from steppe.core.dependency import format_dependency, parse_dependency
from steppe.core.errors import SteppeError
from steppe.core.job import JobSpec, JobState, PendingReason
from steppe.core.records import JobRecord
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.dependency import BeginAt, DependencyCheck
from steppe.scheduling.policies import make_policy
from steppe.twin.readers.csv_generic import read_csv, write_csv
from steppe.twin.replay import replay
from steppe.twin.trace import Trace


def spec(job_id: int, submit: float, runtime: float, walltime: float, **kw: object) -> JobSpec:
    return JobSpec(job_id, submit, 1, runtime, walltime, "t", user="u", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["fifo", "easy-backfill", "multifactor", "las"])
def test_a_chain_runs_in_order_and_a_broken_one_never_starts(policy: str) -> None:
    """Job 1 completes at 100 s; job 2 (afterok:1) starts then; job 3 (afterok:4) never starts: job 4
    times out (runtime over its limit) and job 3 ends cancelled at the end of the replay; job 5
    (afternotok:4) runs once job 4 timed out; job 6 (afterany:1,afterany:5) after both."""
    jobs = [
        spec(1, 0.0, 100.0, 200.0),
        spec(2, 1.0, 50.0, 100.0, dependency=parse_dependency("afterok:1")),
        spec(3, 2.0, 50.0, 100.0, dependency=parse_dependency("afterok:4")),
        spec(4, 3.0, 500.0, 300.0),
        spec(5, 4.0, 10.0, 100.0, dependency=parse_dependency("afternotok:4")),
        spec(6, 5.0, 10.0, 100.0, dependency=parse_dependency("afterany:1:5")),
    ]
    result = replay(Trace("chain", jobs), Cluster.uniform(1, 8, "H100"), policy, keep_jobs=True)
    r = result.state.jobs
    assert (r[1].first_start_s, r[2].first_start_s) == (0.0, 100.0)
    assert r[4].state is JobState.TIMEOUT and r[4].end_s == 303.0
    assert r[5].first_start_s == 303.0 and r[6].first_start_s == 313.0
    assert r[3].state is JobState.CANCELLED and r[3].first_start_s is None


def test_dependency_reasons_in_a_cycle_and_singleton() -> None:
    check = DependencyCheck()
    hub = Hub(Cluster.uniform(1, 8, "H100"), make_policy("fifo", checks=(*DEFAULT_CHECKS, check)))
    hub.state.listeners.append(check)
    hub.submit(job(1, 1, runtime=100.0, user="u", name="sweep"))
    hub.step()
    hub.submit(job(2, 1, user="u", name="sweep", dependency=(("singleton", 0),)),
               job(3, 1, dependency=(("afterok", 1),)), job(4, 1, dependency=(("after", 1),)),
               job(5, 1, dependency=(("afterok", 99),)), at=1.0)  # fmt: skip
    plan = hub.step(1.0)
    assert sorted(s.job_id for s in plan.starts) == [4]  # job 1 has started: ``after`` is met
    reasons = {j: hub.state.jobs[j].reason for j in (2, 3, 5)}
    assert reasons == {2: PendingReason.DEPENDENCY, 3: PendingReason.DEPENDENCY,
                       5: PendingReason.DEPENDENCY_NEVER_SATISFIED}  # fmt: skip
    hub.state.finish(1, 100.0, JobState.FAILED)
    hub.step(100.0)
    assert hub.state.jobs[2].state is JobState.RUNNING  # no other "sweep" of u runs now
    assert hub.state.jobs[3].reason is PendingReason.DEPENDENCY_NEVER_SATISFIED  # job 1 failed


def test_a_job_waits_for_its_begin_time_and_the_cycle_wakes_for_it() -> None:
    hub = Hub(Cluster.uniform(1, 8, "H100"), make_policy("easy-backfill", checks=(*DEFAULT_CHECKS, BeginAt())))
    hub.submit(job(1, 1, begin_s=500.0))
    plan = hub.step(0.0)
    assert not plan.starts and plan.wakeup_s == 500.0 and hub.state.jobs[1].reason is PendingReason.BEGIN_TIME
    assert [s.job_id for s in hub.step(500.0).starts] == [1]
    result = replay(Trace("begin", [spec(1, 0.0, 10.0, 60.0, begin_s=3600.0)]), Cluster.uniform(1, 8, "H100"),
                    "fifo", keep_jobs=True)  # fmt: skip
    assert result.state.jobs[1].first_start_s == 3600.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "empty"), ("afterok", "needs at least one job id"), ("afterok:0", "not a job id"),
     ("before:1", "unknown type 'before'"), ("singleton:3", "takes no job id"), ("afterok:1?afterany:2", "'?'")],
)  # fmt: skip
def test_a_malformed_dependency_is_one_line_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as err:
        parse_dependency(text)
    assert str(err.value).startswith("dependency: ") and "e.g. afterok:123" in str(err.value)
    assert format_dependency(parse_dependency("afterok:1:2,afterany:3,singleton")) == "afterok:1:2,afterany:3,singleton"


def test_a_csv_trace_carries_dependencies_and_begin_times_and_writes_them_back(tmp_path: Path) -> None:
    path = tmp_path / "deps.csv"
    path.write_text(
        "job_id,submit_s,gpus,runtime_s,walltime_s,tenant,dependency,begin_s\n"
        "1,100,8,600,900,a,,\n"
        "2,101,8,60,900,a,afterok:1,\n"
        "3,102,1,60,900,a,,4000\n"
    )
    trace = read_csv(path)
    assert trace.jobs[1].dependency == (("afterok", 1),) and trace.jobs[2].begin_s == 3900.0  # shifted with submit
    result = replay(trace, Cluster.uniform(1, 8, "H100"), "easy-backfill", keep_jobs=True)
    assert result.state.jobs[2].first_start_s == 600.0 and result.state.jobs[3].first_start_s == 3900.0
    write_csv(trace.jobs, tmp_path / "back.csv")
    assert [j.dependency for j in read_csv(tmp_path / "back.csv").jobs] == [j.dependency for j in trace.jobs]
    path.write_text("submit_s,gpus,runtime_s,tenant,dependency\n0,1,10,a,afterok:x\n")
    with pytest.raises(SteppeError, match=r"deps.csv:2: dependency: 'x' is not a job id; e.g."):
        read_csv(path)


@pytest.mark.parametrize("policy", ["fifo", "easy-backfill", "multifactor", "las"])
def test_an_array_of_100_with_a_throttle_of_8_never_runs_more_than_8(policy: str) -> None:
    """``--array 0-99%8`` on a 64-GPU fleet (1 GPU each): at most 8 tasks run at once, every task runs,
    and a job that is not part of the array is not held by the throttle."""
    tasks, limit = parse_array("0-99%8")
    jobs = [spec(1 + i, 0.0, 100.0 + i, 400.0, array_job=1, array_task=t, array_limit=limit)
            for i, t in enumerate(tasks)]  # fmt: skip
    jobs.append(spec(500, 1.0, 50.0, 100.0))
    peak = [0]

    class Peak:
        def __init__(self) -> None:
            self.now = 0

        def on_submit(self, rec: object, now: float) -> None: ...

        def on_start(self, rec: JobRecord, now: float) -> None:
            if rec.spec.array_job:
                self.now += 1
                peak[0] = max(peak[0], self.now)

        def on_stop(self, rec: JobRecord, now: float) -> None:
            if rec.spec.array_job and rec.allocation:
                self.now -= 1

    result = replay(Trace("array", jobs), Cluster.uniform(8, 8, "H100"), policy, listeners=[Peak()], keep_jobs=True)
    r = result.state.jobs
    assert peak[0] == 8 and all(r[1 + i].state is JobState.COMPLETED for i in range(100))
    assert r[500].first_start_s == 1.0  # not held by the array's throttle

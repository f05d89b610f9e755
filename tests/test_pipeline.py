"""The pipeline step and its executors: the fake executor decides no end state, stops end at once in
simulated time, an exit and a walltime end at the same instant complete, executors report their inventory."""

from __future__ import annotations

from pathlib import Path

from builders import job

from steppe.core.cluster import Cluster
from steppe.core.job import JobState
from steppe.core.records import JobRecord
from steppe.core.state import HubState
from steppe.core.usage import DecayedUsage
from steppe.executors.base import ExitInfo
from steppe.executors.fake import FakeExecutor
from steppe.executors.local import LocalExecutor
from steppe.executors.mock import MockExecutor
from steppe.pipeline.step import PipelineStep
from steppe.scheduling.policies import make_policy
from steppe.twin.replay import replay
from steppe.twin.trace import Trace


def running(rec: JobRecord) -> JobRecord:
    rec.state = JobState.RUNNING
    rec.epoch = 1
    return rec


def test_the_fake_executor_schedules_the_work_not_the_limit_and_a_stop_ends_at_once() -> None:
    scheduled: list[tuple[float, JobState]] = []
    exits: list[tuple[int, int, ExitInfo]] = []
    ex = FakeExecutor(lambda t, j, tok, st: scheduled.append((t, st)))
    ex.bind(lambda j, e, info: exits.append((j, e, info)), lambda j: None)
    rec = running(JobRecord(job(1, 1, runtime=100.0, walltime=60.0), 1))
    ex.start(rec, 0.0)
    assert scheduled == [(100.0, JobState.COMPLETED)]  # the walltime is the pipeline's
    ex.stop(rec, 60.0)
    assert [(j, e, i.slurm, i.end_s) for j, e, i in exits] == [(1, 1, "0:15", 60.0)]
    assert ex.fire((1, 1, 100.0)) is False  # its scheduled exit was dropped: nothing happens at 100 s


def test_a_job_past_its_walltime_times_out_and_its_dropped_exit_costs_no_cycle() -> None:
    result = replay(
        Trace("t", [job(1, 1, runtime=100.0, walltime=60.0)]), Cluster.uniform(1, 1, "H100"), "fifo", keep_jobs=True
    )
    rec = result.state.jobs[1]
    assert (rec.state, rec.end_s) == (JobState.TIMEOUT, 60.0)
    assert result.cycles == 2  # at 0 s (start) and 60 s (walltime); none at 100 s


def test_an_exit_and_a_walltime_end_at_the_same_instant_complete() -> None:
    trace = Trace("t", [job(1, 1, runtime=60.0, walltime=60.0), job(2, 1, runtime=5.0)])
    result = replay(trace, Cluster.uniform(1, 1, "H100"), "fifo", keep_jobs=True)
    assert result.state.jobs[1].state is JobState.COMPLETED and result.state.jobs[1].end_s == 60.0
    assert result.state.jobs[2].first_start_s == 60.0  # its GPU was free in the same step


def test_executors_report_the_gpus_they_see(tmp_path: Path) -> None:
    cluster = Cluster.uniform(2, 4, "H100")
    assert FakeExecutor(lambda t, j, tok, st: None, None, cluster).inventory().gpus == {
        "node001": (0, 1, 2, 3),
        "node002": (0, 1, 2, 3),
    }
    assert MockExecutor({"gpu-a": (0, 1)}).inventory().total_gpus == 2
    local = LocalExecutor(tmp_path, {0: [3, 1], 1: [0]}, ["a", "b"])
    assert local.inventory().gpus == {"a": (1, 3), "b": (0,)}


def test_the_fake_executor_reports_a_plain_completion_as_two_ints_and_the_step_completes_it() -> None:
    completed: list[tuple[int, int]] = []
    exits: list[tuple[int, int, ExitInfo]] = []
    ex = FakeExecutor(lambda t, j, tok, st: None)
    ex.bind(lambda j, e, info: exits.append((j, e, info)), lambda j: None)
    ex.report_completions(lambda j, e: completed.append((j, e)))
    rec = running(JobRecord(job(1, 1, runtime=100.0), 1))
    ex.start(rec, 0.0)
    assert ex.fire((1, 1, 100.0)) is True
    assert completed == [(1, 1)] and exits == []  # no ExitInfo for an ordinary completion
    other = running(JobRecord(job(2, 1, runtime=100.0), 2))
    ex.start(other, 0.0)
    ex.stop(other, 10.0)  # a stop still reports its exit
    assert [(j, i.slurm) for j, _, i in exits] == [(2, "0:15")]


def test_the_step_takes_plain_completions_after_exits_and_ends_them_completed() -> None:
    trace = Trace("t", [job(1, 1, runtime=10.0, walltime=60.0), job(2, 1, runtime=5.0)])
    result = replay(trace, Cluster.uniform(1, 1, "H100"), "fifo", keep_jobs=True)
    assert [(r.state, r.end_s) for r in (result.state.jobs[1], result.state.jobs[2])] == [
        (JobState.COMPLETED, 10.0),
        (JobState.COMPLETED, 15.0),
    ]


def test_a_stale_plain_completion_of_an_earlier_run_is_ignored() -> None:
    cluster = Cluster.uniform(1, 1, "H100")
    pol = make_policy("fifo")
    usage = DecayedUsage()
    state = HubState(cluster, pol.new_queue(cluster, usage), usage)

    class NoIntake:
        def intake(self, now: float) -> None:
            pass

    ex = FakeExecutor(lambda t, j, tok, st: None)
    step = PipelineStep(state, pol, ex, NoIntake())
    ex.bind(step.on_exit, lambda j: None)
    state.submit(job(1, 1, runtime=100.0), 0.0)
    step.step(0.0)
    rec = state.jobs[1]
    assert rec.state is JobState.RUNNING
    step.on_completed(1, rec.epoch + 1)  # not this run: ignored
    step.step(5.0)
    assert rec.state is JobState.RUNNING and step.completed == []
    step.on_completed(1, rec.epoch)
    step.step(6.0)
    assert (rec.state, rec.end_s) == (JobState.COMPLETED, 6.0)

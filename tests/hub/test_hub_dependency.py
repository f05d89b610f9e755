"""Dependencies and begin times in the live hub (in process, mock executor): sbatch's --dependency
and --begin through the application layer, the store and the loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from apphub import AppHub, app_hub

from steppe.app import jobs
from steppe.app.errors import Invalid
from steppe.client import models as m
from steppe.control.rows import launch_from_row
from steppe.executors.mock import MockExecutor


def _submit(a: AppHub, who: object, **fields: object) -> int:
    body = m.JobSubmit.model_validate({"project": "kaznu/nlp", "argv": ["/bin/true"], **fields})
    return asyncio.run(jobs.submit(a.hub, who, body, None)).job_id  # type: ignore[arg-type]


def _wait(ok: object, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _reason(a: AppHub, job_id: int) -> str | None:
    rec = a.hub.loop.state.jobs.get(job_id)
    return None if rec is None else rec.reason.value


def test_afterok_waits_then_starts_and_a_failed_parent_is_never_satisfied(tmp_path: Path) -> None:
    with app_hub(tmp_path, start=True) as a:
        executor = a.hub.loop.executor
        assert isinstance(executor, MockExecutor)
        parent = _submit(a, a.alice, gpus=1)
        _wait(lambda: ("start", parent) in executor.calls, "the parent to start")
        child = _submit(a, a.alice, dependency=f"afterok:{parent}")
        other = _submit(a, a.alice, dependency=f"afternotok:{parent}")
        _wait(lambda: _reason(a, child) == "Dependency" and _reason(a, other) == "Dependency", "Dependency")
        row = jobs.visible_job(a.hub, a.alice, child)
        assert row.dependency == [["afterok", parent]]
        executor.end(parent, 0)  # completed: the child starts; afternotok can never be met
        _wait(lambda: ("start", child) in executor.calls, "the child to start")
        _wait(lambda: _reason(a, other) == "DependencyNeverSatisfied", "DependencyNeverSatisfied")
        failed = _submit(a, a.alice)
        _wait(lambda: ("start", failed) in executor.calls, "a job to start")
        executor.end(failed, 1)
        later = _submit(a, a.alice, dependency=f"afterok:{failed}")  # the parent ended before it arrived
        _wait(lambda: _reason(a, later) == "DependencyNeverSatisfied", "read from the store: it failed")


def test_a_dependency_names_only_the_organisations_own_jobs(tmp_path: Path) -> None:
    with app_hub(tmp_path, start=True) as a:
        theirs = asyncio.run(jobs.submit(a.hub, a.bob, m.JobSubmit(project="enu/nlp", argv=["/bin/true"]), None))
        for dependency in (f"afterok:{theirs.job_id}", "afterany:999"):
            with pytest.raises(Invalid) as bad:
                _submit(a, a.alice, dependency=dependency)
            assert [e["field"] for e in bad.value.errors] == ["dependency"]
            assert "no job" in bad.value.errors[0]["message"] and "e.g. afterok:123" in bad.value.errors[0]["message"]
        with pytest.raises(ValueError, match="dependency"):
            m.JobSubmit.model_validate({"project": "kaznu/nlp", "argv": ["x"], "dependency": "afterok:x"})


def test_a_job_waits_for_its_begin_time(tmp_path: Path) -> None:
    with app_hub(tmp_path, start=True) as a:
        executor = a.hub.loop.executor
        assert isinstance(executor, MockExecutor)
        soon = _submit(a, a.alice, begin_s=time.time() + 1.5)
        _wait(lambda: _reason(a, soon) == "BeginTime", "BeginTime")
        assert ("start", soon) not in executor.calls
        _wait(lambda: ("start", soon) in executor.calls, "the job to start at its begin time")


def test_an_array_of_ten_with_a_throttle_of_two_runs_two_at_a_time(tmp_path: Path) -> None:
    """``--array 0-9%2``: ten tasks in the store and the queue, the first task's id is the array's; at most
    two run at once (the others wait with JobArrayTaskLimit); each task's launch carries its index."""
    with app_hub(tmp_path, start=True) as a:
        executor = a.hub.loop.executor
        assert isinstance(executor, MockExecutor)
        first = _submit(a, a.alice, array="0-9%2")
        _wait(lambda: len([j for j in a.hub.loop.state.jobs.values() if j.spec.array_job == first]) == 10,
              "ten tasks queued")  # fmt: skip
        ended: list[int] = []
        for _ in range(5):
            _wait(lambda: len(executor.running) == 2, "two tasks running")
            held = [j for j in a.hub.loop.state.jobs.values() if j.state.value == "PENDING"]
            assert all(j.reason.value == "JobArrayTaskLimit" for j in held), [j.reason for j in held]
            for job_id in sorted(executor.running):
                executor.end(job_id, 0)
                ended.append(job_id)
        _wait(lambda: all(j.state.value != "PENDING" for j in a.hub.loop.state.jobs.values()), "every task ran")
        assert len(ended) == 10
        arrays = sorted(launch_from_row(jobs.visible_job(a.hub, a.alice, j)).array or () for j in ended)
        assert arrays == [(first, task, 10) for task in range(10)]  # each launch: the array, its index, its size
        view = jobs.visible_job(a.hub, a.alice, ended[-1])
        assert view.array_job_id == first and view.array_count == 10 and view.array_limit == 2
        with pytest.raises(ValueError, match="array"):
            m.JobSubmit.model_validate({"project": "kaznu/nlp", "argv": ["x"], "array": "5-1"})

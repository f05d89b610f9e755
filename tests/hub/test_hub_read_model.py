"""The read model: published after every loop step (under a burst, after its last step or when it is
``max_lag_s`` old), swapped whole, read without waiting for the loop.

In process, with the mock executor: a test blocks the loop's thread inside a step (the executor's
``start`` waits on an Event) and reads the queue, nodes, a job and ``/metrics`` meanwhile.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.control.harness import LoopHarness
from steppe.control.views import PendingJob, QueueEntry, ReadModel, ReadModelPublisher, RunningJob, estimate
from steppe.core.job import PendingReason
from steppe.executors.mock import MockExecutor

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_a_step_publishes_one_frozen_model_and_earlier_models_stay_whole(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, gpus=4)
    reads = ReadModelPublisher(h.loop)
    a = h.submit(gpus=3)
    b = h.submit(gpus=2)
    h.step()
    first = reads.model
    assert first.step == h.loop.cycles
    assert [j.job_id for j in first.running] == [a] and [j.job_id for j in first.pending] == [b]
    assert first.pending[0].reason is PendingReason.RESOURCES
    assert [(n.free, n.jobs) for n in first.nodes] == [(1, [a])]
    assert first.counters.running == 1 and first.counters.gpus == {("", "H100"): (3, 1)}
    assert first.pending_by_reason == {"Resources": 1}
    h.executor.end(a, 0)
    h.step(5.0)
    second = reads.model
    assert second is not first and second.step == first.step + 1
    assert [j.job_id for j in second.running] == [b] and second.pending == ()
    assert [j.job_id for j in first.running] == [a]  # the earlier model is unchanged
    with pytest.raises(AttributeError):
        first.step = 99  # type: ignore[misc]
    h.close()


def test_under_a_burst_the_model_waits_for_the_bursts_last_step_or_its_lag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = LoopHarness(tmp_path, gpus=4)
    reads = ReadModelPublisher(h.loop, max_lag_s=3600.0)
    burst = [True]
    monkeypatch.setattr(h.loop, "step_follows", lambda: burst[0])  # the loop was woken during each step
    h.submit(gpus=1)
    h.step()
    first = reads.model
    assert first.step == h.loop.cycles  # no model yet: published at once
    second_job = h.submit(gpus=1)
    h.step(1.0)
    assert reads.model is first  # another step follows at once and the model is fresh: left to it
    burst[0] = False
    h.step(2.0)  # the burst's last step
    assert reads.model.step == h.loop.cycles and second_job in [j.job_id for j in reads.model.running]
    burst[0] = True
    reads.max_lag_s = 0.0  # without a lag, every step publishes
    h.step(3.0)
    assert reads.model.step == h.loop.cycles
    h.close()


def test_estimated_starts_come_from_the_model_alone() -> None:
    # the module docstring's example: 8 GPUs, 6 busy until t=100 and 2 until t=300; A (4 GPUs, 1 h), B (8 GPUs)
    running = (RunningJob(1, "t", "t/p", 100.0, 6, "H100"), RunningJob(2, "t", "t/p", 300.0, 2, "H100"))
    pending = (
        PendingJob(3, "t", "t/p", PendingReason.RESOURCES, 4, None, 3600.0, None),
        PendingJob(4, "t", "t/p", PendingReason.PRIORITY, 8, "H100", 60.0, None),
        PendingJob(5, "t", "t/p", PendingReason.AWAITING_REVIEW, 1, None, 60.0, "no review"),
    )
    pools = {None: ("H100",), "H100": ("H100",)}
    model = ReadModel(step=1, time_s=0.0, running=running, pending=pending, free_by_pool={"H100": 0}, pools_of=pools)
    assert estimate(model) == [
        QueueEntry(3, 1, "Resources", 100.0), QueueEntry(4, 2, "Priority", 3700.0),
        QueueEntry(5, 3, "AwaitingReview", None),
    ]  # fmt: skip
    assert model.queue == tuple(estimate(model))


class BlockingExecutor(MockExecutor):
    """A mock executor whose ``start`` can be made to wait on an Event (the loop's thread blocks in a step)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def start(self, rec: Any, now: float) -> None:
        if self.block:
            self.entered.set()
            self.release.wait(30)
        super().start(rec, now)


@pytest.fixture
def blocked_hub(tmp_path: Path) -> Iterator[tuple[TestClient, Hub, BlockingExecutor]]:
    hub = Hub.open(HubSettings(data_dir=tmp_path / "data", gpus=4, gpu_type="H100", review_gate=False,
                               executor="mock", single_user=True))  # fmt: skip
    executor = BlockingExecutor()
    hub.loop.executor = hub.loop.pipeline.executor = executor  # the loop and its pipeline step call it
    executor.bind(hub.loop._on_exit, hub.loop.launches.__getitem__)
    with TestClient(create_app(hub), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {(tmp_path / 'data' / 'admin-token').read_text().strip()}"
        for url, body in (("/api/v1/orgs", {"name": "kaznu", "country": "KZ"}),
                          ("/api/v1/orgs/kaznu/projects", {"name": "nlp"})):  # fmt: skip
            assert client.post(url, json=body).status_code == 201, url
        try:
            yield client, hub, executor
        finally:
            executor.release.set()


def _within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()`` on another thread; fails if it has not answered within ``seconds``."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, f"no answer within {seconds} s while the loop is blocked in a step"
    return out[0]


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_reads_answer_while_the_loop_is_blocked_inside_a_step(
    blocked_hub: tuple[TestClient, Hub, BlockingExecutor],
) -> None:
    client, hub, executor = blocked_hub
    job = {"project": "kaznu/nlp", "argv": ["/bin/true"], "gpus": 3}
    a = client.post("/api/v1/jobs", json=job).json()["id"]
    _wait(lambda: a in [j.job_id for j in hub.reads.model.running], "the first job running")
    executor.block = True
    b = client.post("/api/v1/jobs", json={**job, "gpus": 1}).json()["id"]
    assert executor.entered.wait(10), "the loop never reached the executor"
    before = hub.reads.model
    # the loop's thread is inside a step (b's start is committed, its launch waits): every read still answers
    queue = _within(3.0, lambda: client.get("/api/v1/queue").json())
    nodes = _within(3.0, lambda: client.get("/api/v1/nodes").json())
    detail = _within(3.0, lambda: client.get(f"/api/v1/jobs/{a}").json())
    metrics = _within(3.0, lambda: client.get("/metrics").text)
    assert hub.reads.model is before  # nothing was published mid-step
    # one step's view: the model from before the blocked step, consistent across the reads
    assert [j["id"] for j in queue["items"]] == [a] and queue["items"][0]["state"] == "RUNNING"
    assert [(n["free"], n["jobs"]) for n in nodes] == [(1, [a])]
    assert detail["state"] == "RUNNING"
    assert 'hub_gpus{gpu_type="H100",site="astana",state="free"} 1.0' in metrics and "hub_running_jobs 1.0" in metrics
    executor.release.set()
    _wait(lambda: hub.reads.model.step > before.step, "the blocked step to publish")
    after = hub.reads.model
    assert sorted(j.job_id for j in after.running) == [a, b] and after.counters.gpus == {("", "H100"): (4, 0)}
    assert [(n.free, n.jobs) for n in after.nodes] == [(0, [a, b])]


def test_a_read_model_that_cannot_be_built_fails_no_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = LoopHarness(tmp_path, gpus=2)
    reads = ReadModelPublisher(h.loop)
    a = h.submit(gpus=1)
    assert h.step()
    kept = reads.model

    def broken() -> ReadModel:
        raise RuntimeError("cannot build")

    monkeypatch.setattr(reads, "publish", broken)
    h.submit(gpus=1)
    assert h.step() and h.loop.errors == 0  # the step went on; readers keep the last model
    assert reads.model is kept and [j.job_id for j in kept.running] == [a]
    h.close()

"""One pipeline in both modes: the same jobs through the twin's replay and the live loop (in process)
end the same way, walltime expiry included; a walltime stop is durable before it is asked."""

from __future__ import annotations

from pathlib import Path

from steppe.control.harness import LoopHarness
from steppe.core.cluster import Cluster
from steppe.core.job import JobSpec
from steppe.core.records import JobRecord
from steppe.executors.mock import MockExecutor
from steppe.store import jobs as job_repo
from steppe.twin.replay import replay
from steppe.twin.trace import Trace

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}

# On 4 GPUs, in submission order (FIFO): job 1 works 100 s under a 60 s limit (TIMEOUT at 60);
# job 2 then works exactly its 50 s limit (its exit and its limit at the same instant: COMPLETED
# at 110); job 3 works 20 s of a 3,600 s limit (COMPLETED at 130).
JOBS = [
    JobSpec(job_id=1, submit_s=0.0, gpus=4, runtime_s=100.0, walltime_s=60.0, tenant="a"),
    JobSpec(job_id=2, submit_s=0.0, gpus=4, runtime_s=50.0, walltime_s=50.0, tenant="a"),
    JobSpec(job_id=3, submit_s=0.0, gpus=4, runtime_s=20.0, walltime_s=3600.0, tenant="a"),
]


def twin_ends(specs: list[JobSpec]) -> dict[int, tuple[str, float]]:
    result = replay(Trace("t", specs), Cluster.uniform(1, 4, "H100"), "fifo", keep_jobs=True)
    return {r.job_id: (r.state.value, r.end_s or 0.0) for r in result.state.jobs.values()}


def live_ends(tmp_path: Path, specs: list[JobSpec]) -> dict[int, tuple[str, float]]:
    """Run the live loop with a mock executor whose jobs exit after their work, on a fake clock
    that jumps to the next exit or the loop's own next wake-up."""
    h = LoopHarness(tmp_path, gpus=4, policy="fifo")
    t0 = h.clock()
    ids = {h.submit(gpus=s.gpus, walltime_s=s.walltime_s): s for s in specs}
    exit_at: dict[int, float] = {}
    try:
        for _ in range(100):
            assert h.step()
            for job_id in h.executor.running:
                exit_at.setdefault(job_id, h.clock() + ids[job_id].runtime_s)
            if all(h.job(j).state in TERMINAL for j in ids):
                break
            running = {j: t for j, t in exit_at.items() if j in h.executor.running}
            wake = h.loop.env.next_wake_s
            nxt = min([*running.values(), *([wake] if wake is not None else [])])
            h.clock.now = nxt
            for j, t in running.items():
                if t == nxt:
                    h.executor.end(j, 0, 0, nxt)
        return {ids[j].job_id: (h.job(j).state, h.job(j).end_s - t0) for j in ids}
    finally:
        h.close()


def test_walltime_expiry_ends_the_same_jobs_the_same_way_in_both_modes(tmp_path: Path) -> None:
    expected = {1: ("TIMEOUT", 60.0), 2: ("COMPLETED", 110.0), 3: ("COMPLETED", 130.0)}
    assert twin_ends(JOBS) == expected
    assert live_ends(tmp_path, JOBS) == expected


def test_a_walltime_stop_is_asked_only_once_its_intent_is_in_the_store(tmp_path: Path) -> None:
    seen: list[str | None] = []

    class Checking(MockExecutor):
        def stop(self, rec: JobRecord, now: float) -> None:
            with h.store.read() as conn:
                row = job_repo.get_job(conn, rec.job_id)
            seen.append(None if row is None else row.stop_intent)
            super().stop(rec, now)

    h = LoopHarness(tmp_path, gpus=2, executor=Checking())
    try:
        a = h.submit(gpus=2, walltime_s=60.0)
        assert h.step()
        assert h.step(60.0)
        assert seen == ["timeout"]
        assert h.job(a).state == "TIMEOUT" and h.job(a).reason == "TimeLimit"
    finally:
        h.close()

"""An engine that stops answering, and GPUs an engine's other jobs hold, in the live loop (in process,
fake clock, mock executor): while the engine is down nothing starts and pending jobs say
``EngineDown``, running jobs are left alone, and the first cycle after it answers again starts them;
GPUs held by work the hub did not start are never booked twice."""

from __future__ import annotations

from pathlib import Path

from steppe.control.harness import LoopHarness
from steppe.control.views import nodes_view
from steppe.executors.mock import MockExecutor


def test_while_the_engine_is_down_nothing_starts_and_jobs_wait_with_engine_down(tmp_path: Path) -> None:
    ex = MockExecutor({"node001": tuple(range(8))})
    h = LoopHarness(tmp_path, gpus=8, executor=ex, policy="easy-backfill")
    try:
        running = h.submit(gpus=4)
        assert h.step()
        assert h.job(running)["state"] == "RUNNING"
        ex.down = True
        waiting = h.submit(gpus=2)
        assert h.step(1.0)
        assert h.job(waiting)["state"] == "PENDING" and h.job(waiting)["reason"] == "EngineDown"
        assert h.job(running)["state"] == "RUNNING" and ("stop", running) not in ex.calls
        assert h.plans[-1].wakeup_s == h.clock() + 1.0  # it looks again within a second
        starts_before = ex.calls.count(("start", waiting))
        for _ in range(3):  # a memoised cycle never starts it while the engine is down
            assert h.step(0.5)
        assert ex.calls.count(("start", waiting)) == starts_before == 0
        ex.down = False
        assert h.step(1.0)  # the engine answers again: no other event is needed
        assert h.job(waiting)["state"] == "RUNNING"
    finally:
        h.close()


def test_a_memoised_cycle_made_while_the_engine_answered_is_not_reused_once_it_does_not(tmp_path: Path) -> None:
    ex = MockExecutor({"node001": tuple(range(8))})
    h = LoopHarness(tmp_path, gpus=8, executor=ex, policy="easy-backfill")
    try:
        big = h.submit(gpus=6)
        assert h.step()
        head = h.submit(gpus=4)  # blocked on Resources: the cycle is memoised
        assert h.step(1.0)
        assert h.job(head)["reason"] == "Resources"
        ex.down = True
        small = h.submit(gpus=1)  # would backfill into the 2 free GPUs through the memo
        assert h.step(1.0)
        assert h.job(small)["state"] == "PENDING" and h.job(small)["reason"] == "EngineDown"
        assert ("start", small) not in ex.calls and h.job(big)["state"] == "RUNNING"
    finally:
        h.close()


def test_gpus_the_engines_other_jobs_hold_are_never_booked_twice(tmp_path: Path) -> None:
    ex = MockExecutor({"node001": tuple(range(8))})
    h = LoopHarness(tmp_path, gpus=8, executor=ex, policy="fifo")
    try:
        mine = h.submit(gpus=6)
        assert h.step()
        assert h.job(mine)["state"] == "RUNNING"
        ex.busy = {"node001": 4}  # a job given to the engine directly takes 4 GPUs; only 2 are free
        later = h.submit(gpus=2)
        assert h.step(1.0)
        assert h.loop.state.foreign == {0: 2}  # capped by what is free; the rest once the hub's job ends
        assert nodes_view(h.loop.state)[0].others == 2  # what `steppe nodes` shows as OTHERS
        assert h.job(later)["state"] == "PENDING" and h.job(later)["reason"] == "Resources"
        ex.end(mine, 0, now=h.clock())
        assert h.step(1.0)
        assert h.loop.state.foreign == {0: 4}
        assert h.job(later)["state"] == "RUNNING"  # 8 - 4 others' = 4 free: it fits
        third = h.submit(gpus=4)
        assert h.step(1.0)
        assert h.job(third)["state"] == "PENDING"  # 4 others' + 2 mine: only 2 free
        ex.busy = {}  # the other job ended
        assert h.step(1.0)
        assert h.loop.state.foreign == {} and h.job(third)["state"] == "RUNNING"
    finally:
        h.close()


class ComesBack(MockExecutor):
    """An engine that answers from its second contact on (it comes back while a cycle runs)."""

    def __init__(self, gpus: dict[str, tuple[int, ...]]) -> None:
        super().__init__(gpus)
        self.reads = 0

    def reachable(self) -> bool:
        self.reads += 1
        return self.reads > 1


def test_an_engine_that_comes_back_during_a_cycle_is_seen_by_the_next_one(tmp_path: Path) -> None:
    """The memo records the inputs as read before the cycle reads them: a change meanwhile makes
    the next cycle full (recorded after the cycle, the memo would say 'up' for a cycle that saw
    'down', and the job would wait for the retry wake-up)."""
    ex = ComesBack({"node001": tuple(range(8))})
    h = LoopHarness(tmp_path, gpus=8, executor=ex, policy="easy-backfill")
    try:
        job = h.submit(gpus=2)
        ex.reads = 0
        assert h.step()
        assert h.step(0.25)
        assert h.job(job)["state"] == "RUNNING"
    finally:
        h.close()

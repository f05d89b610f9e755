"""The memoised ordered cycle when admission checks hold every job it examined (no head): a new
arrival costs one admission check, not a pass over the whole queue, and the decisions equal a full
cycle's, including at the backfill depth and when the held jobs are released."""

from __future__ import annotations

from collections import Counter

from builders import Hub, job
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from steppe.core.cluster import Cluster
from steppe.core.job import JobState, PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.policies import make_policy


class Review:
    """An AI-use review outside the state: holds every job of a project not approved; counts its checks."""

    def __init__(self) -> None:
        self.approved: set[str] = set()
        self.version = 0
        self.calls = 0

    def approve(self, tenant: str) -> None:
        self.approved.add(tenant)
        self.version += 1

    def epoch(self, now: float) -> int:
        return self.version

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        self.calls += 1
        return None if rec.spec.tenant in self.approved else PendingReason.AWAITING_REVIEW


def test_an_arrival_held_again_costs_one_check_and_an_approval_releases_the_queue() -> None:
    review = Review()
    hub = Hub(Cluster.uniform(1, 8, "H100"), "easy-backfill", checks=(*DEFAULT_CHECKS, review))
    hub.submit(*(job(i, 1) for i in range(1, 51)))
    first = hub.step(0.0)
    assert not first.starts and review.calls == 50
    assert all(r.reason is PendingReason.AWAITING_REVIEW for r in hub.state.jobs.values())
    review.calls = 0
    hub.submit(job(51, 1), at=0.5)
    plan = hub.step(0.5)
    assert review.calls == 1 and plan.reasons == {51: PendingReason.AWAITING_REVIEW}
    review.calls = 0
    hub.step(1.0)  # HELD_REFRESH_S later, a full cycle looks at every held job again
    assert review.calls == 51
    review.approve("a")  # a new approval changes the check's epoch: a full cycle starts what fits
    plan = hub.step(1.1)
    assert sorted(s.job_id for s in plan.starts) == list(range(1, 9))


def test_at_the_depth_an_arrival_behind_the_last_examined_job_keeps_its_reason() -> None:
    review = Review()
    hub = Hub(Cluster.uniform(1, 8, "H100"), "easy-backfill", checks=(*DEFAULT_CHECKS, review), depth=5)
    hub.submit(*(job(i, 1) for i in range(1, 9)))
    hub.step(0.0)
    hub.submit(job(9, 1), at=0.5)
    review.calls = 0
    incremental = hub.cycle(0.5)
    full = make_policy("easy-backfill", checks=(*DEFAULT_CHECKS, review), depth=5).schedule(hub.state, 0.5)
    assert review.calls == 5  # the fresh policy's full cycle alone; the memoised one examined nobody
    assert incremental.reasons == full.reasons == {} and not incremental.starts and not full.starts


@settings(max_examples=120, stateful_step_count=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
class HeldQueueEqualsFull(RuleBasedStateMachine):
    """Random submits, ends, cancels, approvals and time steps on a hub whose review holds everyone at
    first; each cycle's starts and reasons equal a fresh full cycle's."""

    def __init__(self) -> None:
        super().__init__()
        self.review = Review()
        self.hub = Hub(Cluster.uniform(2, 4, "H100"), "easy-backfill", checks=(*DEFAULT_CHECKS, self.review), depth=6)
        self.now = 0.0
        self.next_id = 1

    @rule(gpus=st.sampled_from([1, 2, 4, 8]), runtime=st.sampled_from([30.0, 500.0]), tenant=st.sampled_from("ab"))
    def submit(self, gpus: int, runtime: float, tenant: str) -> None:
        self.hub.submit(job(self.next_id, gpus, runtime=runtime, submit=self.now, tenant=tenant), at=self.now)
        self.next_id += 1

    @precondition(lambda self: bool(self.hub.state.running))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        self.hub.state.finish(data.draw(st.sampled_from(sorted(self.hub.state.running))), self.now, JobState.COMPLETED)

    @precondition(lambda self: any(r.state is JobState.PENDING for r in self.hub.state.jobs.values()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        pending = sorted(j for j, r in self.hub.state.jobs.items() if r.state is JobState.PENDING)
        self.hub.state.cancel(data.draw(st.sampled_from(pending)), self.now)

    @rule(tenant=st.sampled_from("ab"))
    def approve(self, tenant: str) -> None:
        self.review.approve(tenant)

    @rule(dt=st.sampled_from([0.0, 0.25, 1.0, 60.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def cycle(self) -> None:
        fresh = make_policy("easy-backfill", checks=(*DEFAULT_CHECKS, self.review), depth=6)
        full = fresh.schedule(self.hub.state, self.now)
        incremental = self.hub.cycle(self.now)
        assert sorted((s.job_id, s.allocation) for s in incremental.starts) == sorted(
            (s.job_id, s.allocation) for s in full.starts
        )
        if not full.starts and self.review.approved == set():  # everyone held: the same reasons too
            assert incremental.reasons == full.reasons
        self.hub.state.apply(incremental, self.now)

    @invariant()
    def gpus_hold(self) -> None:
        state = self.hub.state
        assert state.inventory.total_free == 8 - sum(r.gpus for r in state.running.values()) >= 0


TestHeldQueueEqualsFull = HeldQueueEqualsFull.TestCase

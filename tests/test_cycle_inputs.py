"""Cycle inputs: the memoised cycle reacts to every event that can release a held job, and a failing
cycle leaves the inventory untouched; a property test checks incremental == full cycle."""

from __future__ import annotations

from collections import Counter

import pytest
from builders import Flaky, Hub, job
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from steppe.core.cluster import Cluster, Node, SiteSpec, TenantSpec
from steppe.core.gpu import gpu_type
from steppe.core.job import JobState, PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.energy.fleet import FleetPower
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.deferral import DeferralCheck
from steppe.scheduling.policies import make_policy
from steppe.scheduling.power import ConstantLimits, PowerBudget, SiteLimits
from steppe.twin.replay import replay
from steppe.twin.trace import Trace


class Gate:
    """A check outside the hub state, like an AI-use review: holds tenant ``b`` while closed."""

    def __init__(self) -> None:
        self.open = False
        self.version = 0

    def flip(self) -> None:
        self.open = not self.open
        self.version += 1

    def epoch(self, now: float) -> int:
        return self.version

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        return None if self.open or rec.spec.tenant != "b" else PendingReason.AWAITING_REVIEW


@pytest.mark.parametrize("policy", ["easy-backfill", "multifactor"])
def test_an_approval_releases_a_held_job_while_the_head_is_blocked(policy: str) -> None:
    gate = Gate()
    hub = Hub(Cluster.uniform(1, 8, "H200"), policy, checks=(*DEFAULT_CHECKS, gate))
    hub.run(job(1, 6, runtime=3600.0, tenant="a"))
    hub.submit(job(2, 4, runtime=3600.0, tenant="a", submit=1.0), at=1.0)  # the head: blocked on Resources
    hub.submit(job(3, 1, runtime=60.0, tenant="b", submit=2.0), at=2.0)  # held: AwaitingReview
    assert hub.step(3.0).starts == [] and hub.state.jobs[3].reason is PendingReason.AWAITING_REVIEW
    assert hub.step(4.0).starts == []  # memoised: nothing changed
    gate.flip()  # B is approved; nothing starts or stops
    assert hub.started(hub.step(5.0)) == [3]  # backfilled at once, beside the blocked head


def test_a_queue_held_past_the_depth_costs_no_cycle_per_arrival_and_a_cancel_moves_the_window() -> None:
    gate = Gate()
    hub = Hub(Cluster.uniform(1, 8, "H200"), "easy-backfill", checks=(*DEFAULT_CHECKS, gate), depth=2)
    hub.submit(job(1, 1, tenant="b"), job(2, 1, tenant="b", submit=1.0), job(3, 1, tenant="a", submit=2.0), at=2.0)
    assert hub.step(3.0).starts == []  # jobs 1 and 2 await review; job 3 is past the depth: not examined
    hub.submit(job(4, 1, tenant="a", submit=4.0), at=4.0)
    assert hub.step(4.0).starts == [] and hub.state.jobs[4].reason is not PendingReason.AWAITING_REVIEW
    hub.state.cancel(1, 5.0)  # job 3 is now within the depth
    assert hub.started(hub.step(5.0)) == [3]


def test_arrivals_behind_a_blocked_head_count_toward_the_depth_as_in_a_full_cycle() -> None:
    hub = Hub(Cluster.uniform(1, 8, "H200"), "easy-backfill", depth=2)
    hub.submit(job(1, 1, runtime=30.0), at=0.0)
    assert hub.started(hub.step(0.0)) == [1]
    hub.submit(job(2, 8, runtime=30.0), at=0.0)
    assert hub.step(0.0).starts == []  # the head waits for job 1's GPU (at t=30)
    hub.submit(job(3, 1, runtime=30.0), job(4, 1, runtime=30.0), at=0.0)  # both would end by t=30
    assert hub.started(hub.step(0.0)) == [3]  # a cycle examines 2 jobs: the head and job 3


@pytest.mark.parametrize("policy", ["easy-backfill", "multifactor"])
def test_a_drained_node_takes_nothing_new_and_a_resume_releases_a_held_job(policy: str) -> None:
    hub = Hub(Cluster.uniform(2, 8, "H200"), policy)
    hub.run(job(1, 6, runtime=3600.0, tenant="a"))
    ran_on = hub.state.jobs[1].allocation[0][0]
    hub.state.set_drained({ran_on})  # its 2 idle GPUs leave the inventory; job 1 runs on
    assert hub.state.inventory.free[ran_on] == 0 and hub.state.drained == {ran_on: 2}
    hub.submit(job(2, 8, runtime=60.0, tenant="a", submit=1.0), job(3, 2, runtime=60.0, tenant="a", submit=2.0),
               at=2.0)  # fmt: skip
    started = hub.started(hub.step(3.0))
    assert started == [2] and hub.state.jobs[2].allocation[0][0] != ran_on  # the other node
    assert hub.step(4.0).starts == [] and hub.state.jobs[3].reason is PendingReason.RESOURCES
    hub.state.finish(1, 5.0, JobState.COMPLETED)  # the drained node keeps what job 1 gives back
    assert hub.state.drained == {ran_on: 8} and hub.step(5.0).starts == []
    assert hub.state.set_drained(()) and hub.state.inventory.free[ran_on] == 8  # a resume: a new generation
    assert hub.started(hub.step(6.0)) == [3]  # no start or stop needed: the memo is not reused


def test_gpus_others_hold_on_a_drained_node_are_counted_as_theirs() -> None:
    hub = Hub(Cluster.uniform(1, 8, "H200"), "fifo")
    hub.state.set_drained({0})
    assert hub.state.set_foreign({0: 3}) == {0: 3} and hub.state.drained == {0: 5}
    assert hub.state.set_foreign({}) == {} and hub.state.drained == {0: 8}
    assert hub.state.inventory.free[0] == 0


def test_a_memoised_multifactor_cycle_ends_when_fair_share_is_recalculated() -> None:
    hub = Hub(Cluster.uniform(2, 8, "H200"), "multifactor")
    hub.run(job(1, 1, runtime=100.0, tenant="a", submit=-100.0), at=-100.0)
    hub.state.finish(1, 0.0, JobState.COMPLETED)  # a has used 100 GPU-seconds
    hub.run(job(2, 8, runtime=1e6, tenant="b"), at=0.0)  # b uses 8 GPUs from now on
    hub.run(job(3, 1, runtime=200.0, tenant="c"), at=0.0)
    hub.submit(job(4, 9, tenant="a"), job(5, 9, tenant="b"), at=0.0)
    hub.step(0.0)  # fair share calculated at t=0: b has used nothing, its job 5 leads
    assert hub.state.jobs[5].reason is PendingReason.RESOURCES
    hub.state.finish(3, 200.0, JobState.COMPLETED)
    hub.step(200.0)  # a job ended: a full cycle, with the factors of t=0 (a period is 300 s)
    full = make_policy("multifactor").schedule(hub.state, 310.0)  # recalculated: b has used 2,480 GPU-s, a 100
    assert full.reasons[4] is PendingReason.RESOURCES  # a's job 4 leads now
    assert hub.cycle(310.0).reasons == full.reasons  # the memo of t=200 is not reused


def test_a_memoised_multifactor_cycle_walks_arrivals_in_priority_order_not_arrival_order() -> None:
    """On 8 GPUs, a 6-GPU job runs and a 3-GPU head waits (2 free). Tenant a's 1-GPU job arrives,
    then tenant b's 2-GPU job, which b's unused fair share puts ahead of it. A full cycle looks at
    b's job first (2 fit; held by review) and starts a's; walked in arrival order, a's would start
    first and b's, no longer fitting, would keep no reason."""
    gate = Gate()
    hub = Hub(Cluster.uniform(1, 8, "H100"), "multifactor", checks=(*DEFAULT_CHECKS, gate))
    hub.run(job(1, 6, runtime=3600.0, tenant="a"))
    hub.submit(job(2, 3, runtime=60.0, tenant="a"), at=0.0)
    hub.step(0.0)
    assert hub.state.jobs[2].reason is PendingReason.RESOURCES  # the head; the cycle is memoised
    hub.submit(job(3, 1, runtime=60.0, tenant="a"), job(4, 2, runtime=60.0, tenant="b"), at=0.0)
    full = make_policy("multifactor", checks=(*DEFAULT_CHECKS, gate)).schedule(hub.state, 0.0)
    assert full.reasons == {4: PendingReason.AWAITING_REVIEW} and hub.started(full) == [3]
    incremental = hub.cycle(0.0)
    assert incremental.reasons == full.reasons and hub.started(incremental) == [3]


def test_a_deferred_job_starts_at_its_begin_time_while_the_head_is_blocked() -> None:
    class StepSignal:
        def mean_over(self, t0: float, t1: float) -> float:  # cleaner between 02:00 and 06:00
            overlap = max(0.0, min(t1, 6 * 3600.0) - max(t0, 2 * 3600.0))
            return (800.0 * (t1 - t0) - 200.0 * overlap) / (t1 - t0)

    jobs = [
        job(1, 3, runtime=36000.0),
        job(2, 4, runtime=600.0, submit=1.0),  # blocked behind job 1 until 36,000 s
        job(3, 1, runtime=3600.0, submit=2.0, deferrable=True, deadline_s=28920.0),
    ]
    deferral = DeferralCheck(StepSignal(), "lowest-window")
    result = replay(Trace("test", jobs), Cluster.uniform(1, 4, "H100"), "easy-backfill",
                    checks=(*DEFAULT_CHECKS, deferral), keep_jobs=True)  # fmt: skip
    deferred = result.state.jobs[3]
    assert deferral.begin_time(deferred) == 7200.0
    assert deferred.first_start_s == 7200.0
    assert deferred.end_s is not None and deferred.end_s <= 28920.0  # its deadline is met


@pytest.mark.parametrize("policy", ["fifo", "easy-backfill", "multifactor", "las", "srtf"])
@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_cycle_that_raises_leaves_no_gpu_allocated(policy: str, fail_at: int) -> None:
    flaky = Flaky(fail_at)
    hub = Hub(Cluster.uniform(1, 8, "H100"), policy, checks=(*DEFAULT_CHECKS, flaky))
    hub.submit(*(job(i, 2, runtime=100.0, submit=float(i)) for i in range(1, 5)), at=4.0)
    with pytest.raises(RuntimeError, match="store unavailable"):
        hub.step(5.0)
    assert hub.state.inventory.total_free == 8  # nothing leaked
    assert sorted(hub.started(hub.step(6.0))) == [1, 2, 3, 4]  # and the next cycle uses every GPU


# -- property: the incremental cycle decides what a full cycle decides --------------------------------
@settings(max_examples=150, stateful_step_count=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
class IncrementalEqualsFull(RuleBasedStateMachine):
    """Random submits, ends, cancels, approval flips, quota changes and time steps."""

    policy_name = "easy-backfill"
    options: dict[str, object] = {}  # read only

    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()
        self.cluster = self.fleet().with_tenants(
            {"a": TenantSpec("a", gpu_quota=None), "b": TenantSpec("b", gpu_quota=6)}
        )
        self.hub = Hub(self.cluster, self.policy_name, checks=self.checks(), **self.options)
        self.now = 0.0
        self.next_id = 1

    def fleet(self) -> Cluster:
        return Cluster.uniform(2, 4, "H100")

    def checks(self) -> tuple[object, ...]:
        return (*DEFAULT_CHECKS, self.gate)

    @rule(gpus=st.sampled_from([1, 2, 3, 6, 8]), runtime=st.sampled_from([30.0, 500.0, 2000.0]),
          tenant=st.sampled_from("ab"))  # fmt: skip
    def submit(self, gpus: int, runtime: float, tenant: str) -> None:
        self.hub.submit(job(self.next_id, gpus, runtime=runtime, submit=self.now, tenant=tenant), at=self.now)
        self.next_id += 1

    @precondition(lambda self: bool(self.hub.state.running))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.hub.state.running)))
        self.hub.state.finish(job_id, self.now, JobState.COMPLETED)

    @precondition(lambda self: any(r.state is JobState.PENDING for r in self.hub.state.jobs.values()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        pending = sorted(j for j, r in self.hub.state.jobs.items() if r.state is JobState.PENDING)
        self.hub.state.cancel(data.draw(st.sampled_from(pending)), self.now)

    @rule()
    def flip_approval(self) -> None:
        self.gate.flip()

    @rule(dt=st.sampled_from([0.0, 1.0, 60.0, 600.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def cycle(self) -> None:
        fresh = make_policy(self.policy_name, checks=self.checks(), **self.options)
        full = fresh.schedule(self.hub.state, self.now)  # no memo: decides from scratch
        incremental = self.hub.cycle(self.now)
        assert sorted((s.job_id, s.allocation) for s in incremental.starts) == sorted(
            (s.job_id, s.allocation) for s in full.starts
        )
        assert incremental.reasons == full.reasons  # and every held job says why, as a full cycle would
        self.hub.state.apply(incremental, self.now)

    @invariant()
    def gpus_and_quota_hold(self) -> None:
        state = self.hub.state
        busy = sum(r.gpus for r in state.running.values())
        assert state.inventory.total_free == 8 - busy >= 0
        assert sum(r.gpus for r in state.running.values() if r.spec.tenant == "b") <= 6


TestIncrementalEqualsFull = IncrementalEqualsFull.TestCase


class IncrementalEqualsFullFifo(IncrementalEqualsFull):
    """The same under strict FIFO (no backfill: the memo's arrivals never pass the head)."""

    policy_name = "fifo"


TestIncrementalEqualsFullFifo = IncrementalEqualsFullFifo.TestCase


class IncrementalEqualsFullShallow(IncrementalEqualsFull):
    """The same with a cycle that examines at most 2 jobs: a queue held by review longer than that
    is memoised, and arrivals behind the last job examined are left as a full cycle leaves them."""

    options = {"depth": 2}  # read only


TestIncrementalEqualsFullShallow = IncrementalEqualsFullShallow.TestCase


class IncrementalEqualsFullMultifactor(IncrementalEqualsFull):
    """The same under multifactor: the memo holds only while the fair-share factors of its cycle do."""

    policy_name = "multifactor"


TestIncrementalEqualsFullMultifactor = IncrementalEqualsFullMultifactor.TestCase


class OnlyAlmatyForB:
    """Tenant b's jobs may run only at Almaty (as residency or an approval would say)."""

    def check(self, rec: JobRecord, snap: object, extra: object) -> None:
        return None

    def sites_for(self, rec: JobRecord) -> frozenset[str] | None:
        return frozenset({"almaty"}) if rec.spec.tenant == "b" else None


def _two_sites() -> Cluster:
    nodes = tuple(
        Node(i, f"{site[:3]}-{i}", gpu_type("H100"), 4, 0.0, site) for i, site in enumerate(("astana", "almaty"))
    )
    return Cluster("two-sites", nodes, sites={s: SiteSpec(s, s) for s in ("astana", "almaty")})


_ONE_JOB_W = FleetPower(_two_sites()).added_w(JobRecord(job(0, 2, gpu_type="H100"), 0), "H100", 1.0)


class IncrementalEqualsFullSites(IncrementalEqualsFull):
    """The same on a fleet at two sites (4 H100 each) with a power budget per site (Astana: about
    three GPUs' worth at full power, Almaty: plenty) and tenant b kept to Almaty: every site's draw
    stays within its budget and no gang spans the sites."""

    options = {  # read only
        "power": PowerBudget(
            FleetPower(_two_sites()), ConstantLimits(1e9), 0.0, capping=True,
            sites={"astana": SiteLimits(ConstantLimits(1.6 * _ONE_JOB_W), 0.0),
                   "almaty": SiteLimits(ConstantLimits(1e9), 0.0)},
        )
    }  # fmt: skip

    def fleet(self) -> Cluster:
        return _two_sites()

    def checks(self) -> tuple[object, ...]:
        return (*DEFAULT_CHECKS, self.gate, OnlyAlmatyForB())

    @invariant()
    def each_site_within_its_power_and_every_gang_at_one_site(self) -> None:
        state = self.hub.state
        assert state.site_draw_w["astana"] <= 1.6 * _ONE_JOB_W * (1 + 1e-9)
        site_of = [n.site for n in state.cluster.nodes]
        for rec in state.running.values():
            assert len({site_of[n] for n, _ in rec.allocation}) == 1
            assert rec.spec.tenant != "b" or rec.site == "almaty"


TestIncrementalEqualsFullSites = IncrementalEqualsFullSites.TestCase

"""Table-driven policy tests on tiny hand-made snapshots."""

from __future__ import annotations

import random

import pytest
from builders import Hub, job

from steppe.core.cluster import Cluster, TenantSpec
from steppe.core.errors import UnknownNameError
from steppe.core.job import JobState, PendingReason
from steppe.core.plan import Plan
from steppe.scheduling.policies import make_policy
from steppe.twin.replay import replay
from steppe.twin.trace import Trace


# -- FIFO and EASY ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "expected_starts", "head_reason"),
    [
        ("fifo", [], PendingReason.RESOURCES),  # the head blocks the 1-GPU job behind it
        ("easy-backfill", [3], PendingReason.RESOURCES),  # the short job backfills
        ("multifactor", [3], PendingReason.RESOURCES),
    ],
)
def test_head_blocks_or_backfills(policy: str, expected_starts: list[int], head_reason: PendingReason) -> None:
    hub = Hub.of(1, 8, policy=policy).run(job(1, 6, runtime=100.0))
    hub.submit(job(2, 4, submit=1.0, runtime=50.0), job(3, 1, submit=2.0, runtime=50.0), at=2.0)
    plan = hub.step(now=2.0)
    assert hub.started(plan) == expected_starts
    assert hub.state.jobs[2].reason is head_reason
    if policy == "fifo":
        assert hub.state.jobs[3].reason is PendingReason.PRIORITY


@pytest.mark.parametrize(
    ("name", "candidate", "starts"),
    [
        ("ends before shadow time", job(3, 2, submit=2.0, runtime=90.0), True),
        ("uses only extra GPUs", job(3, 2, submit=2.0, runtime=500.0), True),
        ("would delay the reservation", job(3, 3, submit=2.0, runtime=500.0), False),
        ("does not fit now", job(3, 4, submit=2.0, runtime=10.0), False),
    ],
)
def test_easy_backfill_rules(name: str, candidate: object, starts: bool) -> None:
    # 8 GPUs, job 1 holds 5 until t=100; head job 2 wants 6 -> shadow 100, extra 8 - 6 = 2
    hub = Hub.of(1, 8, policy="easy-backfill").run(job(1, 5, runtime=100.0))
    hub.submit(job(2, 6, submit=1.0, runtime=50.0), candidate, at=2.0)  # type: ignore[arg-type]
    plan = hub.step(now=2.0)
    assert plan.reservation is not None
    assert (plan.reservation.start_s, plan.reservation.extra_gpus) == (100.0, 2)
    assert (3 in hub.started(plan)) is starts, name


@pytest.mark.parametrize("seed", range(6))
def test_easy_never_delays_the_reserved_job(seed: int) -> None:
    """With exact walltimes, every job that got a reservation starts no later than it."""
    rng = random.Random(seed)
    jobs, t = [], 0.0
    for i in range(300):
        t += rng.expovariate(1 / 30)
        run = rng.choice([20.0, 60.0, 300.0, 1200.0, 3600.0])
        jobs.append(job(i + 1, rng.choice([1, 1, 2, 3, 4, 8, 12]), submit=t, runtime=run))

    first_reservation: dict[int, float] = {}
    policy = make_policy("easy-backfill")

    class Recording:
        name, oracle = policy.name, policy.oracle
        new_queue = policy.new_queue

        def schedule(self, snap, now):  # type: ignore[no-untyped-def]
            plan = policy.schedule(snap, now)
            if plan.reservation is not None:
                first_reservation.setdefault(plan.reservation.job_id, plan.reservation.start_s)
            return plan

    result = replay(Trace("random", jobs), Cluster.uniform(2, 8, "H100"), Recording())
    assert first_reservation, "the scenario must create reservations"
    starts = {row[0]: row[6] for row in result.metrics.rows}
    late = {j: (starts[j], r) for j, r in first_reservation.items() if starts[j] > r + 1e-6}
    assert not late


# -- placement --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("busy", "gpus", "expected_nodes"),
    [
        ([], 8, 1),  # fits one node
        ([], 16, 2),  # whole nodes for a multi-node gang
        ([6], 2, 1),  # best fit: goes onto the node with exactly 2 free
        ([6, 6], 12, 3),  # two empty nodes are not enough: 8 + 2 + 2 would be 3 nodes
    ],
)
def test_gang_placement_packs_onto_fewest_nodes(busy: list[int], gpus: int, expected_nodes: int) -> None:
    hub = Hub.of(3, 8, policy="fifo")
    for i, g in enumerate(busy):
        hub.run(job(100 + i, g, runtime=1000.0))
    hub.submit(job(1, gpus))
    plan = hub.step()
    assert len(plan.starts) == 1
    assert len(plan.starts[0].allocation) == expected_nodes
    if busy and gpus == 2:
        assert plan.starts[0].allocation[0][0] == 0  # the partly used node, not an empty one


def test_gpu_type_constraint() -> None:
    from steppe.core.cluster_config import cluster_from_dict

    cluster = cluster_from_dict(
        {"nodes": [{"count": 1, "gpus": 8, "gpu_type": "A100"}, {"count": 1, "gpus": 8, "gpu_type": "H200"}]}, "t"
    )
    hub = Hub(cluster, "fifo")
    hub.submit(job(1, 4, gpu_type="H200"), job(2, 8, gpu_type="A100"), job(3, 4, gpu_type="B200"))
    hub.step()
    assert hub.state.jobs[1].gpu_type == "H200"
    assert hub.state.jobs[2].gpu_type == "A100"
    assert hub.state.jobs[3].reason is PendingReason.REQ_NODE_NOT_AVAIL


def test_tenant_quota_holds_with_qosgrpgres_and_does_not_block_others() -> None:
    hub = Hub.of(1, 8, policy="fifo").with_tenants(a=TenantSpec("a", gpu_quota=2))
    hub.submit(job(1, 2, tenant="a"), job(2, 1, tenant="a", submit=1.0), job(3, 1, tenant="b", submit=2.0))
    plan = hub.step()
    assert hub.started(plan) == [1, 3]
    assert hub.state.jobs[2].reason is PendingReason.QOS_GRP_GRES


# -- fair share --------------------------------------------------------------------------------
def test_fair_share_favours_the_under_served_tenant() -> None:
    hub = Hub.of(1, 4, policy="multifactor")
    hub.run(job(1, 4, tenant="heavy", runtime=36000.0), at=0.0)
    hub.state.finish(1, 36000.0, JobState.COMPLETED)  # heavy used 40 GPU-hours
    hub.run(job(2, 4, tenant="light", runtime=100.0, submit=36000.0), at=36000.0)  # cluster busy again
    # heavy's job waits longer than light's, yet light goes first
    hub.submit(job(3, 4, tenant="heavy", submit=36000.0), at=36000.0)
    hub.submit(job(4, 4, tenant="light", submit=40000.0), at=40000.0)
    hub.state.finish(2, 40100.0, JobState.COMPLETED)
    plan = hub.step(now=40100.0)
    assert hub.started(plan) == [4]
    assert hub.state.jobs[3].reason is PendingReason.RESOURCES


# -- LAS and SRTF --------------------------------------------------------------------------------
def test_las_preempts_the_longest_served_job_first() -> None:
    hub = Hub.of(1, 2, policy="las", thresholds_gpu_s=(3600.0, 36000.0))
    hub.run(job(1, 1, runtime=1e6), at=0.0)  # will have 40,000 GPU-s at t=40,000: queue 2
    hub.run(job(2, 1, runtime=1e6, submit=30000.0), at=30000.0)  # 10,000 GPU-s: queue 1
    hub.step(now=40000.0)  # demotions are due
    hub.submit(job(3, 1, submit=40000.0), at=40000.0)
    plan = hub.step(now=40000.0)
    assert plan.preemptions == [1]
    assert hub.started(plan) == [3]
    assert hub.state.jobs[1].state is JobState.PENDING and hub.state.jobs[1].preemptions == 1


def test_las_does_not_preempt_within_a_queue_and_promotes_the_starving() -> None:
    hub = Hub.of(1, 1, policy="las", starve_factor=2.0, starve_min_s=60.0)
    hub.run(job(1, 1, runtime=1e6), at=0.0)
    hub.submit(job(2, 1, submit=10.0), at=10.0)
    assert hub.step(now=10.0).preemptions == []  # both in queue 0: no preemption
    plan = hub.step(now=4000.0)  # job 1 crossed 3600 GPU-s: demoted, job 2 preempts it
    assert plan.preemptions == [1]
    # job 2 is demoted at 7600 (same queue as job 1 then: no preemption)
    assert hub.step(now=7600.0).preemptions == []
    # job 1 ran 4000 s; after waiting 2 x 4000 s it is promoted to queue 0 and preempts job 2
    plan = hub.step(now=12000.0)
    assert plan.preemptions == [2] and hub.started(plan) == [1]


def test_srtf_oracle_preempts_longer_remaining_work() -> None:
    hub = Hub.of(1, 1, policy="srtf")
    hub.run(job(1, 1, runtime=5000.0), at=0.0)
    hub.submit(job(2, 1, runtime=100.0, submit=10.0), at=10.0)
    plan = hub.step(now=10.0)
    assert plan.preemptions == [1] and hub.started(plan) == [2]
    assert make_policy("srtf").oracle is True


def test_unknown_policy_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="easy-backfill, fifo, las, multifactor, srtf"):
        make_policy("round-robin")


def test_writer_refuses_stale_plan_entries() -> None:
    hub = Hub.of(1, 4, policy="fifo")
    hub.submit(job(1, 4), job(2, 4, submit=1.0))
    plan = hub.cycle()
    stale = Plan(starts=[*plan.starts, plan.starts[0]])
    done = hub.state.apply(stale, 0.0)
    assert [r.job_id for r in done.started] == [1]
    assert done.refused and done.refused[0][1] == "not pending"


def test_failed_adoption_leaves_no_trace() -> None:
    hub = Hub.of(1, 4, policy="fifo")
    hub.run(job(1, 4, runtime=1000.0))
    with pytest.raises(ValueError, match="cannot adopt"):
        hub.state.adopt_running(job(2, 2), ((0, 2),), started_s=0.0)
    assert 2 not in hub.state.jobs and len(hub.state.queue) == 0 and not hub.state.pending_kinds


def test_forget_drops_only_ended_jobs() -> None:
    hub = Hub.of(1, 4, policy="fifo")
    hub.run(job(1, 2, runtime=10.0)).submit(job(2, 4, submit=1.0), at=1.0)
    hub.state.forget(1)
    hub.state.forget(2)
    assert set(hub.state.jobs) == {1, 2}
    hub.state.finish(1, 10.0, JobState.COMPLETED)
    hub.state.forget(1)
    assert set(hub.state.jobs) == {2}

"""A cycle reads the state and writes only its scratch overlay: a failing cycle leaves the state
byte for byte as it was, and no cycle ever writes the inventory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from builders import Flaky, Hub, job
from hypothesis import given
from hypothesis import strategies as st

from steppe.core.cluster import Cluster, QosSpec
from steppe.core.inventory import GpuInventory, InventoryOverlay
from steppe.core.records import JobRecord
from steppe.core.state import HubState
from steppe.energy.fleet import FleetPower
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.power import ConstantLimits, PowerBudget

POLICIES = ["fifo", "easy-backfill", "multifactor", "las", "srtf"]


def fingerprint(state: HubState, now: float) -> tuple[Any, ...]:
    """Everything a cycle could disturb: free GPUs and their indexes, jobs, tenants, power."""
    inv = state.inventory
    return (
        list(inv.free),
        dict(inv.free_by_pool),
        inv.total_free,
        {t: list(index) for t, index in inv.index.items()},
        {j: (r.state, r.reason, r.allocation, r.cap_fraction, r.power_w, r.epoch) for j, r in state.jobs.items()},
        sorted(state.running),
        list(state.running_by_end),
        dict(state.tenant_gpus),
        state.generation,
        state.power_draw_w,
        state.reclaimable_w,
        list(state.full_power),
        list(state.capped),
        dict(state.pending_kinds),
        [r.job_id for r in state.queue.ordered(now)],
        {t: state.usage.value(t, now) for t in state.usage.tenants()},
    )


def busy_hub(policy: str, flaky: Flaky, power: PowerBudget | None = None) -> Hub:
    """Two 8-GPU nodes: a long 8-GPU job and a 4-GPU job run; five more jobs wait (the fourth needs a
    preemption under ``las`` and ``srtf``)."""
    options: dict[str, object] = {"checks": (*DEFAULT_CHECKS, flaky)}
    if power is not None:
        options["power"] = power
    cluster = Cluster("t", Cluster.uniform(2, 8, "H200").nodes, {}, {"normal": QosSpec("normal")})
    hub = Hub(cluster, policy, **options)
    hub.submit(job(1, 8, runtime=50_000.0), job(2, 4, runtime=50_000.0, submit=1.0), at=1.0)
    hub.step(1.0)
    hub.step(3000.0)  # time-driven priority changes (LAS demotions) happen here, not in the failing cycle
    waiting = [job(3, 2, runtime=100.0), job(4, 1, runtime=100.0), job(5, 1, runtime=50.0), job(6, 6, runtime=10.0),
               job(7, 1, runtime=10.0)]  # fmt: skip
    hub.submit(*(j.__class__(**{**_fields(j), "submit_s": 3000.0}) for j in waiting), at=3000.0)
    return hub


def _fields(spec: Any) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__slots__}


@pytest.mark.parametrize("policy", POLICIES)
def test_a_cycle_that_raises_leaves_the_state_byte_for_byte(policy: str) -> None:
    dry = Flaky()
    dry_hub = busy_hub(policy, dry)
    dry.calls = 0
    dry_hub.step(3000.0)
    assert dry.calls >= 4, f"{policy} asked the checks only {dry.calls} times: the cycle decides too little"
    expected = [(s.job_id, s.allocation) for s in busy_hub(policy, Flaky()).step(3000.0).starts]
    for fail_at in range(1, dry.calls + 1):  # the check raises at each of the cycle's calls in turn
        flaky = Flaky()
        hub = busy_hub(policy, flaky)
        before = fingerprint(hub.state, 3000.0)
        flaky.calls, flaky.n = 0, fail_at
        with pytest.raises(RuntimeError, match="store unavailable"):
            hub.step(3000.0)
        assert fingerprint(hub.state, 3000.0) == before, f"failing at call {fail_at}"
        flaky.n = 0
        plan = hub.step(3000.0)  # the next cycle decides as if the failed one never ran
        assert [(s.job_id, s.allocation) for s in plan.starts] == expected, f"failing at call {fail_at}"


def test_a_failing_cycle_after_trial_preemptions_and_caps_changes_nothing() -> None:
    cluster = Cluster("t", Cluster.uniform(2, 8, "H200").nodes, {}, {"normal": QosSpec("normal")})
    fleet = FleetPower(cluster)
    full = fleet.added_w(JobRecord(job(0, 1), 0), "H200", 1.0)
    limits = ConstantLimits(fleet.static_it_w() + 12 * full)  # room for 12 GPUs at full power
    budget = PowerBudget(fleet, limits, fleet.static_it_w(), capping=True, floor=0.6)
    flaky = Flaky()
    hub = busy_hub("las", flaky, power=budget)
    limits.cap_w = fleet.static_it_w() + 8 * full  # the cap falls: the cycle must shed (caps, preemptions)
    before = fingerprint(hub.state, 3000.0)
    flaky.calls, flaky.n = 0, 2
    with pytest.raises(RuntimeError):
        hub.step(3000.0)
    assert fingerprint(hub.state, 3000.0) == before
    flaky.n = 0
    plan = hub.step(3000.0)
    assert plan.recaps and budget.static_it_w + hub.state.power_draw_w <= limits.cap_w + 1e-6


class WriteGuard:
    """Makes the real inventory raise on any write while ``armed``."""

    def __init__(self, inv: GpuInventory, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        for name in ("allocate", "release", "_change"):
            real = getattr(inv, name)
            monkeypatch.setattr(inv, name, self._guard(name, real))

    def _guard(self, name: str, real: Any) -> Any:
        def guarded(*args: Any) -> Any:
            if self.armed:
                raise AssertionError(f"a cycle called inventory.{name}")
            return real(*args)

        return guarded


@pytest.mark.parametrize("policy", POLICIES)
def test_no_cycle_writes_the_inventory(policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = busy_hub(policy, Flaky())
    guard = WriteGuard(hub.state.inventory, monkeypatch)
    decided = 0
    for now in (3000.0, 3001.0, 9000.0, 60_000.0, 200_000.0):
        for rec in [r for r in hub.state.running.values() if r.expected_end_s <= now]:
            hub.state.finish(rec.job_id, now, rec.state.COMPLETED)
        guard.armed = True
        plan = hub.cycle(now)
        guard.armed = False
        decided += len(plan.starts) + len(plan.preemptions)
        hub.state.apply(plan, now)
    assert decided >= 4


# -- the overlay against a real inventory with the same changes ----------------------------------
@st.composite
def trials(draw: st.DrawFn) -> list[tuple[int, int]]:
    """A sequence of (node, +take / -give back) that a cycle could make on 6 nodes of 8 GPUs."""
    taken = [0] * 6
    free = [draw(st.integers(0, 8)) for _ in range(6)]
    ops = []
    for _ in range(draw(st.integers(0, 10))):
        node = draw(st.integers(0, 5))
        room = free[node] - taken[node]
        busy = 8 - room
        if room and draw(st.booleans()):
            g = draw(st.integers(1, room))
        elif busy:
            g = -draw(st.integers(1, busy))
        else:
            continue
        taken[node] += g
        ops.append((node, g))
    return [(-1, f) for f in free] + ops


def _walk(it: Iterator[tuple[int, int]]) -> list[tuple[int, int]]:
    return list(it)


@given(trials())
def test_the_overlay_answers_as_the_inventory_would(ops: list[tuple[int, int]]) -> None:
    cluster = Cluster.uniform(6, 8, "H100")
    base, expect = GpuInventory(cluster), GpuInventory(cluster)
    start = [f for node, f in ops if node == -1]
    for node, f in enumerate(start):
        if f < 8:
            base.allocate(((node, 8 - f),))
            expect.allocate(((node, 8 - f),))
    frozen = (list(base.free), {t: list(i) for t, i in base.index.items()})
    view = InventoryOverlay(base)
    for node, g in ops[len(start) :]:
        if g > 0:
            view.allocate(((node, g),))
            expect.allocate(((node, g),))
        else:
            view.release(((node, -g),))
            expect.release(((node, -g),))
    assert (list(base.free), {t: list(i) for t, i in base.index.items()}) == frozen  # never written
    assert view.total_free == expect.total_free and view.free_by_pool == expect.free_by_pool
    assert [view.free_on(n) for n in range(6)] == expect.free
    for g in range(1, 10):
        assert view.best_fit_node("H100", g) == expect.best_fit_node("H100", g)
    assert _walk(view.nodes_by_free_desc("H100")) == _walk(expect.nodes_by_free_desc("H100"))
    view.reset()
    assert [view.free_on(n) for n in range(6)] == base.free and view.total_free == base.total_free

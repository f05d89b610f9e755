"""Fluent builders for hand-made hub snapshots used by table-driven policy tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from steppe.core.cluster import Cluster, QosSpec, TenantSpec
from steppe.core.job import JobSpec, PendingReason
from steppe.core.plan import Plan, Start
from steppe.core.records import JobRecord
from steppe.core.state import HubState, Snapshot
from steppe.core.usage import DecayedUsage
from steppe.scheduling.placement import place
from steppe.scheduling.policies import Policy, make_policy


def job(job_id: int, gpus: int = 1, *, submit: float = 0.0, runtime: float = 100.0, walltime: float | None = None,
        tenant: str = "a", **kw: object) -> JobSpec:
    return JobSpec(job_id=job_id, submit_s=submit, gpus=gpus, runtime_s=runtime,
                   walltime_s=walltime if walltime is not None else runtime, tenant=tenant, **kw)  # type: ignore[arg-type]


class Hub:
    """A hub under one policy, driven by hand: ``run(job, at=t)`` starts a job now, ``submit`` queues one."""

    def __init__(self, cluster: Cluster, policy: str | Policy = "fifo", **options: object) -> None:
        self.cluster = cluster
        self.policy = make_policy(policy, **options) if isinstance(policy, str) else policy
        usage = DecayedUsage()
        self.state = HubState(cluster, self.policy.new_queue(cluster, usage), usage)

    @staticmethod
    def of(nodes: int, gpus: int, gpu_type: str = "H100", policy: str = "fifo", **options: object) -> Hub:
        return Hub(Cluster.uniform(nodes, gpus, gpu_type), policy, **options)

    def with_tenants(self, **tenants: TenantSpec) -> Hub:
        return Hub(self.cluster.with_tenants(tenants), self.policy.name)

    def with_qos(self, **qos: QosSpec) -> Hub:
        c = self.cluster
        return Hub(Cluster(c.name, c.nodes, c.tenants, {**c.qos, **qos}), self.policy.name)

    def run(self, spec: JobSpec, at: float = 0.0) -> Hub:
        """Submit and start ``spec`` right away (placing it like any job)."""
        spec = replace(spec, submit_s=min(spec.submit_s, at))
        self.state.submit(spec, at)
        alloc = place(self.state.inventory, spec.gpus, spec.gpu_type)
        assert alloc is not None, f"job {spec.job_id} does not fit"
        done = self.state.apply(Plan(starts=[Start(spec.job_id, alloc)]), at)
        assert done.started, done.refused
        return self

    def submit(self, *specs: JobSpec, at: float = 0.0) -> Hub:
        for spec in specs:
            self.state.submit(spec, at)
        return self

    def cycle(self, now: float = 0.0) -> Plan:
        return self.policy.schedule(self.state, now)

    def step(self, now: float = 0.0) -> Plan:
        """One cycle, committed."""
        plan = self.cycle(now)
        self.state.apply(plan, now)
        return plan

    def started(self, plan: Plan) -> list[int]:
        return [s.job_id for s in plan.starts]


class Flaky:
    """An admission check that raises on its ``n``-th call (0: never), as a store that goes away would."""

    def __init__(self, n: int = 0) -> None:
        self.calls, self.n = 0, n

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("store unavailable")
        return None

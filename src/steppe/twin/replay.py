"""Replay a trace through a policy on a simulated clock.

The loop is the same single-writer pipeline the live hub runs, with a simulated clock and
the fake executor injected:

1. pop every event due at the next instant (job ends first, then wake-ups) and every job
   submitted at that instant; apply them to the state;
2. run one scheduling cycle on the state (the policy reads it as a snapshot);
3. the writer verifies and commits the plan; the executor turns starts into end events;
4. if the plan asks for a wake-up, schedule it.

Jobs that could never start (no GPU pool of the fleet could hold them, more GPUs than their
tenant's quota, more power than the facility cap ever allows) are refused at submission by the
submission gate the live API also asks (``scheduling/gate.py``, as Slurm refuses them) and
counted in ``rejected`` under the first rule they break; nothing is dropped silently.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from steppe.core.cluster import Cluster
from steppe.core.job import JobState
from steppe.core.records import JobRecord
from steppe.core.state import HubState, StateListener
from steppe.core.usage import DecayedUsage
from steppe.executors.fake import FakeExecutor
from steppe.metering import MemorySink
from steppe.power import PowerSetup, power_ceiling_w
from steppe.scheduling.admission import AdmissionCheck
from steppe.scheduling.gate import PowerCeiling, SubmissionGate
from steppe.scheduling.policies import Policy, make_policy
from steppe.twin.energy_meter import EnergyMeter, EnergyReport, twin_metering
from steppe.twin.engine import EventQueue
from steppe.twin.eventlog import EventLog
from steppe.twin.invariants import InvariantChecker, InvariantViolation
from steppe.twin.metrics import MetricsCollector
from steppe.twin.trace import Trace

_END, _WAKE = 0, 1


@dataclass
class ReplayResult:
    """What a replay produced."""

    policy: str
    oracle: bool
    summary: dict[str, Any]
    metrics: MetricsCollector
    digest: str
    state: HubState
    rejected: Counter[str] = field(default_factory=Counter)
    cycles: int = 0
    energy: EnergyReport | None = None


Progress = Callable[[int, int], None]
"""``progress(jobs_done, jobs_total)``, called now and then."""


def replay(
    trace: Trace,
    cluster: Cluster,
    policy: Policy | str,
    *,
    check_invariants: bool = True,
    listeners: Sequence[StateListener] = (),
    slowdown: Callable[[JobRecord], float] | None = None,
    progress: Progress | None = None,
    power: PowerSetup | None = None,
    checks: Sequence[AdmissionCheck] | None = None,
) -> ReplayResult:
    """Replay ``trace`` on ``cluster`` under ``policy``; see the module docstring.

    With ``power``, energy, carbon and cost are metered; if its budget is set, the policy
    schedules under the facility cap (a policy given by name gets the budget) and the
    facility's draw is checked against the cap after every cycle. ``checks`` replaces the
    policy's admission checks (e.g. to add deferral) when the policy is given by name.
    """
    wall0 = time.perf_counter()
    cluster = cluster.with_tenants(trace.tenants)
    if isinstance(policy, str):
        options: dict[str, Any] = {}
        if power is not None and power.budget is not None:
            options["power"] = power.budget
        if checks is not None:
            options["checks"] = tuple(checks)
        pol = make_policy(policy, **options)
    else:
        pol = policy
    usage = DecayedUsage()
    state = HubState(cluster, pol.new_queue(cluster, usage), usage)
    records = MemorySink(keep_records=power is not None)  # the meter's (steppe.metering); per job with a site
    meter = twin_metering(power).build(records)
    metrics = MetricsCollector(cluster, records)
    log = EventLog()
    checker = InvariantChecker(state) if check_invariants else None
    state.listeners.extend([meter, metrics, log, *([checker] if checker else []), *listeners])
    hub_power = EnergyMeter(state, power) if power is not None else None
    if hub_power is not None:
        state.listeners.append(hub_power)
        if slowdown is None:
            slowdown = power.fleet.slowdown  # type: ignore[union-attr]
    budget = power.budget if power is not None else None
    ceiling = PowerCeiling(budget, power_ceiling_w(power)) if power is not None and budget is not None else None
    gate = SubmissionGate(cluster, ceiling)
    events = EventQueue()

    def schedule_end(t: float, job_id: int, token: int, end_state: JobState) -> None:
        events.push(t, _END, (_END, (job_id, token, end_state)))

    executor = FakeExecutor(schedule_end, slowdown)
    rejected: Counter[str] = Counter()
    jobs = trace.jobs
    n = len(jobs)
    i = submitted = cycles = 0
    t_last = 0.0
    wake_pending: set[float] = set()
    while i < n or len(events):
        t_job = jobs[i].submit_s if i < n else float("inf")
        now = min(t_job, events.peek_time())
        if events.peek_time() == now:
            _, batch = events.pop_batch()
            for kind, payload in batch:
                if kind == _END:
                    job_id, token, end_state = payload
                    if executor.current(job_id, token):
                        state.finish(job_id, now, end_state)
                        executor.ended(job_id)
                else:
                    wake_pending.discard(now)
        while i < n and jobs[i].submit_s == now:
            spec = jobs[i]
            i += 1
            refused = gate.refusals_of(spec)
            if refused:
                rejected[refused[0].rule] += 1
                continue
            state.submit(spec, now)
            submitted += 1
        plan = pol.schedule(state, now)
        cycles += 1
        applied = state.apply(plan, now)
        for rec in applied.recapped:
            executor.recap(rec, now)
        for rec in applied.preempted:
            executor.stop(rec, now)
        for rec in applied.started:
            executor.start(rec, now)
        if budget is not None and checker is not None:
            limits = budget.limits
            draw_w = limits.pue_at(now) * (budget.static_it_w + state.power_draw_w)
            if draw_w > limits.cap_w_at(now) * (1 + 1e-9) + 1e-3:
                raise InvariantViolation(
                    f"t={now}: facility draws {draw_w:,.0f} W over its cap of {limits.cap_w_at(now):,.0f} W"
                )
        t_last = now
        idle = not state.running and not len(state.queue)
        if plan.wakeup_s is not None and plan.wakeup_s > now and plan.wakeup_s not in wake_pending and not idle:
            wake_pending.add(plan.wakeup_s)
            events.push(plan.wakeup_s, _WAKE, (_WAKE, None))
        if progress is not None and cycles % 4096 == 0:
            progress(i, n)
    if checker is not None:
        checker.at_end(submitted)
    if progress is not None:
        progress(n, n)
    meter.emit()
    summary = metrics.summary()
    energy = hub_power.report(t_last, records) if hub_power is not None else None
    if energy is not None:
        summary.update(energy.hub)
        summary["power_scheduling"] = (
            "none" if budget is None else ("cap-jobs-then-hold" if budget.capping else "hold-jobs")
        )
    summary.update(
        policy=pol.name,
        oracle=pol.oracle,
        cluster=cluster.name,
        gpus=cluster.total_gpus,
        trace=trace.source,
        trace_jobs=n,
        rejected=sum(rejected.values()),
        unfinished=submitted - len(metrics.rows),
        cycles=cycles,
        event_digest=log.digest(),
        wall_s=time.perf_counter() - wall0,
    )
    return ReplayResult(pol.name, pol.oracle, summary, metrics, log.digest(), state, rejected, cycles, energy)


"""Replay a trace through a policy on a simulated clock: build the environment, run the pipeline, summarise.

The twin runs the live hub's pipeline step (``steppe.pipeline.step``: exits, submissions
through the gate, walltime, cycle, writer, executor, wake-ups) with three things injected:

* the simulated environment (``twin/engine.py``): jumps from instant to instant (the next
  executor exit, arrival, walltime end or plan wake-up) and runs one step at each;
* the fake executor (``executors/fake.py``): a start schedules the job's exit after its
  work; a stop ends it at once;
* the arrivals (``twin/arrivals.py``): the trace's jobs, through the submission gate the live
  API also asks (``scheduling/gate.py``). Jobs that could never start are counted in
  ``rejected`` under the first rule they break; nothing is dropped silently.

Metrics, the hashed event log and the invariant checker are state listeners. A finished job's
record does not stay: the metrics collector, the last listener, takes the job's figures (six
numbers, ``twin/metrics.py``) and calls ``state.forget`` (``keep_jobs=True`` keeps every record
in ``result.state.jobs``, for a test or a debugging session that inspects them). A replay's
memory is then the trace, the jobs in the hub (pending and running) and about 100 bytes per
finished job (its figures and the busy-GPU series).
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
from steppe.pipeline.step import PipelineStep
from steppe.power import PowerSetup, power_ceiling_w
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck
from steppe.scheduling.arrays import ArrayThrottle
from steppe.scheduling.dependency import BeginAt, DependencyCheck
from steppe.scheduling.gate import PowerCeiling, SubmissionGate
from steppe.scheduling.policies import Policy, make_policy
from steppe.twin.arrivals import TraceArrivals
from steppe.twin.energy_meter import EnergyMeter, EnergyReport, combine, twin_metering
from steppe.twin.engine import SimulatedEnvironment
from steppe.twin.eventlog import EventLog
from steppe.twin.invariants import InvariantChecker, InvariantViolation
from steppe.twin.metrics import MetricsCollector
from steppe.twin.trace import Trace


@dataclass
class ReplayResult:
    """What a replay produced."""

    policy: str
    oracle: bool
    summary: dict[str, Any]
    metrics: MetricsCollector
    digest: str
    state: HubState  # its ``jobs`` holds finished jobs only with ``keep_jobs=True``
    rejected: Counter[str] = field(default_factory=Counter)
    cycles: int = 0
    energy: EnergyReport | None = None
    trace: Trace | None = None


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
    keep_jobs: bool = False,
) -> ReplayResult:
    """Replay ``trace`` on ``cluster`` under ``policy``; see the module docstring.

    With ``power``, energy, carbon and cost are metered; if its budget is set, the policy
    schedules under the facility cap (a policy given by name gets the budget) and the
    facility's draw is checked against the cap after every cycle. ``checks`` replaces the
    policy's admission checks (e.g. to add deferral) when the policy is given by name.
    ``keep_jobs`` keeps finished jobs' records in ``result.state.jobs`` (by default they are
    dropped as the jobs end; ``result.metrics`` has their figures).
    """
    wall0 = time.perf_counter()
    cluster = cluster.with_tenants(trace.tenants)
    dependencies = _dependency_check(trace)
    throttle = ArrayThrottle() if any(j.array_limit for j in trace.jobs) else None
    # the trace's own checks (none for a trace without dependencies, begin times or arrays: nothing to pay)
    trace_checks = (
        *((dependencies,) if dependencies is not None else ()),
        *((BeginAt(),) if any(j.begin_s is not None for j in trace.jobs) else ()),
        *((throttle,) if throttle is not None else ()),
    )
    if isinstance(policy, str):
        options: dict[str, Any] = {}
        if power is not None and power.budget is not None:
            options["power"] = power.budget
        if checks is not None or trace_checks:
            base = tuple(checks) if checks is not None else DEFAULT_CHECKS
            options["checks"] = (*base, *trace_checks)
        pol = make_policy(policy, **options)
    else:
        pol = policy
    usage = DecayedUsage()
    state = HubState(cluster, pol.new_queue(cluster, usage), usage)
    records = MemorySink(keep_records=power is not None)  # the meter's (steppe.metering); per job with a site
    meter = twin_metering(power).build(records)
    metrics = MetricsCollector(cluster, records, forget=None if keep_jobs else state.forget)
    log = EventLog()
    checker = InvariantChecker(state) if check_invariants else None
    state.listeners.extend([meter, log, *([checker] if checker else []), *listeners])
    if dependencies is not None:
        state.listeners.append(dependencies)
    if throttle is not None:
        state.listeners.append(throttle)
    site_power = {s: EnergyMeter(state, power, s) for s in power.site_timelines} if power is not None else {}
    hub_power = EnergyMeter(state, power) if power is not None and not site_power else None
    state.listeners.extend([hub_power] if hub_power is not None else site_power.values())
    if power is not None and slowdown is None:
        slowdown = power.fleet.slowdown
    state.listeners.append(metrics)  # last: it forgets a finished job once every listener saw it
    budget = power.budget if power is not None else None
    ceiling = PowerCeiling(budget, power_ceiling_w(power)) if power is not None and budget is not None else None
    arrivals = TraceArrivals(trace.jobs, state, SubmissionGate(cluster, ceiling))
    env = SimulatedEnvironment()

    def schedule_end(t: float, job_id: int, token: int, end_state: JobState) -> None:
        push_exit(t, (job_id, token, t))

    executor = FakeExecutor(schedule_end, slowdown, cluster)
    push_exit = env.timer(executor.fire)  # one bound method for every exit, registered once

    def raise_over_cap(message: str) -> None:
        raise InvariantViolation(message)

    checked_power = budget if checker is not None else None
    step = PipelineStep(state, pol, executor, arrivals, power=checked_power, on_over_cap=raise_over_cap)
    executor.bind(step.on_exit, _no_launch)
    executor.report_completions(step.on_completed)
    n = len(trace.jobs)

    def report() -> None:
        if progress is not None and step.cycles % 4096 == 0:
            progress(arrivals.next, n)

    env.run(step, arrivals, report if progress is not None else None)
    cycles, submitted, rejected, t_last = step.cycles, arrivals.submitted, arrivals.rejected, env.now_s
    if dependencies is not None:  # what still waits can never run: dependencies never met (as sbatch's
        for rec in list(state.queue.ordered(t_last)):  # kill_invalid_depend: cancelled at the end)
            state.cancel(rec.job_id, t_last)
    if checker is not None:
        checker.at_end(submitted)
    if progress is not None:
        progress(n, n)
    meter.emit()
    summary = metrics.summary()
    energy = hub_power.report(t_last, records) if hub_power is not None else None
    if site_power:
        energy = combine({s: m.report(t_last, records) for s, m in site_power.items()}, records)
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
        unfinished=submitted - summary["jobs"],
        cycles=cycles,
        event_digest=log.digest(),
        wall_s=time.perf_counter() - wall0,
    )
    return ReplayResult(pol.name, pol.oracle, summary, metrics, log.digest(), state, rejected, cycles, energy, trace)


def _dependency_check(trace: Trace) -> DependencyCheck | None:
    """The trace's dependencies' check (None when no job has one: a replay then pays nothing)."""
    targets = [j for spec in trace.jobs for kind, j in spec.dependency if kind != "singleton"]
    if not targets and not any(spec.dependency for spec in trace.jobs):
        return None
    return DependencyCheck(targets)


def _no_launch(job_id: int) -> None:
    """The twin's jobs have no launch details: the fake executor never asks."""

"""The one pipeline step the twin and the live hub both run.

One step at ``now``, in this order, whatever the environment (simulated or wall clock):

1. **Events in**: the executor's exits since the last step (its event stream, ``on_exit``). A
   job whose stop the pipeline asked for ends with the stop's intent (``CANCELLED``,
   ``TIMEOUT``); one that ended on its own ends by its exit code (``COMPLETED``, ``FAILED``).
   An executor whose runs end only as plain completions (exit ``0:0``: the twin's) reports them
   through ``on_completed`` instead: two ints appended to a flat list, no ``ExitInfo`` or
   ``Exited`` per job (a replay ends tens of thousands of jobs a second, and every object it
   keeps alive until the next step is garbage-collector work). They are taken after the exits,
   which were all reported earlier (the stops of the previous step's executor phase).
2. **Submissions**: ``intake.intake(now)`` queues what arrived, through the one submission gate
   (``scheduling/gate.py``): the twin's arrivals, the live hub's inbox (which the API gated).
3. **Walltime**: every running job past its limit is stopped with intent ``TIMEOUT``; the
   intents are made durable first (``recorder.before_stops``), then the executor is asked, and
   exits it reports at once (the twin's) are taken, so their GPUs are free for this cycle.
4. **Cycle**: ``policy.schedule(state, now)`` returns a plan.
5. **Writer**: ``state.apply(plan, now)`` verifies and commits it; then the facility power-cap
   invariant is checked, here for both modes (``on_over_cap`` says what a breach does).
6. **Persist**: ``recorder.committed`` (the live hub's one transaction; the twin has no
   recorder: its state listeners see every change).
7. **Executor**, in one order: recap (new GPU caps), stop (cancels asked since the last step,
   preemptions), start. A start the executor raises on is reported as a ``LaunchFailed`` exit.
8. **Next wake-up**: the plan's wake-up (``wakeup_s``, none for an idle hub) and the next
   walltime end (``next_expiry_s``); the environment adds its own timers and waits.

Example: a 1-GPU hub, job 1 (work 100 s, walltime 60 s) and job 2 (work 10 s), both at t=0.
Step at 0: job 1 starts (the executor schedules its exit at 100 s). Step at 60: no exit yet;
walltime stops job 1 (intent TIMEOUT); the twin's executor reports the exit at once, job 1
ends TIMEOUT and job 2 starts in the same step. Step at 70: job 2's exit, COMPLETED. An exit
and a walltime end at the same instant: the exit is taken first, so the job COMPLETES.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Protocol

from steppe.core.job import JobState
from steppe.core.plan import Plan
from steppe.core.records import JobRecord
from steppe.core.state import Applied, HubState
from steppe.executors.base import Executor, Exited, ExitInfo
from steppe.pipeline.endings import TIMEOUT_INTENT, Ending, exit_state, intent_ending
from steppe.power.live import over_cap
from steppe.scheduling.policies import Policy
from steppe.scheduling.power import PowerBudget

log = logging.getLogger("steppe.pipeline")


class Intake(Protocol):
    """Where a mode's submissions come from (the twin's trace, the live hub's inbox)."""

    def intake(self, now: float) -> None:
        """Queue what arrived by ``now`` (through the submission gate)."""
        ...


class Recorder(Protocol):
    """What a mode records around the shared step (the live hub: its store); the twin has none."""

    def ended(self, rec: JobRecord, intent: Ending | None, info: ExitInfo) -> None:
        """``rec`` is about to end (called before the state records it): with the ending of the
        stop asked for it (``intent``), else by its exit (``endings.exit_ending(info)``)."""
        ...

    def stop_intent(self, rec: JobRecord, intent: str) -> None:
        """The pipeline will stop ``rec`` with ``intent`` (``timeout``, ``cancel:<actor>``)."""
        ...

    def before_stops(self) -> None:
        """Make the stop intents recorded so far durable (they are asked of the executor next)."""
        ...

    def committed(self, plan: Plan, applied: Applied, now: float) -> None:
        """The writer committed ``applied``; persist it before the executor acts on it."""
        ...

    def executed(self, now: float) -> None:
        """The executor was asked for this step's caps, stops and starts."""
        ...


def _log_over_cap(message: str) -> None:
    log.error("facility power over its cap: %s", message)


class PipelineStep:
    """The shared step; see the module docstring. ``on_exit`` is where the executor reports exits."""

    def __init__(
        self,
        state: HubState,
        policy: Policy,
        executor: Executor,
        intake: Intake,
        recorder: Recorder | None = None,
        *,
        power: PowerBudget | None = None,
        on_over_cap: Callable[[str], None] | None = _log_over_cap,
    ) -> None:
        self.state = state
        self.policy = policy
        self.executor = executor
        self.intake = intake
        self.recorder = recorder
        self._expiry_s = -math.inf  # a lower bound of the next walltime end (see ``next_expiry_s``)
        self.power = power if on_over_cap is not None else None  # None: the cap is not checked
        self.on_over_cap = on_over_cap or _log_over_cap
        self.exits: deque[Exited] = deque()  # appended from any thread, taken by the step
        self.completed: list[int] = []  # plain completions, flat: job id, epoch, job id, epoch, ...
        self.stopping: dict[int, Ending] = {}  # running jobs the pipeline asked to stop, by job id
        self.to_stop: list[JobRecord] = []  # stops asked between steps (cancels), sent in phase 7
        self.unlaunched: list[JobRecord] = []  # committed starts of this step
        self.launched = 0  # how many of ``unlaunched`` were handed to the executor
        self.wakeup_s: float | None = None
        self.cycles = 0

    def on_exit(self, job_id: int, epoch: int, info: ExitInfo) -> None:
        """The executor's event stream: run ``epoch`` of ``job_id`` ended (thread-safe)."""
        self.exits.append(Exited(job_id, epoch, info))

    def on_completed(self, job_id: int, epoch: int) -> None:
        """Run ``epoch`` of ``job_id`` ended on its own with exit ``0:0`` (the step's own thread only:
        the twin's executor reports its ordinary completions here; see the module docstring)."""
        completed = self.completed
        completed.append(job_id)
        completed.append(epoch)

    def step(self, now: float) -> Plan:
        """One pass of phases 1-8; returns the plan the cycle made."""
        if self.exits or self.completed:
            self.take_exits(now)
        self.intake.intake(now)
        if self._expiry_s <= now:
            self.expire(now)
        plan = self.policy.schedule(self.state, now)
        applied = self.state.apply(plan, now)
        self._expiry_s = -math.inf  # the writer changed what runs: look again at the next step
        if self.power is not None:
            broken = over_cap(self.power, self.state.power_draw_w, now, self.state.site_draw_w)
            if broken:
                self.on_over_cap(broken)
        self.unlaunched = applied.started
        self.launched = 0
        recorder = self.recorder
        if recorder is not None:
            recorder.committed(plan, applied, now)
        if applied.started or applied.recapped or applied.preempted or self.to_stop:
            self.execute(applied, now)
        if recorder is not None:
            recorder.executed(now)
        wakeup = plan.wakeup_s
        if wakeup is not None and not self.state.running and not len(self.state.queue):
            wakeup = None  # an idle hub has nothing to wake for
        self.wakeup_s = wakeup
        self.cycles += 1
        return plan

    # -- phases -----------------------------------------------------------------------------------
    def take_exits(self, now: float) -> None:
        """Phase 1: end every running job whose current run the executor reported ended."""
        exits, running, stopping, finish = self.exits, self.state.running, self.stopping, self.state.finish
        while exits:
            job_id, epoch, info = exits.popleft()
            rec = running.get(job_id)
            if rec is None or rec.epoch != epoch:
                continue  # an earlier run of a preempted job, or a job already ended
            intent = stopping.pop(job_id, None) if stopping else None
            if self.recorder is not None:
                self.recorder.ended(rec, intent, info)
            finish(job_id, now, intent.state if intent is not None else exit_state(info))
        completed = self.completed
        if not completed:
            return
        end, recorder = self.state.end, self.recorder
        for i in range(0, len(completed), 2):
            job_id = completed[i]
            rec = running.get(job_id)
            if rec is None or rec.epoch != completed[i + 1]:
                continue
            intent = stopping.pop(job_id, None) if stopping else None
            if recorder is not None:
                recorder.ended(rec, intent, ExitInfo(0, 0, now))
            end(rec, now, intent.state if intent is not None else JobState.COMPLETED)
        completed.clear()

    def expire(self, now: float) -> None:
        """Phase 3: stop every running job past its walltime (intent ``TIMEOUT``)."""
        if not self.state.running:
            return
        due = []
        for end, job_id in self.state.running_by_end:
            if end > now:
                break
            if job_id not in self.stopping:
                due.append(self.state.running[job_id])
        if not due:
            return
        recorder = self.recorder
        for rec in due:
            self.stopping[rec.job_id] = intent_ending(TIMEOUT_INTENT, rec.spec.walltime_s)
            if recorder is not None:
                recorder.stop_intent(rec, TIMEOUT_INTENT)
        if recorder is not None:
            recorder.before_stops()
        for rec in due:
            self._stop(rec, now)
        if self.exits or self.completed:
            self.take_exits(now)

    def ask_to_stop(self, rec: JobRecord, intent: str, ending: Ending) -> None:
        """Stop a running job at the next step's executor phase, ending it as ``ending`` says."""
        self.stopping[rec.job_id] = ending
        if self.recorder is not None:
            self.recorder.stop_intent(rec, intent)
        self.to_stop.append(rec)

    def execute(self, applied: Applied, now: float) -> None:
        """Phase 7: one call order for every executor: recap, stop, start."""
        executor = self.executor
        for rec in applied.recapped:
            try:
                executor.recap(rec, now)
            except Exception:  # the cap stays recorded; the next change asks again
                log.exception("job %s: recap failed", rec.job_id)
        if self.to_stop:
            stops, self.to_stop = self.to_stop, []
            for rec in stops:
                self._stop(rec, now)
        for rec in applied.preempted:
            self._stop(rec, now)
        for rec in self.unlaunched:
            self.launched += 1
            try:
                executor.start(rec, now)
            except Exception as exc:  # an executor that raises: this job fails, the others still start
                log.exception("job %s: launch failed", rec.job_id)
                self.on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, now, f"launch failed: {exc}"))

    def take_unlaunched(self) -> list[JobRecord]:
        """The committed starts of the last step not yet handed to the executor (after a failed step)."""
        left = self.unlaunched[self.launched :]
        self.unlaunched, self.launched = [], 0
        return left

    def next_expiry_s(self) -> float:
        """When the next running job not yet being stopped reaches its walltime (infinity: none).

        The step remembers it: until the writer commits again, exits and arrivals can only put
        the next walltime end later, so the next step looks for expired jobs only if it is due."""
        rbe = self.state.running_by_end
        if not self.state.running:
            end = math.inf
        elif not self.stopping:
            end = rbe[0][0]
        else:
            end = next((e for e, job_id in rbe if job_id not in self.stopping), math.inf)
        self._expiry_s = end
        return end

    def _stop(self, rec: JobRecord, now: float) -> None:
        try:
            self.executor.stop(rec, now)
        except Exception:  # the next walltime check or cancel asks again
            log.exception("job %s: stop failed", rec.job_id)

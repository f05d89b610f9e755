"""The live hub's loop: the twin's single-writer pipeline with a wall clock, local processes and a store.

Each step, run on one thread whenever something happens (a submission or cancel written by the
API, a process exit, a walltime expiry, a charge or wake-up due), mirrors ``twin.replay``:

1. **Events**: apply process exits reported by the executor (``COMPLETED``, ``FAILED`` with its
   exit code, or the state the loop asked for when it stopped the job: ``CANCELLED``,
   ``TIMEOUT``) and the inbox requests the API wrote (new jobs, cancels).
2. **Walltime**: ask the executor to stop every job past its limit (it ends as ``TIMEOUT``).
3. **Meter** running jobs (``steppe.metering.Meter``): usage records with GPU-seconds and energy
   go to the allocation ledger and, with this step's transaction, to the store (``StoreSink``).
4. **Schedule**: the configured policy reads the state and returns a plan; the state verifies
   and commits it (``HubState.apply``). Its admission checks include the allocation ledger's
   and governance's (``steppe.control.governance``: AI-use review, data residency), whose
   in-memory views are re-read from the store after the API changes them.
5. **Persist** every transition of the step (state, time, reason), reason changes, usage and
   the consumed requests in one transaction (``Journal.flush``).
6. **Execute**: hand GPU caps, stops and starts to the executor, in that order, then persist the process handles it
   returns (a second, small transaction, so a job is never launched before its start is
   durable). A start the executor cannot launch ends ``FAILED``/``LaunchFailed`` and frees its
   GPUs; a step that fails anywhere after committing starts ends the starts it had not yet
   launched the same way, so no committed start is ever left without a process.

Between steps the thread sleeps until the earliest of: a wake-up (API, executor), the next
walltime expiry, the next charge, or the plan's wake-up time, so an idle hub reacts at once
and never polls. Steps are at least ``min_interval_s`` (20 ms) apart, so a burst of
submissions is taken in batches rather than one step per job. API handlers never touch the
state: they write the store and call ``wake``; read-only views run on the loop's thread
through ``call``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from steppe.control.governance import GovernanceView
from steppe.control.journal import Ending, Journal
from steppe.control.ledger import GpuHoursCheck, Ledger, ProjectGpuLimit
from steppe.control.machine import Fleet
from steppe.control.rows import launch_from_row, project_key, spec_from_row
from steppe.control.usage_sink import StoreSink
from steppe.core.cluster import TenantSpec
from steppe.core.job import TERMINAL_STATES, JobState, PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import HubState
from steppe.core.units import format_duration
from steppe.core.usage import DecayedUsage
from steppe.executors.base import Executor, ExitInfo, Launch
from steppe.metering import MeterSetup
from steppe.power.live import over_cap
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.policies import make_policy
from steppe.scheduling.power import PowerBudget
from steppe.store import Store, tenancy
from steppe.store import jobs as job_repo

log = logging.getLogger("steppe.hub")
T = TypeVar("T")


def intent_ending(intent: str, walltime_s: float, exit: ExitInfo | None = None) -> Ending:
    """The ending a stop intent (``cancel:<actor>`` or ``timeout``) leads to."""
    if intent.startswith("cancel"):
        actor = intent.partition(":")[2] or "a user"
        return Ending(JobState.CANCELLED, "None", f"cancelled by {actor}", exit)
    return Ending(JobState.TIMEOUT, "TimeLimit", f"walltime {format_duration(walltime_s)} reached", exit)


def exit_ending(info: ExitInfo) -> Ending:
    """The ending of a job whose process ended on its own."""
    if info.detail.startswith("launch failed"):
        return Ending(JobState.FAILED, "LaunchFailed", info.detail, info)
    if info.exit_code == 0 and info.signal == 0:
        return Ending(JobState.COMPLETED, "None", f"exit {info.slurm}", info)
    if info.signal:
        return Ending(JobState.FAILED, f"RaisedSignal:{info.signal}", f"killed by signal {info.signal}", info)
    return Ending(JobState.FAILED, "NonZeroExitCode", f"exit {info.slurm}", info)


class HubLoop:
    """The single writer of the live hub; see the module docstring."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        executor: Executor,
        *,
        policy: str = "easy-backfill",
        ledger: Ledger | None = None,
        governance: GovernanceView | None = None,
        clock: Callable[[], float] = time.time,
        min_interval_s: float = 0.02,
        power: PowerBudget | None = None,
        metering: MeterSetup | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.executor = executor
        self.clock = clock
        self.min_interval_s = min_interval_s
        self.ledger = ledger or Ledger()
        self.usage = StoreSink(self.ledger)  # the meter's records: to the ledger, then the store
        self.meter = (metering or MeterSetup(charge_interval_s=10.0)).build(self.usage)
        self.governance = governance or GovernanceView(self.ledger, review_gate=False)
        checks = (*DEFAULT_CHECKS, GpuHoursCheck(self.ledger), ProjectGpuLimit(self.ledger), *self.governance.checks())
        self.power = power  # the facility cap, read at POSIX seconds (steppe.power.live); None: no power rules
        self.policy = make_policy(policy, checks=checks, **({"power": power} if power is not None else {}))
        usage = DecayedUsage()
        self.state = HubState(fleet.cluster, self.policy.new_queue(fleet.cluster, usage), usage)
        self.journal = Journal()
        self.journal.node_names = fleet.node_names
        self.launches: dict[int, Launch] = {}
        self.stopping: dict[int, Ending] = {}
        self.cycle_observers: list[Callable[[float], None]] = []
        self.cycles = 0
        self.errors = 0
        self._exits: queue.SimpleQueue[tuple[int, int, ExitInfo]] = queue.SimpleQueue()
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._reload = threading.Event()
        self._reload_gov = threading.Event()
        self._reload_tenants = threading.Event()
        self._file_tenants = dict(fleet.cluster.tenants)  # what the cluster file declares; the store overrides
        self._cond = threading.Condition()
        self._begun = self._done = 0
        self._to_stop: list[JobRecord] = []
        self._unlaunched: list[JobRecord] = []
        self._next_wake_s: float | None = None
        self._thread: threading.Thread | None = None
        executor.bind(self._on_exit, self.launches.__getitem__)

    # -- life cycle ------------------------------------------------------------------------------------
    def restore(self) -> None:
        """Rebuild the state from the store (``steppe.control.recovery``); call once, before stepping."""
        from steppe.control.recovery import recover

        recover(self, self.clock())
        self._load_tenants()
        with self.store.read() as conn:
            self.governance.load(conn)
            self.governance.add_jobs(conn, list(self.state.jobs))
        self.state.listeners.extend([self.journal, self.ledger, self.meter])

    def start(self) -> None:
        """Restore the state and start the loop thread, which runs a first step at once."""
        self.restore()
        self._thread = threading.Thread(target=self._run, name="steppe-loop", daemon=True)
        self._wake.set()
        self._thread.start()

    def close(self) -> None:
        """Stop the loop (running jobs go on; the next start adopts them)."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.executor.close()

    def wake(self) -> None:
        self._wake.set()

    def wake_and_wait(self, timeout: float = 5.0) -> bool:
        """Wake the loop and wait until a step that began after this call has finished."""
        with self._cond:
            target = self._begun + 1
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def reload_allocations(self) -> None:
        self._reload.set()
        self._wake.set()

    def reload_tenants(self) -> None:
        """Re-read tenants' weights and quotas from the store before the next cycle."""
        self._reload_tenants.set()
        self._wake.set()

    def _load_tenants(self) -> None:
        with self.store.read() as conn:
            shares = tenancy.org_shares(conn)
        tenants = dict(self._file_tenants)
        for row in shares:
            base = tenants.get(row.name) or TenantSpec(row.name)
            weight = base.weight if row.fairshare_weight is None else float(row.fairshare_weight)
            quota = base.gpu_quota if row.gpu_quota is None else int(row.gpu_quota)
            tenants[row.name] = TenantSpec(row.name, weight, quota)
        self.state.set_tenants(tenants)

    def reload_governance(self) -> None:
        """Re-read approvals and datasets from the store before the next cycle, and run one."""
        self._reload_gov.set()
        self._wake.set()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the loop's thread between steps (for consistent read-only views)."""
        fut: Future[T] = Future()
        self._calls.put((fn, fut))
        self._wake.set()
        return fut.result(timeout)

    def _on_exit(self, job_id: int, epoch: int, info: ExitInfo) -> None:
        self._exits.put((job_id, epoch, info))
        self._wake.set()

    def _run(self) -> None:
        last_end = 0.0
        while not self._closing.is_set():
            timeout = None if self._next_wake_s is None else max(self._next_wake_s - self.clock(), 0.0)
            self._wake.wait(timeout)
            pause = self.min_interval_s - (time.monotonic() - last_end)
            if pause > 0:  # under a burst of submissions, batch them rather than step for each one
                self._closing.wait(pause)
            self._wake.clear()
            if self._closing.is_set():
                break
            self._serve_calls()
            try:
                if not self.step_guarded():
                    time.sleep(0.1)
            finally:
                last_end = time.monotonic()
                with self._cond:
                    self._done = self._begun
                    self._cond.notify_all()
        self._serve_calls()

    def _serve_calls(self) -> None:
        while True:
            try:
                fn, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as exc:
                fut.set_exception(exc)

    # -- one step ---------------------------------------------------------------------------------------
    def step(self) -> None:
        """One pass of the pipeline (phases 1-6 of the module docstring)."""
        with self._cond:
            self._begun += 1
        t0 = time.perf_counter()
        if self._reload.is_set():
            self._reload.clear()
            with self.store.read() as conn:
                self.ledger.set_allocations(tenancy.list_allocations(conn), tenancy.project_keys(conn))
        if self._reload_tenants.is_set():
            self._reload_tenants.clear()
            self._load_tenants()
        if self._reload_gov.is_set():
            self._reload_gov.clear()
            with self.store.read() as conn:
                self.governance.load(conn)
        requests, rows = self._read_inbox()
        now = self.clock()  # after the inbox was read: no job starts before the time it was submitted
        self._take_exits(now)
        request_ids = self._take_requests(requests, rows, now)
        self._enforce_walltime(now)
        self.ledger.now = now
        self.meter.charge(now)
        plan = self.policy.schedule(self.state, now)
        applied = self.state.apply(plan, now)
        self._unlaunched.extend(applied.started)
        for job_id, reason in plan.reasons.items():
            rec = self.state.jobs.get(job_id)
            if rec is not None and rec.state is JobState.PENDING and rec.reason is reason:
                self.journal.reason(job_id, reason.value)
        for rec in applied.preempted:
            self.journal.requeued(rec, now)
        self.meter.emit()
        usage_rows = self.usage.take_rows()
        if self.journal or usage_rows or request_ids:
            with self.store.write() as conn:
                self.journal.flush(conn, usage_rows, request_ids, self.store)
        self._forget_finished()
        for rec in applied.recapped:  # one call order for every executor: recap, stop, start
            try:
                self.executor.recap(rec, now)
            except Exception:  # the cap stays recorded; the next change asks again
                log.exception("job %s: recap failed", rec.job_id)
        stops, self._to_stop = [*self._to_stop, *applied.preempted], []
        for rec in stops:
            try:
                self.executor.stop(rec, now)
            except Exception:  # the next walltime check or cancel asks again
                log.exception("job %s: stop failed", rec.job_id)
        while self._unlaunched:
            rec = self._unlaunched.pop(0)
            try:
                self.executor.start(rec, now)
            except Exception as exc:  # an executor that raises: this job fails, the others still start
                log.exception("job %s: launch failed", rec.job_id)
                self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, self.clock(), f"launch failed: {exc}"))
        handles = self.executor.take_launched()
        self.meter.read_baselines(handles)  # the GPUs' energy counters, now that the jobs have devices
        if handles:
            for job_id, handle in handles.items():
                self.journal.set(job_id, handle=handle)
            with self.store.write() as conn:
                self.journal.flush(conn, [], [], self.store)
        self._next_wake_s = self._next_wake(plan.wakeup_s)
        if self.power is not None:  # the twin's invariant: the facility draws at most its cap
            broken = over_cap(self.power, self.state.power_draw_w, now)
            if broken:
                log.error("facility power over its cap: %s", broken)
        self.cycles += 1
        elapsed = time.perf_counter() - t0
        for observe in self.cycle_observers:
            observe(elapsed)

    def step_guarded(self) -> bool:
        """One step; if it fails, log it, end the starts it committed but did not launch, return False."""
        try:
            self.step()
        except Exception as exc:  # keep serving; the store holds every committed change
            self.errors += 1
            log.exception("scheduler step failed")
            self._fail_unlaunched(f"scheduler step failed: {exc}")
            return False
        return True

    def _fail_unlaunched(self, why: str) -> None:
        """End every committed start not yet handed to the executor (``LaunchFailed``), freeing its GPUs."""
        while self._unlaunched:
            rec = self._unlaunched.pop(0)
            self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, self.clock(), f"launch failed: {why}"))

    def _take_exits(self, now: float) -> None:
        while True:
            try:
                job_id, epoch, info = self._exits.get_nowait()
            except queue.Empty:
                return
            rec = self.state.running.get(job_id)
            if rec is None or rec.epoch != epoch:
                continue  # an earlier run of a preempted job
            intent = self.stopping.pop(job_id, None)
            ending = Ending(intent.state, intent.reason, intent.detail, info) if intent else exit_ending(info)
            self.journal.endings[job_id] = ending
            self.state.finish(job_id, now, ending.state)

    def _read_inbox(self) -> tuple[list[Any], dict[int, Any]]:
        """The requests the API wrote, and the rows of the jobs submitted by them."""
        with self.store.read() as conn:
            requests = job_repo.pending_requests(conn)
            rows = job_repo.jobs_by_id(conn, {r.job_id for r in requests if r.kind == "submit"})
            if rows:
                self.governance.add_jobs(conn, list(rows))
        return list(requests), dict(rows)

    def _take_requests(self, requests: list[Any], rows: dict[int, Any], now: float) -> list[int]:
        for req in requests:
            if req.kind == "submit":
                row = rows.get(req.job_id)
                if row is not None and row.state == "PENDING" and row.id not in self.state.jobs:
                    self.admit_row(row, now)
                    self.journal.entered["PENDING"] += 1  # the API wrote its PENDING event
            elif req.kind == "cancel":
                self._cancel(req.job_id, req.actor, now)
        return [r.id for r in requests]

    def admit_row(self, row: Any, now: float) -> JobRecord:
        """Queue a pending job read from the store."""
        self.launches[row.id] = launch_from_row(row)
        self.ledger.project_ids[project_key(row)] = row.project_id
        rec = self.state.submit(spec_from_row(row), now)
        try:
            rec.reason = PendingReason(row.reason)
        except ValueError:
            rec.reason = PendingReason.PRIORITY
        return rec

    def _cancel(self, job_id: int, actor: str, now: float) -> None:
        rec = self.state.jobs.get(job_id)
        if rec is None or rec.state in TERMINAL_STATES:
            return
        ending = intent_ending(f"cancel:{actor}", rec.spec.walltime_s)
        if rec.state is JobState.PENDING:
            self.journal.endings[job_id] = ending
            self.state.cancel(job_id, now)
        elif rec.state is JobState.RUNNING and job_id not in self.stopping:
            self.ask_to_stop(rec, f"cancel:{actor}", ending)

    def ask_to_stop(self, rec: JobRecord, intent: str, ending: Ending) -> None:
        """Record why a running job must stop (durably, with this step) and stop it after the flush."""
        self.stopping[rec.job_id] = ending
        self.journal.set(rec.job_id, stop_intent=intent)
        self._to_stop.append(rec)

    def _enforce_walltime(self, now: float) -> None:
        for end, job_id in self.state.running_by_end:
            if end > now:
                break
            if job_id not in self.stopping:
                rec = self.state.running[job_id]
                self.ask_to_stop(rec, "timeout", intent_ending("timeout", rec.spec.walltime_s))

    def _forget_finished(self) -> None:
        """Drop ended jobs from memory (the store keeps them), so a long-lived hub does not grow."""
        for job_id in self.journal.ended:
            self.state.forget(job_id)
            self.launches.pop(job_id, None)
            self.governance.forget(job_id)
        self.journal.ended.clear()

    def _next_wake(self, plan_wakeup_s: float | None) -> float | None:
        times = [t for t in (plan_wakeup_s, self.meter.next_charge_s()) if t is not None]
        for end, job_id in self.state.running_by_end:
            if job_id not in self.stopping:
                times.append(end)
                break
        return min(times) if times else None

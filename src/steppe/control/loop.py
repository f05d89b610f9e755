"""The live hub's loop: the pipeline step (``steppe.pipeline``) on a wall clock, with a store and an executor.

The scheduling step is the same ``PipelineStep`` object the twin's replay runs; this loop is its
environment, its intake and its recorder. Each step, run on one thread whenever something
happens (a submission or cancel written by the API, a process exit, a walltime end, a charge or
a wake-up due):

1. read the inbox the API wrote (before the clock, so no job starts before it was submitted),
   re-read allocations, tenants and governance if the API changed them, read ``now``. The store's
   requests are the inbox; the rows of the jobs they submit are read back from the store, except
   those the API handed over once its transaction had committed (``submitted``: the row it
   wrote, as a namespace, and the job's datasets), which need no read. Example: the API commits
   job 17 and calls ``submitted(row17, [])``; the next step reads the requests, finds 17's
   ``submit`` and takes ``row17``; a request with no handed row (a restart, a job the handover
   lost a race with) is read from the store as before, and a handed row whose request an earlier
   step already took is dropped;
2. run the pipeline step (exits, submissions, walltime, cycle, writer, executor), whose intake
   and recorder here are: **intake** queues the inbox's new jobs and cancels and meters running
   jobs (``steppe.metering.Meter``: usage records with GPU-seconds and energy go to the
   allocation ledger and, with this step's transaction, to the store through ``StoreSink``);
   **stop intents** are journalled, and made durable before a walltime stop is asked
   (``before_stops``); **committed** persists every transition of the step (state, time,
   reason), reason changes, usage and the consumed requests in one transaction
   (``Journal.flush``) before the executor is called; **executed** persists the process handles
   the executor returns (a second, small transaction, so a job is never launched before its
   start is durable). A start the executor cannot launch ends ``FAILED``/``LaunchFailed``; a
   step that fails after committing starts ends the starts it had not yet launched the same way,
   so no committed start is ever left without a process;
3. set the next wake-up: the plan's, the next walltime end, the next charge.

Between steps the thread waits on the wall clock (``pipeline.environment.WallClock``) until
the earliest wake-up or until woken (API, executor), so an idle hub reacts at once and never
polls. Steps are at least ``min_interval_s`` (20 ms) apart, so a burst of submissions is taken
in batches rather than one step per job. API handlers never touch the state: they write the
store and call ``wake``; read-only views run on the loop's thread through ``call``.
``cycle_observers`` are called at the end of each step with its duration.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from steppe.control.governance import GovernanceView
from steppe.control.journal import Journal, log_transition, transitions_log
from steppe.control.ledger import GpuHoursCheck, Ledger, ProjectGpuLimit
from steppe.control.machine import Fleet
from steppe.control.rows import launch_from_row, project_key, spec_from_row
from steppe.control.usage_sink import StoreSink
from steppe.core.cluster import TenantSpec
from steppe.core.job import TERMINAL_STATES, JobState, PendingReason
from steppe.core.plan import Plan
from steppe.core.records import JobRecord
from steppe.core.state import Applied, HubState
from steppe.core.usage import DecayedUsage
from steppe.executors.base import Executor, ExitInfo, Launch
from steppe.metering import MeterSetup
from steppe.pipeline.endings import Ending, exit_ending, intent_ending
from steppe.pipeline.environment import WallClock
from steppe.pipeline.step import PipelineStep
from steppe.scheduling.admission import DEFAULT_CHECKS, EngineAvailable
from steppe.scheduling.arrays import ArrayThrottle
from steppe.scheduling.dependency import BeginAt, DependencyCheck
from steppe.scheduling.policies import make_policy
from steppe.scheduling.power import PowerBudget
from steppe.store import Store, tenancy
from steppe.store import jobs as job_repo
from steppe.store import nodes as node_repo

log = logging.getLogger("steppe.hub")
FOREIGN_EVERY_S = 1.0
"""How often the loop reads which GPUs the engine's other jobs hold (``HubLoop._hold_foreign``)."""
T = TypeVar("T")


__all__ = ["Ending", "HubLoop", "exit_ending", "intent_ending"]  # the endings live in steppe.pipeline


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
        self.governance = governance or GovernanceView(self.ledger, review_gate=False)
        self.usage = StoreSink(self.ledger)  # the meter's records: to the ledger, then the store
        self.meter = (metering or MeterSetup(charge_interval_s=10.0)).build(self.usage)
        self.gpu_hours = GpuHoursCheck(self.ledger)  # a job runs only if its walltime fits the balance
        up_sites = getattr(executor, "reachable_sites", None)  # a hub at several sites: an engine per site
        self.engine = EngineAvailable(  # nothing starts where the engine does not answer
            executor.reachable, up_sites=up_sites, all_sites=fleet.cluster.site_names if up_sites else ()
        )
        self.dependencies = DependencyCheck(lookup=self._ended_state)  # sbatch --dependency
        self.arrays = ArrayThrottle()  # sbatch --array ...%N
        checks = (
            self.engine, *DEFAULT_CHECKS, self.gpu_hours, ProjectGpuLimit(self.ledger),
            *self.governance.checks(), self.dependencies, BeginAt(), self.arrays,
        )  # fmt: skip
        self.power = power  # the facility cap, read at POSIX seconds (steppe.power.live); None: no power rules
        self.policy = make_policy(policy, checks=checks, **({"power": power} if power is not None else {}))
        usage = DecayedUsage()
        self.state = HubState(fleet.cluster, self.policy.new_queue(fleet.cluster, usage), usage)
        self.state.listeners.extend([self.dependencies, self.arrays])  # from the first job restored on
        self.journal = Journal()
        self.journal.node_names = fleet.node_names
        self.launches: dict[int, Launch] = {}
        self.cycle_observers: list[Callable[[float], None]] = []  # called at the end of each step
        self.errors = 0
        self.env = WallClock(clock)
        self.pipeline = PipelineStep(self.state, self.policy, executor, self, self, power=power)
        self.stopping: dict[int, Ending] = self.pipeline.stopping  # running jobs asked to stop, and how they end
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._inbox: tuple[list[Any], dict[int, Any]] = ([], {})
        self._handed: dict[int, tuple[Any, list[str]]] = {}  # job id -> (committed row, dataset names)
        self._handed_lock = threading.Lock()
        self._request_ids: list[int] = []
        self._closing = threading.Event()
        self._reload = threading.Event()
        self._reload_gov = threading.Event()
        self._reload_tenants = threading.Event()
        self._reload_drains = threading.Event()
        self.drains: dict[int, str] = {}  # drained node index -> the operator's reason (``steppe node drain``)
        self._file_tenants = dict(fleet.cluster.tenants)  # what the cluster file declares; the store overrides
        self._cond = threading.Condition()
        self._begun = self._done = 0
        self._foreign_due_s = -math.inf
        self._thread: threading.Thread | None = None
        executor.bind(self._on_exit, self.launches.__getitem__)

    @property
    def cycles(self) -> int:
        """Scheduling cycles run so far."""
        return self.pipeline.cycles

    # -- life cycle ------------------------------------------------------------------------------------
    def restore(self) -> None:
        """Rebuild the state from the store (``steppe.control.recovery``); call once, before stepping."""
        from steppe.control.recovery import recover

        recover(self, self.clock())
        self._load_tenants()
        self._load_drains()
        with self.store.read() as conn:
            self.governance.load(conn)
            self.governance.add_jobs(conn, list(self.state.jobs))
        self.state.listeners.extend([self.journal, self.ledger, self.meter])

    def start(self) -> None:
        """Restore the state and start the loop thread, which runs a first step at once."""
        self.restore()
        self._thread = threading.Thread(target=self._run, name="steppe-loop", daemon=True)
        self.env.wake()
        self._thread.start()

    def close(self) -> None:
        """Stop the loop (running jobs go on; the next start adopts them)."""
        self._closing.set()
        self.env.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.executor.close()

    def wake(self) -> None:
        self.env.wake()

    def step_follows(self) -> bool:
        """True when the loop thread runs and another step is due at once (it was woken meanwhile)."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self.env.woken()

    def wake_and_wait(self, timeout: float = 5.0) -> bool:
        """Wake the loop and wait until a step that began after this call has finished."""
        with self._cond:
            target = self._begun + 1
        self.env.wake()
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def submitted(self, row: Any, datasets: list[str]) -> None:
        """Hand over the row of a job whose insert (with its ``submit`` request) has committed, and the
        names of the datasets it reads, so the next step need not read them back (module docstring, 1)."""
        with self._handed_lock:
            self._handed[row.id] = (row, datasets)

    def reload_allocations(self) -> None:
        self._reload.set()
        self.env.wake()

    def reload_tenants(self) -> None:
        """Re-read tenants' weights and quotas from the store before the next cycle."""
        self._reload_tenants.set()
        self.env.wake()

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

    def reload_drains(self) -> None:
        """Re-read the drained nodes from the store before the next cycle (a drain or a resume)."""
        self._reload_drains.set()
        self.env.wake()

    def _load_drains(self) -> None:
        """Hold the drained nodes' idle GPUs out of the inventory (``HubState.set_drained``): jobs
        running there go on, nothing new starts there; a resumed node's GPUs are given back."""
        with self.store.read() as conn:
            rows = node_repo.drained(conn)
        index = {name: i for i, name in enumerate(self.fleet.node_names)}
        drains = {index[r.node]: r.reason for r in rows if r.node in index}
        if self.state.set_drained(drains):
            log.info("drained nodes: %s", ", ".join(self.fleet.node_names[i] for i in sorted(drains)) or "none")
        self.drains = drains

    def reload_governance(self) -> None:
        """Re-read approvals and datasets from the store before the next cycle, and run one."""
        self._reload_gov.set()
        self.env.wake()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the loop's thread between steps (for consistent read-only views)."""
        fut: Future[T] = Future()
        self._calls.put((fn, fut))
        self.env.wake()
        return fut.result(timeout)

    def _on_exit(self, job_id: int, epoch: int, info: ExitInfo) -> None:
        self.pipeline.on_exit(job_id, epoch, info)
        self.env.wake()

    def _run(self) -> None:
        last_end = 0.0
        while not self._closing.is_set():
            self.env.wait()
            pause = self.min_interval_s - (time.monotonic() - last_end)
            if pause > 0:  # under a burst of submissions, batch them rather than step for each one
                self._closing.wait(pause)
            self.env.clear()
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
        """One step: read the inbox, then the pipeline step at ``now`` (see the module docstring)."""
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
        if self._reload_drains.is_set():
            self._reload_drains.clear()
            self._load_drains()
        if self._reload_gov.is_set():
            self._reload_gov.clear()
            with self.store.read() as conn:
                self.governance.load(conn)
        self._inbox = self._read_inbox()
        now = self.clock()  # after the inbox was read: no job starts before the time it was submitted
        self.pipeline.step(now)
        self.env.wake_at(self._next_wake())
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
        for rec in self.pipeline.take_unlaunched():
            self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, self.clock(), f"launch failed: {why}"))

    # -- the pipeline's intake and recorder ----------------------------------------------------------------------------
    def intake(self, now: float) -> None:
        """Queue the inbox's new jobs (the API asked the submission gate), take its cancels, charge."""
        requests, rows = self._inbox
        self._inbox = ([], {})
        self._request_ids = self._take_requests(requests, rows, now)
        self.ledger.now = now
        self.meter.charge(now)  # usage records of running jobs, up to now
        if now >= self._foreign_due_s:
            self._foreign_due_s = now + FOREIGN_EVERY_S
            self._hold_foreign()

    def _hold_foreign(self) -> None:
        """Hold the GPUs the engine says others' jobs occupy (``Inventory.busy``; the executor's
        cached view, so this never waits on the engine), so the hub never books them twice."""
        busy = self.executor.inventory().busy
        if not busy and not self.state.foreign:
            return
        index = {name: i for i, name in enumerate(self.fleet.node_names)}
        wanted = {index[name]: gpus for name, gpus in busy.items() if name in index}
        before = dict(self.state.foreign)
        held = self.state.set_foreign(wanted)
        if held != before:
            log.info("GPUs the engine's other jobs hold, by node: %s (asked %s)", held, wanted)

    def ended(self, rec: JobRecord, intent: Ending | None, info: ExitInfo) -> None:
        self.journal.endings[rec.job_id] = intent.with_exit(info) if intent is not None else exit_ending(info)

    def stop_intent(self, rec: JobRecord, intent: str) -> None:
        self.journal.set(rec.job_id, stop_intent=intent)

    def before_stops(self) -> None:
        """Walltime stops are asked before the cycle: their intents are written first."""
        self._flush([], [])

    def _flush(self, usage_rows: list[Any], request_ids: list[int]) -> None:
        """Write the journal in one transaction, then log the job transitions it held (once committed)."""
        with self.store.write() as conn:
            written = self.journal.flush(conn, usage_rows, request_ids, self.store)
        if written and transitions_log.isEnabledFor(logging.INFO):
            for event, cols in written:
                log_transition(event, cols)

    def committed(self, plan: Plan, applied: Applied, now: float) -> None:
        """Persist the step in one transaction, then drop ended jobs from memory."""
        for job_id, reason in plan.reasons.items():
            rec = self.state.jobs.get(job_id)
            if rec is not None and rec.state is JobState.PENDING and rec.reason is reason:
                self.journal.reason(job_id, reason.value)
        for rec in applied.preempted:
            self.journal.requeued(rec, now)
        self.meter.emit()
        usage_rows = self.usage.take_rows()
        request_ids, self._request_ids = self._request_ids, []
        if self.journal or usage_rows or request_ids:
            self._flush(usage_rows, request_ids)
        self._forget_finished()

    def executed(self, now: float) -> None:
        """Persist the handles of the jobs the executor launched."""
        handles = self.executor.take_launched()
        self.meter.read_baselines(handles)  # the GPUs' energy counters, now that the jobs have devices
        if handles:
            for job_id, handle in handles.items():
                self.journal.set(job_id, handle=handle)
            self._flush([], [])

    def _ended_state(self, job_id: int) -> JobState | None:
        """How a job no longer in memory ended, from the store (None: no such job); a job others
        depend on, read once (``DependencyCheck`` keeps the answer)."""
        with self.store.read() as conn:
            row = job_repo.jobs_by_id(conn, [job_id]).get(job_id)
        return None if row is None else JobState(row.state)

    def _read_inbox(self) -> tuple[list[Any], dict[int, Any]]:
        """The requests the API wrote, and the rows of the jobs submitted by them (handed over or read)."""
        with self._handed_lock:  # taken before the requests are read: each handed row's request is visible
            handed, self._handed = self._handed, {}
        rows: dict[int, Any] = {}
        unread: list[int] = []
        with self.store.read() as conn:
            requests = job_repo.pending_requests(conn)
            for req in requests:
                if req.kind != "submit":
                    continue
                given = handed.get(req.job_id)
                if given is None:
                    unread.append(req.job_id)
                    continue
                rows[req.job_id] = given[0]
                if given[1]:
                    self.governance.datasets_of[req.job_id] = list(given[1])
            if unread:
                stored = job_repo.jobs_by_id(conn, unread)
                rows.update(stored)
                if stored:
                    self.governance.add_jobs(conn, list(stored))
        return list(requests), rows

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
        self.pipeline.ask_to_stop(rec, intent, ending)

    def _forget_finished(self) -> None:
        """Drop ended jobs from memory (the store keeps them), so a long-lived hub does not grow."""
        for job_id in self.journal.ended:
            self.state.forget(job_id)
            self.launches.pop(job_id, None)
            self.governance.forget(job_id)
        self.journal.ended.clear()

    def _next_wake(self) -> float | None:
        """The plan's wake-up, the next walltime end, the next charge: the earliest."""
        times = [t for t in (self.pipeline.wakeup_s, self.meter.next_charge_s()) if t is not None]
        expiry = self.pipeline.next_expiry_s()
        if expiry != math.inf:
            times.append(expiry)
        return min(times) if times else None


"""Restart recovery: rebuild the hub state from the store, so a crash loses no job and no transition.

On start, for every job the store holds as pending or running, in submission order:

* **Pending**: queued again with its original submit time and last reason, so it keeps its
  place (the queue orders by submit time, then by the order jobs entered it).
* **Running, never launched**: the start was committed but the hub died before the executor
  launched it (no launch intent for that start, or an intent whose wrapper never came up:
  ``executor.find_launch``). It goes back to the queue with its original submit time, so it
  keeps its place (a stop the hub had asked for ends it instead).
* **Running, launched**: its process handle (from the store, or the one the wrapper wrote
  before the job could run, if the hub died before recording it) names a pid, process group
  and start time. If that process still runs, the job is adopted (``HubState.adopt_running``)
  on the GPUs it holds, and a stop the hub had asked for (cancel, walltime) is asked again. If
  it has ended, the wrapper's ``exit.json`` says how and when, and the job ends as it would
  have (COMPLETED, FAILED, or the state of the stop the hub had asked for); with no exit
  record it ends ``FAILED`` with reason ``LostOnRestart``. It is metered up to its end.

Inbox ``submit`` requests are dropped (their jobs were just queued from the jobs table);
``cancel`` requests stay for the first step. All recovery writes go in one transaction.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from steppe.control.journal import log_transition
from steppe.control.rows import launch_from_row, project_key, spec_from_row
from steppe.core.job import JobState
from steppe.core.records import JobRecord
from steppe.executors.base import ExitInfo
from steppe.pipeline.endings import Ending, exit_ending, intent_ending
from steppe.store import jobs as job_repo
from steppe.store import tenancy

if TYPE_CHECKING:
    from steppe.control.loop import HubLoop


def recover(loop: HubLoop, now: float) -> None:
    """Restore ``loop``'s state from its store (see the module docstring)."""
    with loop.store.read() as conn:
        keys = tenancy.project_keys(conn)
        loop.ledger.load(tenancy.list_allocations(conn), tenancy.usage_by_month(conn), keys)
        rows = job_repo.active_jobs(conn)
        loop.journal.entered.update(job_repo.count_events_by_state(conn))
    loop.ledger.now = loop.meter.last_charge_s = now
    journal = loop.journal
    for row in rows:
        if row.state == "PENDING":
            loop.admit_row(row, now)
            continue
        handle = row.handle
        if handle is None or handle.get("start_s", row.start_s) != row.start_s:
            handle = _find_launch(loop, row)
        if handle is None and not row.stop_intent:
            _requeue_unlaunched(loop, row, now)
            continue
        if handle is not None and _adopt(loop, row, handle):
            continue
        info = loop.executor.outcome(row.id, row.start_s) if handle is not None else None
        if row.stop_intent:  # a stop the hub had asked for (of a job launched or not)
            ending = intent_ending(row.stop_intent, row.walltime_s, info)
        elif info is not None:
            ending = exit_ending(info)
        else:
            detail = "lost on restart: its process was gone and left no exit status"
            ending = Ending(JobState.FAILED, "LostOnRestart", detail, None)
        _end_while_down(loop, row, ending, now)
    with loop.store.write() as conn:
        loop.meter.emit()
        written = journal.flush(conn, loop.usage.take_rows(), [], loop.store)
        job_repo.delete_submit_requests(conn)
    for event, cols in written:  # the ends found on restart, in the server log as any other
        log_transition(event, cols)
    journal.ended.clear()
    for rec in list(loop.state.running.values()):
        if rec.job_id in loop.stopping:
            loop.executor.stop(rec, now)


def _find_launch(loop: HubLoop, row: Any) -> dict[str, Any] | None:
    """Whether the start of ``row`` was launched: its handle, else None. A hub at several sites asks
    only the engine of the site the job was placed at (``SiteExecutors.find_launch_at``)."""
    at_site = getattr(loop.executor, "find_launch_at", None)
    if callable(at_site) and row.alloc:
        found: dict[str, Any] | None = at_site(int(row.alloc[0][0]), row.id, row.start_s)
        return found
    return loop.executor.find_launch(row.id, row.start_s)


def _adopt(loop: HubLoop, row: Any, handle: dict[str, Any]) -> bool:
    """Adopt a running job whose process still runs; False if it is gone (or cannot be placed)."""
    loop.launches[row.id] = launch_from_row(row)
    loop.ledger.project_ids[project_key(row)] = row.project_id
    allocation = tuple((int(n), int(g)) for n, g in (row.alloc or []))
    spec = spec_from_row(row)
    power = (1.0, 0.0, 0.0)
    if loop.power is not None and allocation:  # its cap was not stored: count it at full power until recapped
        gpu_type = row.alloc_gpu_type or loop.state.inventory.node_type[allocation[0][0]]
        probe = JobRecord(spec, seq=0)
        power = (1.0, loop.power.model.added_w(probe, gpu_type, 1.0), loop.power.floor_w(probe, gpu_type))
    try:
        rec = loop.state.adopt_running(spec, allocation, row.start_s, row.executed_s, power)
    except ValueError:  # its GPUs are no longer in the inventory: end it rather than run unaccounted
        loop.executor.kill(handle)
        loop.state.jobs.pop(row.id, None)
        return False
    if not loop.executor.adopt(rec, handle):  # its process is gone: undo the adoption, end it below
        loop.state.finish(row.id, row.start_s, JobState.FAILED)
        loop.state.forget(row.id)
        loop.launches.pop(row.id, None)
        return False
    loop.ledger.adopt(rec)
    loop.meter.adopt(rec, row.charged_until_s or row.start_s)
    if row.handle is None:
        loop.journal.set(row.id, handle=handle)
    if row.stop_intent:
        loop.stopping[row.id] = intent_ending(row.stop_intent, row.walltime_s)
    return True


def _requeue_unlaunched(loop: HubLoop, row: Any, now: float) -> None:
    """Put a job whose start was committed but never launched back in the queue, in its place."""
    cols: dict[str, Any] = {"state": "PENDING", "reason": "Priority", "start_s": None, "alloc": None,
                            "alloc_gpu_type": None, "handle": None, "charged_until_s": None}  # fmt: skip
    loop.journal.set(row.id, **cols)
    loop.journal.event(row.id, now, "PENDING", "requeued: its start was committed but never launched")
    loop.admit_row(SimpleNamespace(**{**dict(row), **cols}), now)


def _end_while_down(loop: HubLoop, row: Any, ending: Ending, now: float) -> None:
    """Record the end of a running job whose process ended while the hub was down."""
    info: ExitInfo | None = ending.exit
    end_s = min(max(info.end_s, row.start_s), now) if info is not None else now
    cols: dict[str, Any] = {
        "state": ending.state.value,
        "reason": ending.reason,
        "end_s": end_s,
        "executed_s": row.executed_s + (end_s - row.start_s),
    }
    if info is not None:
        cols.update(exit_code=info.exit_code, exit_signal=info.signal)
    loop.journal.set(row.id, **cols)
    loop.journal.event(row.id, end_s, ending.state.value, ending.detail)
    if info is not None and row.alloc:  # charge up to its known end; with no record, up to the last charge
        loop.ledger.project_ids[project_key(row)] = row.project_id
        probe = JobRecord(spec_from_row(row), seq=0)
        probe.gpu_type = row.alloc_gpu_type or ""
        loop.meter.charge_span(probe, row.charged_until_s or row.start_s, end_s)

"""The loop's write buffer: every change the single writer makes, flushed in one transaction.

``Journal`` listens to the hub state. Each start and stop becomes an update of the job's row
and an event row (state, time, reason); reason changes of pending jobs and the executor's
process handles are updates only. ``flush`` writes all of it, the usage records the meter emitted
(``StoreSink.take_rows``; each job's ``charged_until_s`` follows their last second) and deletes
the inbox requests the cycle consumed, in one transaction, so the store never holds half a cycle.
``flush`` returns the events it wrote; once their transaction has committed the loop (and
recovery) logs each as a structured line (``log_transition``: ``job.start``, ``job.end`` with
state and exit code, ``job.preempt``, ``job.requeue``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection

from steppe.core.job import TERMINAL_STATES
from steppe.core.records import JobRecord
from steppe.pipeline.endings import Ending
from steppe.store import jobs as job_repo

__all__ = ["Ending", "Journal", "log_transition"]  # Ending lives in steppe.pipeline.endings
transitions_log = logging.getLogger("steppe.jobs")


class Journal:
    """A state listener that buffers the store writes of one cycle."""

    def __init__(self) -> None:
        self.updates: defaultdict[int, dict[str, Any]] = defaultdict(dict)
        self.events: list[dict[str, Any]] = []
        self.endings: dict[int, Ending] = {}
        self.node_names: list[str] = []
        self.entered: defaultdict[str, int] = defaultdict(int)  # state -> transitions into it (metrics)
        self.ended: list[int] = []  # jobs that reached a terminal state

    def __bool__(self) -> bool:
        return bool(self.updates or self.events)

    def event(self, job_id: int, t_s: float, state: str, reason: str) -> None:
        self.events.append({"job_id": job_id, "t_s": t_s, "state": state, "reason": reason})
        self.entered[state] += 1

    # -- state listener --------------------------------------------------------------------------------
    def on_submit(self, rec: JobRecord, now: float) -> None:
        """The API wrote the job and its PENDING event already."""

    def on_start(self, rec: JobRecord, now: float) -> None:
        where = ",".join(f"{self.node_names[n]}:{g}" for n, g in rec.allocation)
        self.updates[rec.job_id].update(
            state="RUNNING",
            reason="None",
            start_s=now,
            end_s=None,
            alloc=[list(a) for a in rec.allocation],
            alloc_gpu_type=rec.gpu_type,
            handle=None,
            stop_intent=None,
            exit_code=None,
            exit_signal=None,
            charged_until_s=now,
        )
        self.event(rec.job_id, now, "RUNNING", f"started on {where}")

    def on_stop(self, rec: JobRecord, now: float) -> None:
        ending = self.endings.pop(rec.job_id, None)
        if ending is None:
            ending = Ending(rec.state, "None", rec.state.value.lower())
        end_s = now
        cols: dict[str, Any] = {"state": rec.state.value, "reason": ending.reason, "executed_s": rec.executed_s}
        if ending.exit is not None:
            end_s = min(max(ending.exit.end_s, rec.last_start_s), now) if rec.first_start_s is not None else now
            cols.update(exit_code=ending.exit.exit_code, exit_signal=ending.exit.signal)
        cols["end_s"] = end_s
        self.updates[rec.job_id].update(cols)
        self.event(rec.job_id, end_s, rec.state.value, ending.detail)
        if rec.state in TERMINAL_STATES:
            self.ended.append(rec.job_id)

    # -- other writes ------------------------------------------------------------------------------------
    def requeued(self, rec: JobRecord, now: float) -> None:
        self.updates[rec.job_id].update(state="PENDING", reason=rec.reason.value, end_s=None, handle=None)
        self.event(rec.job_id, now, "PENDING", "requeued after preemption")

    def reason(self, job_id: int, reason: str) -> None:
        self.updates[job_id]["reason"] = reason

    def set(self, job_id: int, **cols: Any) -> None:
        self.updates[job_id].update(cols)

    def flush(
        self, conn: Connection, usage_rows: list[dict[str, Any]], request_ids: list[int], store: Any
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Write everything buffered (in the caller's transaction) and forget it; returns the events
        written, each with its job's written columns (the exit code of an end), for the server log."""
        for row in usage_rows:
            upd = self.updates[row["job_id"]]
            upd["charged_until_s"] = max(upd.get("charged_until_s") or 0.0, row["last_s"])
        job_repo.apply_changes(conn, dict(self.updates), self.events)
        store.add_usage(conn, usage_rows)
        job_repo.delete_requests(conn, request_ids)
        updates, events = self.updates, self.events
        self.updates = defaultdict(dict)
        self.events = []
        return [(e, updates.get(e["job_id"]) or {}) for e in events] if events else []


_EVENT_OF = {"RUNNING": "job.start", "PENDING": "job.requeue", "PREEMPTED": "job.preempt"}


def log_transition(event: dict[str, Any], cols: dict[str, Any]) -> None:
    """One structured line (``steppe.api.logs``) for a job transition the loop wrote: ``job.start``
    (where), ``job.end`` (state, reason, exit code and signal), ``job.preempt``, ``job.requeue``.

    Example: ``{"job_id": 7, "t_s": 10.0, "state": "FAILED", "reason": "exit code 3"}`` with
    ``{"exit_code": 3, "exit_signal": 0, "reason": "NonZeroExitCode"}`` logs ``job 7 FAILED: exit
    code 3`` with the fields ``event=job.end``, ``state=FAILED``, ``exit_code=3``, ``signal=0``.
    """
    state = event["state"]
    fields: dict[str, Any] = {"event": _EVENT_OF.get(state, "job.end"), "job_id": event["job_id"], "state": state,
                              "t_s": event["t_s"], "detail": event["reason"]}  # fmt: skip
    if state in _ENDED:
        fields.update(reason=cols.get("reason"), exit_code=cols.get("exit_code"), signal=cols.get("exit_signal"))
    transitions_log.info("job %d %s: %s", event["job_id"], state, event["reason"], extra={"fields": fields})


_ENDED = frozenset(state.value for state in TERMINAL_STATES)

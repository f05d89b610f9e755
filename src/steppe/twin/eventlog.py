"""The replay's event log, hashed as it grows: the same inputs and seed give the same digest.

Each transition is one event ``time kind job_id detail``: a submission, a start (its
allocation and GPU power cap) or a stop (the state it ended in). A transition costs a few list
appends of numbers, never a string format: events are encoded in batches of ``_BATCH``, in C
(numpy), and the digest is SHA-256 over the batches, each laid out as

* the events' times in whole microseconds (int64),
* their numbers (int64): per event its kind code and job id; a start adds its node count,
  then ``node, GPUs`` per node,
* the starts' power caps in thousandths (int64),

so a replay's digest changes only when a decision changes by a microsecond or a cap by a
thousandth (float noise below that does not count). Batches are cut every ``_BATCH`` events,
the same in every run, so the digest is deterministic. ``keep_lines=True`` also keeps each
event as a readable line (for comparing two replays by eye).

>>> log = EventLog(keep_lines=True)
>>> class R:
...     job_id, allocation, cap_fraction = 7, ((0, 4),), 1.0
>>> log.on_submit(R, 0.0); log.on_start(R, 1.5)
>>> log.lines
['0.000000 SUBMIT 7', '1.500000 START 7 ((0, 4),) cap=1.000']
>>> log.count, len(log.digest())
(2, 64)
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from steppe.core.job import JobState
from steppe.core.records import JobRecord

_BATCH = 4096
_SUBMIT, _START = 0, 1
_STOP = {state: 2 + i for i, state in enumerate(JobState)}  # a stop's code says the state it ended in
_NAME = {code: state.value for state, code in _STOP.items()} | {_SUBMIT: "SUBMIT", _START: "START"}


class EventLog:
    """A state listener that hashes every transition (and optionally keeps them as lines)."""

    def __init__(self, keep_lines: bool = False) -> None:
        self._hash = hashlib.sha256()
        self._times: list[float] = []  # per event
        self._ints: list[int] = []  # per event: kind, job id (and a start's allocation)
        self._caps: list[float] = []  # per start
        self._kept: list[tuple[Any, ...]] | None = [] if keep_lines else None
        self._hashed = 0

    @property
    def count(self) -> int:
        """Events logged so far."""
        return self._hashed + len(self._times)

    @property
    def lines(self) -> list[str] | None:
        """Every event so far as a line ``time kind job_id detail`` (None unless kept)."""
        if self._kept is None:
            return None
        return [_line(event) for event in self._kept]

    # one to three appends per transition: a replay logs a few hundred thousand
    def on_submit(self, rec: JobRecord, now: float) -> None:
        times = self._times
        times.append(now)
        self._ints += (_SUBMIT, rec.job_id)
        if self._kept is not None:
            self._kept.append((now, _SUBMIT, rec.job_id))
        if len(times) >= _BATCH:
            self._flush()

    def on_start(self, rec: JobRecord, now: float) -> None:
        times, ints, alloc = self._times, self._ints, rec.allocation
        times.append(now)
        if len(alloc) == 1:
            node, gpus = alloc[0]
            ints += (_START, rec.job_id, 1, node, gpus)
        else:
            ints += (_START, rec.job_id, len(alloc))
            for node, gpus in alloc:
                ints += (node, gpus)
        self._caps.append(rec.cap_fraction)
        if self._kept is not None:
            self._kept.append((now, _START, rec.job_id, alloc, rec.cap_fraction))
        if len(times) >= _BATCH:
            self._flush()

    def on_stop(self, rec: JobRecord, now: float) -> None:
        times = self._times
        times.append(now)
        self._ints += (_STOP[rec.state], rec.job_id)
        if self._kept is not None:
            self._kept.append((now, _STOP[rec.state], rec.job_id))
        if len(times) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        times = self._times
        if not times:
            return
        update = self._hash.update
        update(np.rint(np.asarray(times) * 1e6).astype(np.int64).tobytes())
        update(np.asarray(self._ints, dtype=np.int64).tobytes())
        update(np.rint(np.asarray(self._caps, dtype=float) * 1e3).astype(np.int64).tobytes())
        self._hashed += len(times)
        times.clear()
        self._ints.clear()
        self._caps.clear()

    def digest(self) -> str:
        self._flush()
        return self._hash.hexdigest()


def _line(event: tuple[Any, ...]) -> str:
    now, code, job_id = event[0], event[1], event[2]
    if code == _START:
        return f"{now:.6f} START {job_id} {event[3]!r} cap={event[4]:.3f}"
    return f"{now:.6f} {_NAME[code]} {job_id}"

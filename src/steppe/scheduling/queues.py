"""Pending queues kept in policy order, incrementally (no re-sort per cycle).

``KeyedQueue`` orders jobs by a key fixed while the job waits: submit order for FIFO and
EASY, remaining run time for SRTF. Policies whose order moves with time (multifactor) or
with service (LAS) have their own queue next to them.

>>> from steppe.core.job import JobSpec
>>> from steppe.core.records import JobRecord
>>> q = KeyedQueue(submit_order_key)
>>> for i, t in [(2, 5.0), (1, 0.0)]:
...     q.add(JobRecord(JobSpec(i, t, 1, 10.0, 10.0, "a"), seq=i), now=t)
>>> [r.job_id for r in q.ordered(now=5.0)]
[1, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedList

from steppe.core.records import JobRecord


def submit_order_key(rec: JobRecord) -> tuple[float, int]:
    """First come, first served; ties broken by submission sequence."""
    return (rec.spec.submit_s, rec.seq)


class KeyedQueue:
    """Pending jobs sorted by a key computed once when a job enters the queue.

    One sorted list of ``(key, job_id, record)`` entries: ``job_id`` is unique, so two entries
    never compare their records, and the list's own tuple order is the queue's order.
    """

    tracks_running = False  # the state need not tell it of starts and stops

    def __init__(self, key: Callable[[JobRecord], Any]) -> None:
        self._key = key
        self._entries: dict[int, tuple[Any, int, JobRecord]] = {}
        self._items: SortedList = SortedList()

    def add(self, rec: JobRecord, now: float) -> None:
        entry = self._entries[rec.job_id] = (self._key(rec), rec.job_id, rec)
        self._items.add(entry)

    def remove(self, rec: JobRecord) -> None:
        self._items.remove(self._entries.pop(rec.job_id))

    def ordered(self, now: float) -> Iterator[JobRecord]:
        return map(_record, self._items)

    def precedes(self, a: JobRecord, b: JobRecord, now: float) -> bool:
        """True when ``a`` is ahead of ``b``."""
        ea, eb = self._entries[a.job_id], self._entries[b.job_id]
        return bool((ea[0], ea[1]) < (eb[0], eb[1]))

    def on_start(self, rec: JobRecord, now: float) -> None:
        """Running jobs are not tracked here."""

    def on_stop(self, rec: JobRecord, now: float) -> None:
        """Running jobs are not tracked here."""

    def __len__(self) -> int:
        return len(self._items)


_record = itemgetter(2)

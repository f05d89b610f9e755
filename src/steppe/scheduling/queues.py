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

    Entries are ``(key, job_id, record)``: ``job_id`` is unique, so two entries never compare
    their records, and tuple order is the queue's order. While jobs enter in key order (FIFO's
    submissions, nearly always) the queue is a plain dict in insertion order: adding and
    removing a job are one dict operation each. The first entry to arrive out of order (a
    preempted job requeued, SRTF's short job) moves the entries into a sorted list, which is
    kept until the queue is empty again.

    >>> from steppe.core.job import JobSpec
    >>> q = KeyedQueue(lambda rec: rec.spec.runtime_s)
    >>> for i, run in [(1, 30.0), (2, 50.0), (3, 10.0)]:  # job 3 enters out of order
    ...     q.add(JobRecord(JobSpec(i, 0.0, 1, run, run, "a"), seq=i), now=0.0)
    >>> [r.job_id for r in q.ordered(now=0.0)]
    [3, 1, 2]
    """

    tracks_running = False  # the state need not tell it of starts and stops

    def __init__(self, key: Callable[[JobRecord], Any]) -> None:
        self._key = key
        self._entries: dict[int, tuple[Any, int, JobRecord]] = {}  # by job id (in queue order while unsorted)
        self._last: tuple[Any, int] | None = None  # the largest (key, job_id) that entered the dict
        self._items: SortedList | None = None  # every entry in order, once one arrived out of order

    def add(self, rec: JobRecord, now: float) -> None:
        job_id = rec.job_id
        key = self._key(rec)
        entry = self._entries[job_id] = (key, job_id, rec)
        items = self._items
        if items is not None:
            items.add(entry)
            return
        last = self._last
        if last is None or last < (key, job_id):
            self._last = (key, job_id)
        else:  # out of order: keep a sorted list from now on
            self._items = SortedList(self._entries.values())

    def remove(self, rec: JobRecord) -> None:
        entries = self._entries
        entry = entries.pop(rec.job_id)
        items = self._items
        if items is not None:
            items.remove(entry)
            if not items:
                self._items = None
        if not entries:
            self._last = None

    def ordered(self, now: float) -> Iterator[JobRecord]:
        items = self._items
        return map(_record, self._entries.values() if items is None else items)

    def precedes(self, a: JobRecord, b: JobRecord, now: float) -> bool:
        """True when ``a`` is ahead of ``b``."""
        ea, eb = self._entries[a.job_id], self._entries[b.job_id]
        return bool((ea[0], ea[1]) < (eb[0], eb[1]))

    def on_start(self, rec: JobRecord, now: float) -> None:
        """Running jobs are not tracked here."""

    def on_stop(self, rec: JobRecord, now: float) -> None:
        """Running jobs are not tracked here."""

    def __len__(self) -> int:
        return len(self._entries)


_record = itemgetter(2)

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
from typing import Any

from sortedcontainers import SortedKeyList

from steppe.core.records import JobRecord


def submit_order_key(rec: JobRecord) -> tuple[float, int]:
    """First come, first served; ties broken by submission sequence."""
    return (rec.spec.submit_s, rec.seq)


class KeyedQueue:
    """Pending jobs sorted by a key computed once when a job enters the queue."""

    def __init__(self, key: Callable[[JobRecord], Any]) -> None:
        self._key = key
        self._keys: dict[int, Any] = {}
        self._items: SortedKeyList = SortedKeyList(key=lambda r: self._keys[r.job_id])

    def add(self, rec: JobRecord, now: float) -> None:
        self._keys[rec.job_id] = (self._key(rec), rec.job_id)
        self._items.add(rec)

    def remove(self, rec: JobRecord) -> None:
        self._items.remove(rec)
        del self._keys[rec.job_id]

    def ordered(self, now: float) -> Iterator[JobRecord]:
        return iter(self._items)

    def precedes(self, a: JobRecord, b: JobRecord, now: float) -> bool:
        """True when ``a`` is ahead of ``b``."""
        return bool(self._keys[a.job_id] < self._keys[b.job_id])

    def on_start(self, rec: JobRecord, now: float) -> None:
        """Running jobs are not tracked here."""

    def on_stop(self, rec: JobRecord, now: float) -> None:
        """Running jobs are not tracked here."""

    def __len__(self) -> int:
        return len(self._items)

"""Where usage records go: the ``UsageSink`` protocol and ``MemorySink`` (the twin's).

The live hub's sink (``steppe.control.usage_sink.StoreSink``) buffers rows for the loop's
transaction and tells the allocation ledger; the twin keeps records in memory, merged per
``(job, month, GPU type)``, with running per-tenant and per-job totals:

>>> from steppe.metering.records import UsageRecord
>>> sink = MemorySink()
>>> sink.add([UsageRecord(1, "a/p", "a", "2026-01", "H100", 20.0, 0, 0, 0, 0, "none", 0.0, 10.0),
...           UsageRecord(1, "a/p", "a", "2026-01", "H100", 20.0, 0, 0, 0, 0, "none", 10.0, 20.0)])
>>> sink.tenant_gpu_s["a"], len(sink.records()), sink.records()[0].last_s
(40.0, 1, 20.0)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol

from steppe.metering.records import UsageRecord, merge


class UsageSink(Protocol):
    """Takes the records the meter emits (each batch once)."""

    def add(self, records: Sequence[UsageRecord]) -> None: ...


class MemorySink:
    """Records in memory, merged per ``(job, month, GPU type)``; per-tenant GPU-seconds as they come.

    With ``keep_records=False`` only the per-tenant totals stay (a replay that needs no per-job
    figures keeps no memory per job: a million-job year would hold a few hundred MB of records).
    """

    def __init__(self, keep_records: bool = True) -> None:
        self.keep_records = keep_records
        self._by_key: dict[tuple[int, str, str], UsageRecord] = {}
        self.tenant_gpu_s: defaultdict[str, float] = defaultdict(float)

    def add(self, records: Sequence[UsageRecord]) -> None:
        by_key, tenant_gpu_s = self._by_key, self.tenant_gpu_s
        for r in records:
            tenant_gpu_s[r.tenant] += r.gpu_seconds
        if not self.keep_records:
            return
        for r in records:
            key = (r.job_id, r.period, r.gpu_type)
            old = by_key.get(key)
            by_key[key] = r if old is None else merge(old, r)

    def add_tenant_gpu_s(self, totals: Mapping[str, float]) -> None:
        """Add GPU-seconds per tenant without records (a meter that keeps totals only, into a sink
        with ``keep_records=False``)."""
        tenant_gpu_s = self.tenant_gpu_s
        for tenant, gpu_s in totals.items():
            tenant_gpu_s[tenant] += gpu_s

    def records(self) -> list[UsageRecord]:
        """Every record, by job, then month, then GPU type."""
        return [self._by_key[k] for k in sorted(self._by_key)]

    def per_job(self) -> dict[int, UsageRecord]:
        """One record per job (its months and GPU types merged)."""
        out: dict[int, UsageRecord] = {}
        for r in self._by_key.values():
            old = out.get(r.job_id)
            out[r.job_id] = r if old is None else merge(old, r)
        return out

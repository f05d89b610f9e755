"""Slurm's multifactor priority, kept in order incrementally.

    priority = W_age * A + W_fairshare * F + W_size * Z + W_qos * Q

* ``A = min(age / max_age, 1)``: time waited (``PriorityMaxAge``, default 7 days);
* ``F = 2 ** (-U / S)``: fair share (Slurm's classic formula), where ``U`` is the tenant's
  share of all decayed usage (``steppe.core.usage``) and ``S`` its share of the weights of
  every tenant that has waited or has usage. As Slurm's decay thread does every
  ``PriorityCalcPeriod``, the factors are recalculated at most once per ``calc_period_s``
  (5 minutes), and at once when a new tenant appears or the weights change: a job that
  starts moves its tenant's fair share at the next period, not within the current one;
* ``Z = gpus / fleet GPUs``: job size (Slurm favours large jobs by default);
* ``Q = qos priority / highest qos priority``.

The age term grows at the same rate for every job younger than ``max_age``, so within one
tenant the order of young jobs never changes: they sort once by
``static - W_age * submit / max_age``. Jobs older than ``max_age`` sort by ``static`` alone.
The global order is a merge of two sorted lists per tenant, each shifted by the tenant's
fair-share term, so a cycle costs O(k log T) for the k jobs it looks at and T tenants,
never a re-sort of the queue.

Example: weights age 1000, fair share 10000, max age 1 day; tenants a and b with equal
weights; a has used all the decayed usage so far (U=1, S=0.5, F=2**-2=0.25), b none (F=1).
A job of b submitted now (priority 10000) outranks a job of a waiting 12 h (500 + 2500).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedList

from steppe.core.cluster import Cluster
from steppe.core.records import JobRecord
from steppe.core.usage import DecayedUsage


@dataclass(frozen=True)
class MultifactorWeights:
    """Weights and limits, named after Slurm's ``PriorityWeight*`` settings."""

    age: float = 1000.0
    fairshare: float = 10000.0
    job_size: float = 1000.0
    qos: float = 10000.0
    max_age_s: float = 7 * 86400.0
    calc_period_s: float = 300.0  # PriorityCalcPeriod: how often fair-share factors are recalculated


def _merged(streams: list[tuple[SortedList, float]]) -> Iterator[JobRecord]:
    """Records of several sorted ``(key, seq, rec)`` lists, each with its keys shifted by a
    constant, in ``(key + shift, seq)`` order: a lazy k-way merge on one heap of
    ``[shifted key, seq, rec, shift, rest]`` entries (``seq`` is unique, so records are never
    compared), one generator step per record.

    >>> a, b = SortedList([(1.0, 1, "a1"), (5.0, 3, "a2")]), SortedList([(0.0, 2, "b1")])
    >>> list(_merged([(a, 0.0), (b, 2.0)]))
    ['a1', 'b1', 'a2']
    """
    heap: list[list[Any]] = []
    for items, shift in streams:
        rest = iter(items)
        for key, seq, rec in rest:
            heap.append([key + shift, seq, rec, shift, rest])
            break
    heapq.heapify(heap)
    while len(heap) > 1:
        top = heap[0]
        yield top[2]
        following = next(top[4], None)
        if following is None:
            heapq.heappop(heap)
        else:
            top[0] = following[0] + top[3]
            top[1] = following[1]
            top[2] = following[2]
            heapq.heapreplace(heap, top)
    if heap:
        top = heap[0]
        yield top[2]
        yield from map(_record, top[4])


_record = itemgetter(2)


class _TenantQueue:
    def __init__(self) -> None:
        # entries (key, seq, rec): seq is unique, so records are never compared
        self.young: SortedList = SortedList()  # (-(static - W*submit/M), seq, rec)
        self.old: SortedList = SortedList()  # (-static, seq, rec)
        self.by_submit: SortedList = SortedList()  # (submit, seq, rec) of young
        self.first_submit = math.inf  # at most the earliest submit time in ``by_submit`` (none: inf)


class MultifactorQueue:
    """Pending jobs in multifactor priority order."""

    def __init__(self, cluster: Cluster, usage: DecayedUsage, weights: MultifactorWeights) -> None:
        self.cluster = cluster
        self.usage = usage
        self.w = weights
        self._total_gpus = max(cluster.total_gpus, 1)
        top_qos = max((q.priority for q in cluster.qos.values()), default=0.0)
        self._top_qos = top_qos if top_qos > 0 else 1.0
        self._tenants: dict[str, _TenantQueue] = {}
        self._entries: dict[int, tuple[tuple[float, int, JobRecord], ...]] = {}
        self._static: dict[int, float] = {}  # job id -> static_part, while it waits
        self._size = 0
        self._seen: set[str] = set()  # every tenant that has had a waiting job
        self._tenants_version = 0  # changes when a tenant is first seen, or the weights change
        self._names_at: tuple[int, int] | None = None  # (tenants version, tenants with usage) of ``_names``
        self._names: list[str] = []  # the tenants fair share counts: seen, or with usage
        self._factors_s = -math.inf  # when ``_factors`` were calculated
        self._factors: dict[str, float] = {}

    # -- factors ---------------------------------------------------------------------------
    def static_part(self, rec: JobRecord) -> float:
        qos = self.cluster.qos_of(rec.spec.qos).priority
        return self.w.job_size * rec.gpus / self._total_gpus + self.w.qos * qos / self._top_qos

    def fairshare_factors(self, now: float) -> dict[str, float]:
        """F per tenant: ``2 ** (-usage share / weight share)``, for every tenant seen.

        Recalculated when ``calc_period_s`` has passed since the last calculation, or the
        tenants counted or their weights changed; read it, never change it.

        >>> from steppe.core.cluster import Cluster
        >>> usage = DecayedUsage()
        >>> q = MultifactorQueue(Cluster.uniform(1, 8, "H100"), usage, MultifactorWeights())
        >>> usage.change("a", 0.0, 8)
        >>> q.fairshare_factors(0.0)["a"]  # no usage yet at t=0
        1.0
        >>> q.fairshare_factors(200.0)["a"]  # within the period: as calculated at t=0
        1.0
        >>> round(q.fairshare_factors(300.0)["a"], 3)  # a period later: a holds all usage
        0.5
        """
        if self._factors_hold(now):
            return self._factors
        at = (self._tenants_version, self.usage.count())
        if at != self._names_at:
            self._names = sorted(self._seen.union(self.usage.tenants()))
            self._names_at = at
        self._factors = self._compute_factors(now)
        self._factors_s = now
        return self._factors

    def order_epoch(self, now: float) -> float:
        """When the fair-share factors the order uses at ``now`` were calculated (``now`` itself
        when they are due again): a memoised cycle is reused only while it is unchanged."""
        return self._factors_s if self._factors_hold(now) else now

    def _factors_hold(self, now: float) -> bool:
        """The factors last calculated still apply at ``now``: the same tenants and weights, within a period."""
        at = (self._tenants_version, self.usage.count())
        return at == self._names_at and 0.0 <= now - self._factors_s < self.w.calc_period_s

    def on_tenants(self) -> None:
        """The tenants' weights changed (the state's ``set_tenants``)."""
        self._tenants_version += 1

    def _compute_factors(self, now: float) -> dict[str, float]:
        names, specs = self._names, self.cluster.tenants
        weights = [spec.weight if (spec := specs.get(t)) is not None else 1.0 for t in names]
        total_w = sum(weights) or 1.0
        used = self.usage.values(names, now)
        total_u = sum(used.values())
        out = {}
        for t, w in zip(names, weights, strict=True):
            u = used[t] / total_u if total_u > 0 else 0.0
            out[t] = 2.0 ** (-u / (w / total_w))
        return out

    def priority(self, rec: JobRecord, now: float, fairshare: float | None = None) -> float:
        """The job's priority at ``now``."""
        if fairshare is None:
            fairshare = self.fairshare_factors(now).get(rec.spec.tenant, 1.0)
        age = min(max(now - rec.spec.submit_s, 0.0) / self.w.max_age_s, 1.0)
        return self.static_part(rec) + self.w.age * age + self.w.fairshare * fairshare

    # -- queue protocol ----------------------------------------------------------------------
    def add(self, rec: JobRecord, now: float) -> None:
        tq = self._tenants.get(rec.spec.tenant)
        if tq is None:
            tq = self._tenants[rec.spec.tenant] = _TenantQueue()
            if rec.spec.tenant not in self._seen:
                self._seen.add(rec.spec.tenant)
                self._tenants_version += 1
        static = self._static[rec.job_id] = self.static_part(rec)
        submit = rec.spec.submit_s
        young = (-(static - self.w.age * submit / self.w.max_age_s), rec.seq, rec)
        by_submit = (submit, rec.seq, rec)
        tq.young.add(young)
        tq.by_submit.add(by_submit)
        if submit < tq.first_submit:
            tq.first_submit = submit
        self._entries[rec.job_id] = (young, by_submit)
        self._size += 1
        self._age(tq, now)

    def remove(self, rec: JobRecord) -> None:
        tq = self._tenants[rec.spec.tenant]
        entries = self._entries.pop(rec.job_id)
        del self._static[rec.job_id]
        if len(entries) == 2:
            tq.young.remove(entries[0])
            tq.by_submit.remove(entries[1])
        else:
            tq.old.remove(entries[0])
        self._size -= 1
        if not (tq.young or tq.old):
            del self._tenants[rec.spec.tenant]

    def ordered(self, now: float) -> Iterator[JobRecord]:
        fs = self.fairshare_factors(now)
        streams: list[tuple[SortedList, float]] = []
        for tenant, tq in list(self._tenants.items()):
            self._age(tq, now)
            base = self.w.fairshare * fs[tenant]
            if tq.young:
                streams.append((tq.young, -(base + self.w.age * now / self.w.max_age_s)))
            if tq.old:
                streams.append((tq.old, -(base + self.w.age)))
        if len(streams) == 1:
            return map(_record, streams[0][0])
        return _merged(streams)

    def precedes(self, a: JobRecord, b: JobRecord, now: float) -> bool:
        """True when waiting job ``a`` is ahead of waiting job ``b`` (``priority``, from the static
        parts kept since they entered)."""
        fs, w, static = self.fairshare_factors(now), self.w, self._static
        sa, sb = a.spec, b.spec
        age_a = min(max(now - sa.submit_s, 0.0) / w.max_age_s, 1.0)
        age_b = min(max(now - sb.submit_s, 0.0) / w.max_age_s, 1.0)
        pa = static[a.job_id] + w.age * age_a + w.fairshare * fs.get(sa.tenant, 1.0)
        pb = static[b.job_id] + w.age * age_b + w.fairshare * fs.get(sb.tenant, 1.0)
        return (-pa, a.seq) < (-pb, b.seq)

    def on_start(self, rec: JobRecord, now: float) -> None:
        """The tenant's decayed usage grows from now on (only fair share reads it)."""
        self.usage.change(rec.spec.tenant, now, rec.gpus)

    def on_stop(self, rec: JobRecord, now: float) -> None:
        self.usage.change(rec.spec.tenant, now, -rec.gpus)

    def __len__(self) -> int:
        return self._size

    def _age(self, tq: _TenantQueue, now: float) -> None:
        """Move jobs older than ``max_age`` from the young list to the old list."""
        limit = now - self.w.max_age_s
        if tq.first_submit > limit:  # no young job is old enough yet
            return
        while tq.by_submit and tq.by_submit[0][0] <= limit:
            by_submit = tq.by_submit.pop(0)
            rec = by_submit[2]
            young, _ = self._entries[rec.job_id]
            tq.young.remove(young)
            old = (-self.static_part(rec), rec.seq, rec)
            tq.old.add(old)
            self._entries[rec.job_id] = (old,)
        tq.first_submit = tq.by_submit[0][0] if tq.by_submit else math.inf

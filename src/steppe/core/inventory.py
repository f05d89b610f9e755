"""Free GPUs per node, indexed for fast placement; and a cycle's scratch overlay over them.

``GpuInventory`` is the hub's real inventory: each pool (a site's GPUs of one type; in a one-site
hub, simply a GPU type: ``core/cluster.py``) keeps its nodes with free GPUs in buckets by free
count, each bucket a plain sorted list of node indices. The best-fit node for a
job of ``g`` GPUs is the first node of the first non-empty bucket from ``g`` up (a node has at
most a handful of GPUs, so that is a few list lookups), and a change moves one node between two
buckets (a bisection each, in C, over one bucket rather than the whole fleet: 8,192 nodes stay
cheap). Only the state's writer changes it (``allocate``, ``release``).

Example: free GPUs per node ``[8, 3, 2, 3]``: buckets 2: [2], 3: [1, 3], 8: [0]; a 3-GPU job's
best fit is node 1 (fewest free that hold it, lowest index on ties).

A scheduling cycle never writes it. It reads it through an ``InventoryOverlay``: trial
allocations (and GPUs freed by trial preemptions) are recorded as deltas per node in a small
dict over the untouched base, so an aborted or failing cycle leaves nothing behind and no
cycle copies the inventory. Queries merge the base index with the few nodes the cycle touched.
One overlay serves every cycle of a policy (``reset`` empties its deltas).

>>> from steppe.core.cluster import Cluster
>>> inv = GpuInventory(Cluster.uniform(2, 8, "H100"))
>>> trial = InventoryOverlay(inv)
>>> trial.allocate(((0, 6),)); trial.best_fit_node("H100", 2), trial.free_gpus("H100")
(0, 10)
>>> inv.pools_of["H100"], inv.pools_of[None]   # the pools a job of a type (or of any type) may use
(('H100',), ('H100',))
>>> inv.free_gpus("H100")          # the base is untouched
16
>>> trial.reset(); trial.free_gpus("H100")
16
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from typing import Protocol

from steppe.core.cluster import Cluster, Node

Allocation = tuple[tuple[int, int], ...]
"""GPUs granted to a job: ``((node_index, gpus), ...)``."""


class InventoryView(Protocol):
    """What placement and the cycles read of free GPUs (the real inventory or a cycle's overlay)."""

    @property
    def nodes(self) -> tuple[Node, ...]: ...

    @property
    def node_type(self) -> Sequence[str]: ...

    @property
    def node_pool(self) -> Sequence[str]: ...

    @property
    def pools(self) -> tuple[str, ...]: ...

    @property
    def gpu_types(self) -> tuple[str, ...]: ...

    @property
    def pools_of(self) -> dict[str | None, tuple[str, ...]]: ...

    @property
    def pool_site(self) -> dict[str, str]: ...

    @property
    def pool_type(self) -> dict[str, str]: ...

    @property
    def total_by_pool(self) -> dict[str, int]: ...

    @property
    def free_by_pool(self) -> dict[str, int]: ...

    @property
    def total_free(self) -> int: ...

    @property
    def largest_pool(self) -> int: ...

    @property
    def largest_of(self) -> dict[str | None, int]: ...

    def free_gpus(self, pool: str | None = None) -> int: ...

    def free_on(self, node: int) -> int: ...

    def best_fit_node(self, pool: str, gpus: int) -> int | None: ...

    def nodes_by_free_desc(self, pool: str) -> Iterator[tuple[int, int]]: ...


class GpuInventory:
    """Free GPU counts per node and per pool (the hub's real inventory; its writer changes it)."""

    def __init__(self, cluster: Cluster) -> None:
        self.nodes: tuple[Node, ...] = cluster.nodes
        self.free: list[int] = [n.gpus for n in cluster.nodes]
        self.node_type: list[str] = [n.gpu_type.name for n in cluster.nodes]
        self.node_pool: list[str] = [n.pool for n in cluster.nodes]
        self.pools: tuple[str, ...] = tuple(dict.fromkeys(self.node_pool))
        self.gpu_types: tuple[str, ...] = tuple(dict.fromkeys(self.node_type))
        self.pool_site: dict[str, str] = {n.pool: n.site for n in cluster.nodes}
        self.pool_type: dict[str, str] = {n.pool: n.gpu_type.name for n in cluster.nodes}
        self.pools_of: dict[str | None, tuple[str, ...]] = {None: self.pools}
        for p in self.pools:
            self.pools_of[self.pool_type[p]] = (*self.pools_of.get(self.pool_type[p], ()), p)
        self.total_by_pool: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.free_by_pool: dict[str, int] = dict.fromkeys(self.pools, 0)
        # per pool, per free count k: the nodes with k free GPUs, in index order (k = 0: never listed)
        largest = {p: 0 for p in self.pools}
        for n, p in zip(cluster.nodes, self.node_pool, strict=True):
            largest[p] = max(largest[p], n.gpus)
        self.buckets: dict[str, list[list[int]]] = {p: [[] for _ in range(largest[p] + 1)] for p in self.pools}
        for n, p in zip(cluster.nodes, self.node_pool, strict=True):
            self.total_by_pool[p] += n.gpus
            self.free_by_pool[p] += n.gpus
            if n.gpus:
                insort(self.buckets[p][n.gpus], n.index)
        self.total_free = sum(self.free)
        self.largest_pool = max(self.total_by_pool.values(), default=0)
        # the largest pool a job of each type (None: of any type) may use: the most GPUs its gang can have
        self.largest_of: dict[str | None, int] = {None: self.largest_pool}
        for p, gpus in self.total_by_pool.items():
            t = self.pool_type[p]
            self.largest_of[t] = max(self.largest_of.get(t, 0), gpus)

    # -- queries ---------------------------------------------------------------------------
    def free_gpus(self, pool: str | None = None) -> int:
        """Free GPUs of one pool, or of all pools when ``pool`` is None."""
        if pool is None:
            return self.total_free
        return self.free_by_pool.get(pool, 0)

    def free_on(self, node: int) -> int:
        return self.free[node]

    @property
    def index(self) -> dict[str, list[tuple[int, int]]]:
        """``(free, node_index)`` of every node with free GPUs, sorted, per pool (a copy, for reading)."""
        return {p: [(k, n) for k, nodes in enumerate(b) for n in nodes] for p, b in self.buckets.items()}

    def best_fit_node(self, pool: str, gpus: int) -> int | None:
        """The node of ``pool`` with the fewest free GPUs that still holds ``gpus`` (lowest index on ties)."""
        buckets = self.buckets[pool]
        for k in range(gpus, len(buckets)):
            nodes = buckets[k]
            if nodes:
                return nodes[0]
        return None

    def nodes_by_free_desc(self, pool: str) -> Iterator[tuple[int, int]]:
        """``(free, node_index)`` from the emptiest node down (most free GPUs first; on ties the
        highest index first)."""
        buckets = self.buckets[pool]
        for k in range(len(buckets) - 1, 0, -1):
            for node in reversed(buckets[k]):
                yield k, node

    # -- mutation (the writer only) ----------------------------------------------------------
    def allocate(self, alloc: Allocation) -> None:
        """Take GPUs; raises ValueError if a node lacks them (nothing changes then)."""
        problem = self.take(alloc)
        if problem:
            raise ValueError(problem)

    def take(self, alloc: Allocation) -> str:
        """Take GPUs; or, if a node lacks them, change nothing and say why (the writer's check)."""
        free = self.free
        for node, gpus in alloc:
            if gpus < 1 or free[node] < gpus:
                return f"node {self.nodes[node].name}: {gpus} GPUs asked, {free[node]} free"
        change = self._change
        for node, gpus in alloc:
            change(node, -gpus)
        return ""

    def release(self, alloc: Allocation) -> None:
        """Give GPUs back."""
        for node, gpus in alloc:
            if self.free[node] + gpus > self.nodes[node].gpus:
                raise ValueError(f"node {self.nodes[node].name}: releasing {gpus} GPUs exceeds its size")
        for node, gpus in alloc:
            self._change(node, gpus)

    def _change(self, node: int, delta: int) -> None:
        free = self.free
        old = free[node]
        new = free[node] = old + delta
        p = self.node_pool[node]
        buckets = self.buckets[p]
        if old:
            nodes = buckets[old]
            del nodes[bisect_left(nodes, node)]
        if new:
            insort(buckets[new], node)
        self.free_by_pool[p] += delta
        self.total_free += delta


class InventoryOverlay:
    """A cycle's trial allocations over a base inventory it never writes: GPUs taken per node.

    ``taken[node]`` is what the cycle took on ``node`` (negative when a trial preemption freed
    GPUs there); ``free_by_pool`` and ``total_free`` are the base's less what was taken.
    """

    def __init__(self, base: GpuInventory) -> None:
        self.base = base
        self.nodes = base.nodes
        self.node_type = base.node_type
        self.node_pool = base.node_pool
        self.pools = base.pools
        self.gpu_types = base.gpu_types
        self.pools_of = base.pools_of
        self.pool_site = base.pool_site
        self.pool_type = base.pool_type
        self.total_by_pool = base.total_by_pool
        self.largest_pool = base.largest_pool
        self.largest_of = base.largest_of
        self.taken: dict[int, int] = {}
        self.free_by_pool: dict[str, int] = dict(base.free_by_pool)
        self.total_free = base.total_free

    def reset(self) -> None:
        """Forget every trial (the start of a cycle): the view equals the base again."""
        if self.taken:
            self.taken.clear()
        self.free_by_pool.update(self.base.free_by_pool)
        self.total_free = self.base.total_free

    # -- queries ---------------------------------------------------------------------------
    def free_gpus(self, pool: str | None = None) -> int:
        if pool is None:
            return self.total_free
        return self.free_by_pool.get(pool, 0)

    def free_on(self, node: int) -> int:
        return self.base.free[node] - self.taken.get(node, 0)

    def best_fit_node(self, pool: str, gpus: int) -> int | None:
        """As ``GpuInventory.best_fit_node``, over the base with this cycle's trials applied."""
        taken = self.taken
        if not taken:
            return self.base.best_fit_node(pool, gpus)
        best: tuple[int, int] | None = None
        buckets = self.base.buckets[pool]
        for k in range(gpus, len(buckets)):  # the best untouched node: as the base's, skipping touched ones
            for node in buckets[k]:
                if node not in taken:
                    best = (k, node)
                    break
            if best is not None:
                break
        free, node_pool = self.base.free, self.node_pool
        for node, took in taken.items():
            if node_pool[node] == pool:
                entry = (free[node] - took, node)
                if entry[0] >= gpus and (best is None or entry < best):
                    best = entry
        return None if best is None else best[1]

    def nodes_by_free_desc(self, pool: str) -> Iterator[tuple[int, int]]:
        """``(free, node_index)`` from the emptiest node down, with this cycle's trials applied."""
        taken = self.taken
        if not taken:
            return self.base.nodes_by_free_desc(pool)
        free, node_pool = self.base.free, self.node_pool
        untouched = (e for e in self.base.nodes_by_free_desc(pool) if e[1] not in taken)
        touched = sorted(
            ((free[n] - took, n) for n, took in taken.items() if node_pool[n] == pool and free[n] > took),
            reverse=True,
        )
        return heapq.merge(untouched, touched, reverse=True)

    # -- trials ------------------------------------------------------------------------------
    def allocate(self, alloc: Allocation) -> None:
        """Take GPUs in this cycle; raises ValueError if a node lacks them (nothing changes then)."""
        free, taken = self.base.free, self.taken
        if len(alloc) == 1:  # the common case, inlined: a cycle's every trial start
            node, gpus = alloc[0]
            took = taken.get(node, 0)
            if gpus < 1 or free[node] - took < gpus:
                raise ValueError(f"node {self.nodes[node].name}: {gpus} GPUs asked, {free[node] - took} free")
            taken[node] = took + gpus
            self.free_by_pool[self.node_pool[node]] -= gpus
            self.total_free -= gpus
            return
        for node, gpus in alloc:
            if gpus < 1 or self.free_on(node) < gpus:
                raise ValueError(f"node {self.nodes[node].name}: {gpus} GPUs asked, {self.free_on(node)} free")
        for node, gpus in alloc:
            self._change(node, gpus)

    def release(self, alloc: Allocation) -> None:
        """Free GPUs in this cycle (a trial preemption)."""
        for node, gpus in alloc:
            if self.free_on(node) + gpus > self.nodes[node].gpus:
                raise ValueError(f"node {self.nodes[node].name}: releasing {gpus} GPUs exceeds its size")
        for node, gpus in alloc:
            self._change(node, -gpus)

    def _change(self, node: int, took: int) -> None:
        taken = self.taken
        now_taken = taken.get(node, 0) + took
        if now_taken:
            taken[node] = now_taken
        else:
            del taken[node]
        self.free_by_pool[self.node_pool[node]] -= took
        self.total_free -= took

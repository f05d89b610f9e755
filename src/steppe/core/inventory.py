"""Free GPUs per node, indexed for fast placement, with trial allocations that roll back.

Each GPU type keeps a sorted index of ``(free_gpus, node_index)`` for nodes with at least one
free GPU, so the best-fit node for a job of ``g`` GPUs is one bisection away and no pass
scans every node. A scheduling pass works on a *trial*: it allocates as it decides, then
``rollback()`` restores the inventory so the plan can be verified and committed by the
single writer.

>>> from steppe.core.cluster import Cluster
>>> inv = GpuInventory(Cluster.uniform(2, 8, "H100"))
>>> inv.free_gpus("H100")
16
>>> inv.allocate(((0, 6),)); inv.best_fit_node("H100", 2)
0
>>> inv.rollback_to(0); inv.free_gpus("H100")
16
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList

from steppe.core.cluster import Cluster, Node

Allocation = tuple[tuple[int, int], ...]
"""GPUs granted to a job: ``((node_index, gpus), ...)``."""


class GpuInventory:
    """Free GPU counts per node and per GPU type, with an undo log for trial allocations."""

    def __init__(self, cluster: Cluster) -> None:
        self.nodes: tuple[Node, ...] = cluster.nodes
        self.free: list[int] = [n.gpus for n in cluster.nodes]
        self.node_type: list[str] = [n.gpu_type.name for n in cluster.nodes]
        self.types: tuple[str, ...] = tuple(dict.fromkeys(self.node_type))
        self.total_by_type: dict[str, int] = dict.fromkeys(self.types, 0)
        self.free_by_type: dict[str, int] = dict.fromkeys(self.types, 0)
        self._index: dict[str, SortedList] = {t: SortedList() for t in self.types}
        for n in cluster.nodes:
            self.total_by_type[n.gpu_type.name] += n.gpus
            self.free_by_type[n.gpu_type.name] += n.gpus
            self._index[n.gpu_type.name].add((n.gpus, n.index))
        self.total_free = sum(self.free)
        self.largest_pool = max(self.total_by_type.values(), default=0)
        self._undo: list[tuple[tuple[int, int], ...]] = []

    # -- queries ---------------------------------------------------------------------------
    def free_gpus(self, gpu_type: str | None = None) -> int:
        """Free GPUs of one type, or of all types when ``gpu_type`` is None."""
        if gpu_type is None:
            return self.total_free
        return self.free_by_type.get(gpu_type, 0)

    def best_fit_node(self, gpu_type: str, gpus: int) -> int | None:
        """The node of ``gpu_type`` with the fewest free GPUs that still holds ``gpus`` (lowest index on ties)."""
        index = self._index[gpu_type]
        pos = index.bisect_left((gpus, -1))
        if pos == len(index):
            return None
        return int(index[pos][1])

    def nodes_by_free_desc(self, gpu_type: str) -> Iterator[tuple[int, int]]:
        """``(free, node_index)`` from the emptiest node down (most free GPUs first)."""
        found: Iterator[tuple[int, int]] = reversed(self._index[gpu_type])
        return found

    # -- mutation ----------------------------------------------------------------------------
    def allocate(self, alloc: Allocation) -> None:
        """Take GPUs; raises ValueError if a node lacks them (nothing changes then)."""
        for node, gpus in alloc:
            if gpus < 1 or self.free[node] < gpus:
                raise ValueError(f"node {self.nodes[node].name}: {gpus} GPUs asked, {self.free[node]} free")
        for node, gpus in alloc:
            self._change(node, -gpus)
        self._undo.append(alloc)

    def release(self, alloc: Allocation) -> None:
        """Give GPUs back."""
        for node, gpus in alloc:
            if self.free[node] + gpus > self.nodes[node].gpus:
                raise ValueError(f"node {self.nodes[node].name}: releasing {gpus} GPUs exceeds its size")
        for node, gpus in alloc:
            self._change(node, gpus)
        self._undo.append(tuple((node, -gpus) for node, gpus in alloc))

    def mark(self) -> int:
        """A point in the undo log to roll back to."""
        return len(self._undo)

    def rollback_to(self, mark: int) -> None:
        """Undo every allocate/release made after ``mark``."""
        while len(self._undo) > mark:
            for node, gpus in self._undo.pop():
                self._change(node, gpus)

    def commit(self) -> None:
        """Forget the undo log (what was done stays done)."""
        self._undo.clear()

    def _change(self, node: int, delta: int) -> None:
        old = self.free[node]
        new = old + delta
        index = self._index[self.node_type[node]]
        if old:
            index.remove((old, node))
        if new:
            index.add((new, node))
        self.free[node] = new
        self.free_by_type[self.node_type[node]] += delta
        self.total_free += delta

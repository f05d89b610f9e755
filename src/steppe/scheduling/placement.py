"""Gang placement: all of a job's GPUs, in one pool (one site's GPUs of one type), on the fewest
nodes, or nothing.

Filter -> score -> select:

1. *Filter* pools: those of the job's requested type, or every pool, at the sites the job may
   use (its admission checks say which: residency, its approval, engines that answer; every
   site when nothing restricts it); drop pools with fewer free GPUs than the job needs.
2. *Score* each pool by a packing: if one node can hold the job, the best-fit node (fewest
   free GPUs that still suffice, keeping emptier nodes for large jobs); otherwise the nodes
   with the most free GPUs first, and the remainder best-fit. Fewer nodes score better, then
   fewer GPUs left free on the chosen nodes.
3. *Select* the best-scoring pool's packing (cluster order breaks ties).

Example: free GPUs per node ``[8, 3, 2]``, a 2-GPU job goes to node 2 (exact fit); a 10-GPU
job takes node 0 (8) and node 2 (2). In a hub at Astana and Almaty, a job whose data may be
processed only in Almaty is placed among Almaty's pools alone.
"""

from __future__ import annotations

from collections.abc import Collection

from steppe.core.inventory import Allocation, InventoryView


def candidate_pools(
    inv: InventoryView, gpu_type: str | None, sites: Collection[str] | None = None
) -> tuple[str, ...]:
    """The pools a job may use: those of its requested type (or all), at ``sites`` (None: any site).

    >>> from steppe.core.cluster import Cluster
    >>> from steppe.core.inventory import GpuInventory
    >>> candidate_pools(GpuInventory(Cluster.uniform(1, 8, "H100")), "H100"), candidate_pools(
    ...     GpuInventory(Cluster.uniform(1, 8, "H100")), "A100")
    (('H100',), ())
    """
    pools = inv.pools_of.get(gpu_type, ())
    if sites is None:
        return pools
    site_of = inv.pool_site
    return tuple(p for p in pools if site_of[p] in sites)


def place(
    inv: InventoryView, gpus: int, gpu_type: str | None, sites: Collection[str] | None = None
) -> Allocation | None:
    """Choose GPUs for a job, or None if its gang does not fit now."""
    pools = inv.pools_of.get(gpu_type, ()) if sites is None else candidate_pools(inv, gpu_type, sites)
    if len(pools) == 1:  # one candidate pool (a one-type fleet, or a requested type at one site): as place_in
        t = pools[0]
        if inv.free_by_pool[t] < gpus:
            return None
        node = inv.best_fit_node(t, gpus)
        return ((node, gpus),) if node is not None else _pack(inv, t, gpus)
    best: Allocation | None = None
    best_score: tuple[int, int] | None = None
    for t in pools:
        if inv.free_by_pool[t] < gpus:
            continue
        alloc = _pack(inv, t, gpus)
        score = (len(alloc), sum(inv.free_on(n) - g for n, g in alloc))
        if best_score is None or score < best_score:
            best, best_score = alloc, score
            if score[0] == 1 and score[1] == 0:
                break
    return best


def place_in(inv: InventoryView, pool: str, gpus: int) -> Allocation | None:
    """Choose GPUs for a job in one pool, or None if its gang does not fit there now."""
    if inv.free_by_pool[pool] < gpus:
        return None
    node = inv.best_fit_node(pool, gpus)
    return ((node, gpus),) if node is not None else _pack(inv, pool, gpus)


def _pack(inv: InventoryView, pool: str, gpus: int) -> Allocation:
    node = inv.best_fit_node(pool, gpus)
    if node is not None:
        return ((node, gpus),)
    picks: list[tuple[int, int]] = []
    used: set[int] = set()
    need = gpus
    for free, node_index in inv.nodes_by_free_desc(pool):
        if need <= 0:
            break
        if free >= need:
            break
        picks.append((node_index, free))
        used.add(node_index)
        need -= free
    if need > 0:
        node = inv.best_fit_node(pool, need)
        if node is None or node in used:  # cannot happen when free_by_pool >= gpus; kept for safety
            node = next(n for f, n in inv.nodes_by_free_desc(pool) if n not in used and f >= need)
        picks.append((node, need))
    return tuple(picks)


def fits_ever(inv: InventoryView, gpus: int, gpu_type: str | None) -> bool:
    """True when the fleet, empty, could hold the job (its gang spans nodes of one pool)."""
    return gpus <= inv.largest_of.get(gpu_type, 0)

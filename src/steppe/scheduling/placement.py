"""Gang placement: all of a job's GPUs, of one type, on the fewest nodes, or nothing.

Filter -> score -> select:

1. *Filter* GPU types: the job's requested type, or every type in the fleet; drop types with
   fewer free GPUs than the job needs.
2. *Score* each type by a packing: if one node can hold the job, the best-fit node (fewest
   free GPUs that still suffice, keeping emptier nodes for large jobs); otherwise the nodes
   with the most free GPUs first, and the remainder best-fit. Fewer nodes score better, then
   fewer GPUs left free on the chosen nodes.
3. *Select* the best-scoring type's packing (cluster order breaks ties).

Example: free GPUs per node ``[8, 3, 2]``, a 2-GPU job goes to node 2 (exact fit); a 10-GPU
job takes node 0 (8) and node 2 (2).
"""

from __future__ import annotations

from steppe.core.inventory import Allocation, InventoryView


def candidate_types(inv: InventoryView, gpu_type: str | None) -> tuple[str, ...]:
    """The GPU types a job may use (requested one, or all the fleet has)."""
    if gpu_type is None:
        return inv.types
    return (gpu_type,) if gpu_type in inv.total_by_type else ()


def place(inv: InventoryView, gpus: int, gpu_type: str | None) -> Allocation | None:
    """Choose GPUs for a job, or None if its gang does not fit now."""
    types = candidate_types(inv, gpu_type)
    if len(types) == 1:  # one candidate type (a one-type fleet, or a requested type): its packing
        t = types[0]
        if inv.free_by_type[t] < gpus:
            return None
        node = inv.best_fit_node(t, gpus)
        return ((node, gpus),) if node is not None else _pack(inv, t, gpus)
    best: Allocation | None = None
    best_score: tuple[int, int] | None = None
    for t in types:
        if inv.free_by_type[t] < gpus:
            continue
        alloc = _pack(inv, t, gpus)
        score = (len(alloc), sum(inv.free_on(n) - g for n, g in alloc))
        if best_score is None or score < best_score:
            best, best_score = alloc, score
            if score[0] == 1 and score[1] == 0:
                break
    return best


def _pack(inv: InventoryView, gpu_type: str, gpus: int) -> Allocation:
    node = inv.best_fit_node(gpu_type, gpus)
    if node is not None:
        return ((node, gpus),)
    picks: list[tuple[int, int]] = []
    used: set[int] = set()
    need = gpus
    for free, node_index in inv.nodes_by_free_desc(gpu_type):
        if need <= 0:
            break
        if free >= need:
            break
        picks.append((node_index, free))
        used.add(node_index)
        need -= free
    if need > 0:
        node = inv.best_fit_node(gpu_type, need)
        if node is None or node in used:  # cannot happen when free_by_type >= gpus; kept for safety
            node = next(n for f, n in inv.nodes_by_free_desc(gpu_type) if n not in used and f >= need)
        picks.append((node, need))
    return tuple(picks)


def fits_ever(inv: InventoryView, gpus: int, gpu_type: str | None) -> bool:
    """True when the fleet, empty, could hold the job (its gang spans nodes of one type)."""
    if gpu_type is None:
        return gpus <= inv.largest_pool
    return gpus <= inv.total_by_type.get(gpu_type, 0)

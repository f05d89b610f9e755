"""The hub's fleet and tenancy: nodes of GPUs, tenants with fair-share weights and quotas, QOS.

>>> c = Cluster.uniform(2, 8, "H100")
>>> c.total_gpus, [n.name for n in c.nodes]
(16, ['node001', 'node002'])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from steppe.core.gpu import GpuType, gpu_type


@dataclass(frozen=True, slots=True)
class Node:
    """One server: ``gpus`` GPUs of one type. ``index`` is its position in the cluster."""

    index: int
    name: str
    gpu_type: GpuType
    gpus: int
    host_power_w: float = 0.0


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """An organisation sharing the hub: fair-share weight and optional concurrent-GPU quota."""

    name: str
    weight: float = 1.0
    gpu_quota: int | None = None


@dataclass(frozen=True, slots=True)
class QosSpec:
    """A quality-of-service class: priority boost; latency-critical classes are never power-capped."""

    name: str
    priority: float = 0.0
    latency_critical: bool = False


DEFAULT_QOS = {"normal": QosSpec("normal")}


@dataclass(frozen=True)
class Cluster:
    """Nodes, tenants and QOS classes. Unknown tenants get weight 1 and no quota."""

    name: str
    nodes: tuple[Node, ...]
    tenants: dict[str, TenantSpec] = field(default_factory=dict)
    qos: dict[str, QosSpec] = field(default_factory=lambda: dict(DEFAULT_QOS))

    @property
    def total_gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)

    @property
    def gpus_by_type(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for n in self.nodes:
            counts[n.gpu_type.name] += n.gpus
        return dict(counts)

    @property
    def max_gpus_per_node(self) -> dict[str, int]:
        best: dict[str, int] = {}
        for n in self.nodes:
            best[n.gpu_type.name] = max(best.get(n.gpu_type.name, 0), n.gpus)
        return best

    def tenant(self, name: str) -> TenantSpec:
        return self.tenants.get(name) or TenantSpec(name)

    def qos_of(self, name: str) -> QosSpec:
        return self.qos.get(name) or QosSpec(name)

    def with_tenants(self, tenants: dict[str, TenantSpec]) -> Cluster:
        """A copy with extra tenants (those already declared win)."""
        merged = dict(tenants)
        merged.update(self.tenants)
        return Cluster(self.name, self.nodes, merged, self.qos)

    @staticmethod
    def uniform(nodes: int, gpus_per_node: int, type_name: str, name: str = "", host_power_w: float = 0.0) -> Cluster:
        """``nodes`` identical nodes, named ``node001``..."""
        gtype = gpu_type(type_name)
        width = max(3, len(str(nodes)))
        built = tuple(Node(i, f"node{i + 1:0{width}d}", gtype, gpus_per_node, host_power_w) for i in range(nodes))
        return Cluster(name or f"{nodes}x{gpus_per_node}:{gtype.name}", built)

"""The hub's fleet and tenancy: nodes of GPUs at sites, tenants with fair-share weights and quotas, QOS.

A hub runs at one site or at several (Astana, Almaty, a partner site). Every node belongs to one
site (``Node.site``; ``""`` in a one-site hub, which names no site); the scheduler sees the fleet
as **pools**, one per site and GPU type, and places a job's gang inside one pool, so a job runs on
one site. A one-site hub's pools are its GPU types (pool ``"H100"``); a several-site hub's are
``site/TYPE`` (``"astana/H100"``).

>>> c = Cluster.uniform(2, 8, "H100")
>>> c.total_gpus, [n.name for n in c.nodes], c.pools
(16, ['node001', 'node002'], {'H100': 16})
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
    site: str = ""

    @property
    def pool(self) -> str:
        """The pool the node's GPUs belong to: its GPU type, prefixed by its site in a several-site hub."""
        return pool_name(self.site, self.gpu_type.name)


def pool_name(site: str, gpu_type: str) -> str:
    """``"astana/H100"``, or ``"H100"`` for a node of a hub that names no site.

    >>> pool_name("astana", "H100"), pool_name("", "H100")
    ('astana/H100', 'H100')
    """
    return f"{site}/{gpu_type}" if site else gpu_type


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """One site of a several-site hub, as its configuration declares it.

    ``site_file`` names its energy and network facts (a bundled site such as ``astana``, or a TOML
    path; ``energy/site.py``), ``executor`` the engine that runs its jobs (``local``, ``slurm``,
    ``ray``, ``mock``) with its ``options`` (the ``--executor-opt`` keys), and ``power_cap_w`` an
    optional facility cap that replaces the site file's base cap. With ``gpus_from_engine`` the
    site's nodes are not declared: the live hub reads them from its engine at start.
    """

    name: str
    site_file: str
    executor: str = "local"
    options: tuple[tuple[str, str], ...] = ()
    power_cap_w: float | None = None
    gpus_from_engine: bool = False


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
    sites: dict[str, SiteSpec] = field(default_factory=dict)

    @property
    def site_names(self) -> tuple[str, ...]:
        """The sites the nodes are at, in the order they first appear (empty for a one-site hub)."""
        return tuple(dict.fromkeys(n.site for n in self.nodes if n.site))

    @property
    def pools(self) -> dict[str, int]:
        """GPUs per pool (site x GPU type), in node order."""
        counts: Counter[str] = Counter()
        for n in self.nodes:
            counts[n.pool] += n.gpus
        return dict(counts)

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
        return Cluster(self.name, self.nodes, merged, self.qos, self.sites)

    @staticmethod
    def uniform(nodes: int, gpus_per_node: int, type_name: str, name: str = "", host_power_w: float = 0.0) -> Cluster:
        """``nodes`` identical nodes, named ``node001``..."""
        gtype = gpu_type(type_name)
        width = max(3, len(str(nodes)))
        built = tuple(Node(i, f"node{i + 1:0{width}d}", gtype, gpus_per_node, host_power_w) for i in range(nodes))
        return Cluster(name or f"{nodes}x{gpus_per_node}:{gtype.name}", built)

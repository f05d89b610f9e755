"""The fleet the live hub schedules: this machine's GPUs (NVML), declared GPUs, or a cluster file.

* ``--cluster FILE|NODESxGPUS:TYPE``: the nodes the file declares (the local executor runs
  every node's jobs on this machine, each node's GPUs numbered from 0);
* ``--gpus N [--gpu-type T]``: one node named after this host with N GPUs of type T (for
  machines without GPUs, and for tests);
* ``--gpus-from-engine``: the nodes a Slurm or Ray engine reports (``Executor.inventory()``,
  read once at start by ``app/bootstrap.py``): ``engine_nodes`` names each node as the engine
  does and types its GPUs from the engine's name for them (``h200`` -> ``H200``; untyped:
  ``--gpu-type``);
* otherwise NVML: one node per GPU model found, with the NVML device indices.

>>> nvml_type_name("NVIDIA H200"), nvml_type_name("NVIDIA GB200"), nvml_type_name("Tesla T4")
('H200', 'GB200', 'T4')
>>> seen = Inventory({"gpu02": (0, 1), "gpu01": (0, 1, 2, 3), "login": ()}, types={"gpu01": "h100"})
>>> [(n.index, n.name, n.gpu_type.name, n.gpus) for n in engine_nodes(seen, "H200", first_index=5)[0]]
[(5, 'gpu01', 'H100', 4), (6, 'gpu02', 'H200', 2)]
"""

from __future__ import annotations

import socket
from collections import defaultdict
from dataclasses import dataclass

from steppe.core.cluster import Cluster, Node
from steppe.core.cluster_config import load_cluster
from steppe.core.errors import ConfigError
from steppe.core.gpu import GPU_TYPES, gpu_type
from steppe.executors.base import Inventory
from steppe.executors.local import GpuDevice, discover_gpus


@dataclass(frozen=True)
class Fleet:
    """A cluster plus, per node index, the device indices its jobs see in ``CUDA_VISIBLE_DEVICES``."""

    cluster: Cluster
    devices: dict[int, list[int]]
    source: str

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.cluster.nodes]


def nvml_type_name(device_name: str) -> str:
    """Map an NVML product name to a known GPU type (longest match wins), else ``GENERIC``."""
    upper = device_name.upper()
    for name in sorted(GPU_TYPES, key=len, reverse=True):
        if name != "GENERIC" and name in upper:
            return name
    return "GENERIC"


def build_fleet(cluster: str | None = None, gpus: int | None = None, gpu_type_name: str = "GENERIC") -> Fleet:
    """The fleet from a cluster file, a declared GPU count, or NVML (in that order)."""
    host = socket.gethostname().split(".")[0] or "localhost"
    if cluster is not None:
        c = load_cluster(cluster)
        return Fleet(c, {n.index: list(range(n.gpus)) for n in c.nodes}, f"cluster {cluster}")
    if gpus is not None:
        if gpus < 1:
            raise ConfigError("--gpus", "", "must be at least 1")
        node = Node(0, host, gpu_type(gpu_type_name), gpus)
        return Fleet(Cluster(host, (node,)), {0: list(range(gpus))}, f"declared {gpus} x {node.gpu_type.name}")
    found = discover_gpus()
    if not found:
        raise ConfigError(
            "GPU inventory", "", "NVML found no GPUs; declare them with --gpus N [--gpu-type T] or --cluster FILE"
        )
    return fleet_from_devices(host, found)


def engine_nodes(
    seen: Inventory, default_type: str, site: str = "", first_index: int = 0
) -> tuple[list[Node], dict[int, list[int]]]:
    """The nodes with GPUs an engine reports (by name), numbered from ``first_index``, at ``site``,
    and their device indices; a GPU type the engine does not name, or one Steppe does not know, is
    ``default_type``."""
    nodes: list[Node] = []
    devices: dict[int, list[int]] = {}
    for name in sorted(n for n, ids in seen.gpus.items() if ids):
        engine_type = nvml_type_name(seen.types.get(name, "")) if seen.types.get(name) else "GENERIC"
        index = first_index + len(nodes)
        kind = gpu_type(engine_type if engine_type != "GENERIC" else default_type)
        nodes.append(Node(index, name, kind, len(seen.gpus[name]), site=site))
        devices[index] = list(seen.gpus[name])
    return nodes, devices


def fleet_from_engine(engine: str, seen: Inventory, default_type: str) -> Fleet:
    """The fleet of one engine's nodes (``steppe serve --gpus-from-engine``)."""
    nodes, devices = engine_nodes(seen, default_type)
    if not nodes:
        raise ConfigError("--gpus-from-engine", "", f"the {engine} engine reports no node with GPUs")
    by_type: dict[str, int] = defaultdict(int)
    for node in nodes:
        by_type[node.gpu_type.name] += node.gpus
    models = ", ".join(f"{v} x {k}" for k, v in sorted(by_type.items()))
    return Fleet(Cluster(engine, tuple(nodes)), devices, f"{engine}: {len(nodes)} nodes, {models}")


def fleet_from_devices(host: str, found: list[GpuDevice]) -> Fleet:
    """One node per GPU model among ``found``."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for dev in found:
        by_type[nvml_type_name(dev.name)].append(dev.index)
    nodes = []
    devices = {}
    for i, (tname, ids) in enumerate(sorted(by_type.items())):
        name = host if len(by_type) == 1 else f"{host}-{tname.lower()}"
        nodes.append(Node(i, name, gpu_type(tname), len(ids)))
        devices[i] = ids
    models = ", ".join(f"{len(v)} x {k}" for k, v in sorted(by_type.items()))
    return Fleet(Cluster(host, tuple(nodes)), devices, f"NVML: {models}")

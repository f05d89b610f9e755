"""The fleet the live hub schedules: this machine's GPUs (NVML), declared GPUs, or a cluster file.

* ``--cluster FILE|NODESxGPUS:TYPE``: the nodes the file declares (the local executor runs
  every node's jobs on this machine, each node's GPUs numbered from 0);
* ``--gpus N [--gpu-type T]``: one node named after this host with N GPUs of type T (for
  machines without GPUs, and for tests);
* otherwise NVML: one node per GPU model found, with the NVML device indices.

>>> nvml_type_name("NVIDIA H200"), nvml_type_name("NVIDIA GB200"), nvml_type_name("Tesla T4")
('H200', 'GB200', 'T4')
"""

from __future__ import annotations

import socket
from collections import defaultdict
from dataclasses import dataclass

from steppe.core.cluster import Cluster, Node
from steppe.core.cluster_config import load_cluster
from steppe.core.errors import ConfigError
from steppe.core.gpu import GPU_TYPES, gpu_type
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

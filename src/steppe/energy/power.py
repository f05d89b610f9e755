"""GPU, job and node power: the simulator model of hub-facts section 1 ("Suggested simulator model").

Per GPU, with utilisation ``u``, workload factor ``k_wl`` and cap ``c`` (fraction of TDP)::

    P_dyn_max(u) = P_idle + u * (k_wl * TDP - P_idle)
    P_gpu(u, c)  = P_idle + (min(c * TDP, P_dyn_max(u)) - P_idle)  =  min(c * TDP, P_dyn_max(u))

``k_wl * TDP`` is what a fully busy GPU of that workload draws; ``u`` scales between idle and that.
Default ``(k_wl, u)`` per ``WorkloadClass`` (see ``WORKLOAD_PROFILES`` for the sources):

* training ``(0.80, 0.97)``; inference ``(0.35, 1.0)`` (decode-heavy); interactive ``(0.80, 0.16)``.

Worked example, H200 (TDP 700 W, idle 80.3 W) training: ``80.3 + 0.97 * (0.8 * 700 - 80.3)``:

>>> from steppe.core.gpu import gpu_type
>>> h200 = gpu_type("H200")
>>> round(job_gpu_power_w(h200, WorkloadClass.TRAINING), 1)
545.6
>>> job_gpu_power_w(h200, WorkloadClass.TRAINING, cap_fraction=0.7)   # the cap binds: 0.7 * 700
490.0
>>> round(job_gpu_power_w(h200, WorkloadClass.INFERENCE), 1)           # decode: below any cap
245.0
>>> round(job_power_w(h200, 16, WorkloadClass.TRAINING) / 1e3, 2)      # 16 GPUs, kW
8.73

A node adds host power (CPUs, memory, NICs, fans): 18 % of the 8-GPU node envelope, from the
8.4 kW measured peak of a 10.2 kW 8 x H100 node (``10.2 kW * (1 - 0.82)``), scaled per GPU:

>>> host_power_w(h200, 8), host_power_w(h200, 4)
(1836.0, 918.0)
>>> round(node_idle_power_w(h200, 8), 1)                               # 8 * 80.3 + 1836
2478.4

``power_cdf_stats`` reads a measured power CDF (AcmeTrace, A100 clusters) to check the model against
it; see its docstring for what is compared.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from steppe.core.errors import ConfigError
from steppe.core.gpu import GpuType
from steppe.core.job import WorkloadClass
from steppe.energy.capping import binding_slowdown_factor, capped_power_w


@dataclass(frozen=True, slots=True)
class WorkloadProfile:
    """How hard a workload drives a GPU: ``k_wl`` (busy draw / TDP) and default utilisation ``u``."""

    k_wl: float
    utilization: float
    source: str


WORKLOAD_PROFILES: dict[WorkloadClass, WorkloadProfile] = {
    WorkloadClass.TRAINING: WorkloadProfile(
        0.80,  # hub-facts 1: k_wl 0.75-0.85 for training (midpoint); node training mean 0.76 x 10.2 kW (0.1)
        0.97,  # acme-power README: GPU-util medians 97 % (Kalos) / 99 % (Seren) on LLM training clusters
        "hub-facts 1 k_wl training 0.75-0.85; AcmeTrace util medians 97-99 %",
    ),
    WorkloadClass.INFERENCE: WorkloadProfile(
        0.35,  # hub-facts 1: k_wl 0.2-0.45 decode-heavy; H200 decode 137-300 W = 20-43 % TDP (0.1)
        1.0,  # the decode measurement is already the draw while serving, so u is folded into k_wl
        "hub-facts 0.1 gpu.h200.decode_power 20-43 % TDP; hub-facts 1 k_wl 0.2-0.45",
    ),
    WorkloadClass.INTERACTIVE: WorkloadProfile(
        0.80,  # when it computes, a notebook runs training-like kernels (hub-facts 1 training k_wl)
        0.16,  # D: mean GPU util of the PAI CDF (acme-power gpu_util_cdf_pai.csv, median ~4 %), mostly idle
        "hub-facts 1 k_wl training; AcmeTrace PAI GPU-util CDF mean 16 %",
    ),
}

HOST_FRACTION_OF_NODE_MAX = 1.0 - 0.82  # hub-facts 0.1 node.hgx_h100.measured_peak 8.4 kW = 82 % of 10.2 kW
GPUS_PER_REFERENCE_NODE = 8
# 8-GPU node envelopes (max), hub-facts 0.1: node.dgx_a100.max, node.dgx_h100/h200.max, node.dgx_b200.max
NODE_MAX_W_8GPU: dict[str, float] = {"A100": 6500.0, "H100": 10200.0, "H200": 10200.0, "B200": 14300.0}
# Other GPU types: 8-GPU envelope per watt of one GPU's TDP, from DGX H100 (10.2 kW for 700 W GPUs; D)
NODE_MAX_W_PER_GPU_TDP_W = 10200.0 / 700.0


def _profile(workload: WorkloadClass) -> WorkloadProfile:
    return WORKLOAD_PROFILES[WorkloadClass(workload)]


def gpu_power_w(gpu: GpuType, utilization: float, k_wl: float, cap_fraction: float = 1.0) -> float:
    """Board power of one GPU at utilisation ``u`` in [0, 1] with workload factor ``k_wl`` under cap ``c``."""
    if not 0.0 <= utilization <= 1.0:
        raise ValueError(f"utilization must be in [0, 1], got {utilization!r}")
    if not 0.0 < k_wl <= 1.0:
        raise ValueError(f"k_wl must be in (0, 1], got {k_wl!r}")
    p_dyn_max_w = gpu.idle_w + utilization * max(k_wl * gpu.tdp_w - gpu.idle_w, 0.0)
    return capped_power_w(p_dyn_max_w, gpu.tdp_w, cap_fraction)


def job_gpu_power_w(
    gpu: GpuType,
    workload: WorkloadClass,
    cap_fraction: float = 1.0,
    *,
    utilization: float | None = None,
) -> float:
    """Power of one GPU running a job of ``workload`` (default utilisation of the class unless given)."""
    prof = _profile(workload)
    u = prof.utilization if utilization is None else utilization
    return gpu_power_w(gpu, u, prof.k_wl, cap_fraction)


def job_power_w(
    gpu: GpuType,
    gpus: int,
    workload: WorkloadClass,
    cap_fraction: float = 1.0,
    *,
    utilization: float | None = None,
) -> float:
    """GPU power of a whole job: ``gpus`` x per-GPU power (host power is per node, see ``host_power_w``)."""
    if gpus < 0:
        raise ValueError(f"gpus must be >= 0, got {gpus!r}")
    return gpus * job_gpu_power_w(gpu, workload, cap_fraction, utilization=utilization)


def job_slowdown_factor(gpu: GpuType, workload: WorkloadClass, cap_fraction: float = 1.0) -> float:
    """Run-time multiplier of a job under the cap: 1.0 where the cap does not bind (e.g. decode)."""
    uncapped_w = job_gpu_power_w(gpu, workload, 1.0)
    return binding_slowdown_factor(uncapped_w, gpu.tdp_w, cap_fraction)


def host_power_w(gpu: GpuType, gpus_per_node: int = GPUS_PER_REFERENCE_NODE) -> float:
    """Host (non-GPU) power of a node with ``gpus_per_node`` GPUs of type ``gpu``, drawn whenever it is on."""
    if gpus_per_node < 1:
        raise ValueError(f"gpus_per_node must be >= 1, got {gpus_per_node!r}")
    node_max_w = NODE_MAX_W_8GPU.get(gpu.name, NODE_MAX_W_PER_GPU_TDP_W * gpu.tdp_w)
    per_gpu_w = node_max_w * HOST_FRACTION_OF_NODE_MAX / GPUS_PER_REFERENCE_NODE
    return round(per_gpu_w * gpus_per_node, 6)


def node_idle_power_w(gpu: GpuType, gpus_per_node: int = GPUS_PER_REFERENCE_NODE) -> float:
    """Power of a powered-on node with all GPUs idle: ``n * idle_w + host_power_w`` (host constant)."""
    return gpus_per_node * gpu.idle_w + host_power_w(gpu, gpus_per_node)


@dataclass(frozen=True, slots=True)
class PowerCdfStats:
    """Summary of a measured power CDF, in watts. ``busy_half_mean_w`` is the mean above the median."""

    mean_w: float
    median_w: float
    p10_w: float
    p90_w: float
    p95_w: float
    min_w: float
    max_w: float
    busy_half_mean_w: float


def load_power_cdf(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``<power>,cdf_pct`` CSV (AcmeTrace conversion): power values (W) and CDF in [0, 1]."""
    p = Path(path)
    xs: list[float] = []
    ys: list[float] = []
    with p.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or len(header) != 2 or header[1].strip() != "cdf_pct":
            raise ConfigError(f"{p}:1", "header", f"expected '<power column>,cdf_pct', got {header!r}")
        for line, row in enumerate(reader, start=2):
            try:
                x, y = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                raise ConfigError(f"{p}:{line}", "row", f"expected two numbers, got {row!r}") from None
            xs.append(x)
            ys.append(y / 100.0)
    x_arr, y_arr = np.asarray(xs), np.asarray(ys)
    if len(x_arr) < 2 or np.any(np.diff(x_arr) < 0) or np.any(np.diff(y_arr) < 0):
        raise ConfigError(str(p), "cdf_pct", "need at least two rows, both columns non-decreasing")
    return x_arr, y_arr


def power_cdf_stats(path: str | Path) -> PowerCdfStats:
    """Mean, median and quantiles of a measured GPU (or server) power CDF.

    What the model is compared with, and why: AcmeTrace samples every GPU of two A100 LLM clusters
    (Seren, Kalos) every 15 s, so the CDF mixes idle, evaluation and training time (median ~100 W,
    p90 ~400 W = TDP). The model's training draw (~312 W for A100) is a *busy* figure, so it must
    lie between the median and the p95, near the mean of the busy half (264 W Seren, 308 W Kalos);
    the model's idle draw must lie at or below the low quantiles.
    """
    x, y = load_power_cdf(path)
    dy = np.diff(y)
    mid = (x[1:] + x[:-1]) / 2.0
    mass = float(dy.sum())
    mean_w = float(np.sum(mid * dy) / mass)
    busy = y[1:] > 0.5
    busy_half_mean_w = float(np.sum(mid[busy] * dy[busy]) / np.sum(dy[busy]))

    def q(p: float) -> float:
        return float(np.interp(p, y, x))

    return PowerCdfStats(
        mean_w=mean_w,
        median_w=q(0.5),
        p10_w=q(0.1),
        p90_w=q(0.9),
        p95_w=q(0.95),
        min_w=float(x[0]),
        max_w=float(x[-1]),
        busy_half_mean_w=busy_half_mean_w,
    )

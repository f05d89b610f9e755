"""GPU types known to the hub, with memory, board power (TDP) and idle power.

Values come from ``reference/hub-facts.md`` section 0.1 (SXM parts unless noted). Idle power
uses the measured H200 figure (80.3 W, 11.5 % of TDP) and, where no part-specific measurement
exists, the default idle fraction of 0.115 x TDP derived there (range 0.10-0.15).

>>> GPU_TYPES["H100"].tdp_w
700.0
>>> gpu_type("h200").memory_gb
141.0
"""

from __future__ import annotations

from dataclasses import dataclass

from steppe.core.errors import UnknownNameError

IDLE_FRACTION_DEFAULT = 0.115  # hub-facts 0.1 gpu.idle_fraction_default (0.10-0.15), H200 measured 11.5 %


@dataclass(frozen=True, slots=True)
class GpuType:
    """A GPU model: name, memory and power envelope."""

    name: str
    memory_gb: float
    tdp_w: float
    idle_w: float
    source: str = ""


def _gpu(name: str, memory_gb: float, tdp_w: float, source: str, idle_w: float | None = None) -> GpuType:
    return GpuType(name, memory_gb, tdp_w, idle_w if idle_w is not None else tdp_w * IDLE_FRACTION_DEFAULT, source)


GPU_TYPES: dict[str, GpuType] = {
    g.name: g
    for g in (
        _gpu("A100", 80.0, 400.0, "hub-facts 0.1 gpu.a100_sxm.tdp"),
        _gpu("H100", 80.0, 700.0, "hub-facts 0.1 gpu.h100_sxm.tdp"),
        _gpu("H200", 141.0, 700.0, "hub-facts 0.1 gpu.h200_sxm.tdp; idle measured 80.3 W", idle_w=80.3),
        _gpu("B200", 180.0, 1000.0, "hub-facts 0.1 gpu.b200.tdp"),
        _gpu("GB200", 186.0, 1200.0, "hub-facts 0.1 gpu.gb200.per_gpu_power (L)"),
        _gpu("V100", 32.0, 300.0, "NVIDIA V100 SXM2 datasheet (trace GPUs)"),
        _gpu("P100", 16.0, 300.0, "NVIDIA P100 SXM2 datasheet (trace GPUs)"),
        _gpu("T4", 16.0, 70.0, "NVIDIA T4 datasheet (trace GPUs)"),
        _gpu("A10", 24.0, 150.0, "NVIDIA A10 datasheet (trace GPUs)"),
        _gpu("GENERIC", 16.0, 300.0, "placeholder for traces that name no GPU model"),
    )
}


def gpu_type(name: str) -> GpuType:
    """Look a GPU type up by name, case-insensitively; unknown names list the valid ones."""
    found = GPU_TYPES.get(name.upper())
    if found is None:
        raise UnknownNameError("GPU type", name, list(GPU_TYPES))
    return found

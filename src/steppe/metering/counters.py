"""GPU energy counters: the hardware's own tally of the energy a job's GPUs drew.

``GpuEnergyCounter`` is the one small protocol the meter reads: ``read_mj(job_id)``, the sum of
the energy counters (millijoules since the driver loaded) of the GPUs the job holds now, or None
when they cannot be read (no driver, a GPU without the counter, a job whose devices are not
known yet). The meter reads it when a segment opens and when it closes; the difference is the
segment's IT energy. Example: counters at 1,000,000 mJ and then 4,600,000 mJ over 10 s ->
3,600 J, 1e-3 kWh (360 W on average).

``NvmlEnergyCounter`` reads ``nvmlDeviceGetTotalEnergyConsumption`` through ``pynvml`` (the
``nvidia-ml-py`` package) for the NVML device indices ``devices_of(job_id)`` names;
``open_nvml_counter`` returns one only where NVML starts and every device has the counter
(Volta and later), else None and the meter uses the power model.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

NVIDIA_CTL = "/dev/nvidiactl"
DevicesOf = Callable[[int], Sequence[int] | None]
"""``devices_of(job_id)``: the NVML indices of the GPUs a job holds, or None if not known (yet)."""


class GpuEnergyCounter(Protocol):
    """Reads the energy counters of a job's GPUs."""

    def read_mj(self, job_id: int) -> float | None: ...


class NvmlEnergyCounter:
    """``GpuEnergyCounter`` over NVML (see the module docstring); ``nvml`` is the ``pynvml`` module."""

    def __init__(self, nvml: Any, devices_of: DevicesOf) -> None:
        self.nvml = nvml
        self.devices_of = devices_of
        self._handles: dict[int, Any] = {}

    def read_mj(self, job_id: int) -> float | None:
        devices = self.devices_of(job_id)
        if not devices:
            return None
        total = 0.0
        try:
            for index in devices:
                handle = self._handles.get(index)
                if handle is None:
                    handle = self._handles[index] = self.nvml.nvmlDeviceGetHandleByIndex(index)
                total += float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except Exception:  # NVMLError: the counter is not supported or the GPU is gone
            return None
        return total

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already shut down
            self.nvml.nvmlShutdown()


def open_nvml_counter(devices_of: DevicesOf) -> NvmlEnergyCounter | None:
    """An NVML counter if NVML starts and every GPU reports its energy counter, else None.

    On Linux a machine without the NVIDIA driver has no ``/dev/nvidiactl``: no need to load NVML
    (it would only fail, after a tenth of a second of the hub's start-up)."""
    if sys.platform.startswith("linux") and not os.path.exists(NVIDIA_CTL):
        return None
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError: no driver
        return None
    try:
        count = pynvml.nvmlDeviceGetCount()
        for i in range(count):
            pynvml.nvmlDeviceGetTotalEnergyConsumption(pynvml.nvmlDeviceGetHandleByIndex(i))
    except Exception:  # a GPU without the counter: use the model for all
        count = 0
    if count == 0:
        pynvml.nvmlShutdown()
        return None
    return NvmlEnergyCounter(pynvml, devices_of)

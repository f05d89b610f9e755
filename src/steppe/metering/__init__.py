"""Metering for both modes: one listener (``Meter``) emits usage records to a sink.

* ``records``: ``UsageRecord`` (job, project, tenant, month, GPU type, GPU-seconds, IT and
  facility kWh, kg CO2e, KZT, energy source, first and last second);
* ``meter``: ``Meter``, the state listener that cuts runs into segments and integrates them;
* ``sinks``: the ``UsageSink`` protocol and the twin's ``MemorySink`` (the live hub's sink, which
  writes the store, is ``steppe.control.usage_sink.StoreSink``);
* ``counters``: GPU energy counters (NVML) the live meter reads where it can;
* ``periods``: accounting periods and UTC months.

Layering: below ``control`` and ``twin`` (both use it), above ``power``, ``energy`` and ``core``;
it never imports the store.
"""

from steppe.metering.counters import GpuEnergyCounter, NvmlEnergyCounter, open_nvml_counter
from steppe.metering.meter import Meter, MeterSetup
from steppe.metering.records import EnergySource, UsageRecord
from steppe.metering.sinks import MemorySink, UsageSink

__all__ = [
    "EnergySource",
    "GpuEnergyCounter",
    "MemorySink",
    "Meter",
    "MeterSetup",
    "NvmlEnergyCounter",
    "UsageRecord",
    "UsageSink",
    "open_nvml_counter",
]

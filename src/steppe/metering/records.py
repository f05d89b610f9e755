"""A usage record: what one job used in one accounting month on one GPU type, and what it cost.

The meter (``steppe.metering.meter``) emits these in both modes; a sink keeps them (memory in the
twin, the ``usage_records`` table in the live hub, where a job's records for a month add up as it
runs). Energy figures come from the site's power model, or from the GPUs' own energy counters
where NVML can read them; ``source`` says which:

* ``"model"``: IT energy from the fleet's power model (``steppe.energy.fleet``);
* ``"nvml"``: IT energy read from the GPUs' counters (``nvmlDeviceGetTotalEnergyConsumption``);
* ``"mixed"``: both, for different parts of the record's time (e.g. before and after the
  counters could be read);
* ``"none"``: no site is configured: GPU-seconds only, every energy figure 0.

Facility energy, carbon and cost always apply the site's hourly PUE, grid carbon intensity and
tariff to the IT energy. Example: 2 GPUs for an hour at 700 W each, PUE 1.1, 500 g/kWh, 30 KZT/kWh
-> 7,200 GPU-seconds, IT 1.4 kWh, facility 1.54 kWh, 0.77 kg CO2e, 46.2 KZT.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

EnergySource = Literal["model", "nvml", "mixed", "none"]
ENERGY_FIELDS = ("it_kwh", "facility_kwh", "carbon_kg", "cost_kzt")


class UsageRecord(NamedTuple):
    """One job's usage within ``[first_s, last_s)`` of one month (``period``, ``YYYY-MM`` UTC) on one GPU type.

    Times are the meter's clock (POSIX seconds live, simulated seconds in the twin); ``period``
    is the UTC month of the corresponding POSIX time. (A named tuple: the twin makes one per job
    and month, and a tuple is the cheapest immutable record to make.)
    """

    job_id: int
    project: str
    tenant: str
    period: str
    gpu_type: str
    gpu_seconds: float
    it_kwh: float
    facility_kwh: float
    carbon_kg: float
    cost_kzt: float
    source: EnergySource
    first_s: float
    last_s: float

    def row(self, project_id: int) -> dict[str, Any]:
        """The record as a ``usage_records`` row."""
        return {
            "job_id": self.job_id,
            "project_id": project_id,
            "period": self.period,
            "gpu_type": self.gpu_type,
            "gpu_seconds": self.gpu_seconds,
            "it_kwh": self.it_kwh,
            "facility_kwh": self.facility_kwh,
            "carbon_kg": self.carbon_kg,
            "cost_kzt": self.cost_kzt,
            "energy_source": self.source,
            "first_s": self.first_s,
            "last_s": self.last_s,
        }


def merged_source(a: str, b: str) -> EnergySource:
    """The source of two parts of one record: the same source, or ``"mixed"``.

    >>> merged_source("nvml", "nvml"), merged_source("model", "nvml")
    ('nvml', 'mixed')
    """
    return a if a == b else "mixed"  # type: ignore[return-value]


def merge(a: UsageRecord, b: UsageRecord) -> UsageRecord:
    """Two records of the same job, month and GPU type as one (``b`` after ``a``)."""
    return UsageRecord(
        a.job_id, a.project, a.tenant, a.period, a.gpu_type,
        a.gpu_seconds + b.gpu_seconds, a.it_kwh + b.it_kwh, a.facility_kwh + b.facility_kwh,
        a.carbon_kg + b.carbon_kg, a.cost_kzt + b.cost_kzt, merged_source(a.source, b.source),
        min(a.first_s, b.first_s), max(a.last_s, b.last_s),
    )  # fmt: skip

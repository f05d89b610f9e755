"""The submission gate: why a job could never start, decided once at submission in both modes.

A job that no state of the hub could ever run is refused when it is submitted (as Slurm
refuses it with ``sbatch: error: ...``) instead of waiting for ever. The twin's replay counts
each refusal under its ``rule``; the live API answers a 422 naming each refusal's ``field``.
Both ask the same ``SubmissionGate``, so a job is refused in one mode exactly when it is
refused in the other. The rules, in the order they are reported:

1. ``gpu_type``: the fleet has GPUs of the type asked for;
2. ``gpu_type``: the project's allocation, where it names GPU types, allows it (with several
   allowed and none asked, the job must name one; ``default_gpu_type`` picks the only one);
3. ``gpus``: at most the largest pool of the type (a gang spans nodes of one type at one site),
   or the largest pool of any type when none is asked;
4. ``gpus``: at most the allocation's ``max_gpus``;
5. ``gpus``: at most the tenant's concurrent-GPU quota (``gpu_quota``);
6. ``gpus``: the job's least power (at its lowest GPU cap, on the most frugal type it may use)
   fits under the most IT power the facility cap ever leaves for jobs (the power ceiling).

Example: on a fleet of 2 x 8 H100, a tenant with ``gpu_quota = 8`` asking for 12 H100 fits the
fleet (16) but not its quota: one refusal, ``("gpus", "12 asked, but kaznu may hold at most 8
GPUs at once (its quota)")``, counted as ``larger than its tenant's GPU quota``.

>>> from steppe.core.cluster import Cluster, TenantSpec
>>> c = Cluster.uniform(2, 8, "H100").with_tenants({"kaznu": TenantSpec("kaznu", gpu_quota=8)})
>>> [(r.field, r.rule) for r in SubmissionGate(c).refusals(12, "H100", "kaznu")]
[('gpus', "larger than its tenant's GPU quota")]
>>> SubmissionGate(c).refusals(8, None, "kaznu")
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from steppe.core.cluster import Cluster
from steppe.core.job import JobSpec, WorkloadClass
from steppe.core.records import JobRecord

if TYPE_CHECKING:
    from steppe.scheduling.power import PowerBudget

NO_POOL = "larger than any GPU pool of the requested type"
OVER_QUOTA = "larger than its tenant's GPU quota"
OVER_POWER = "needs more power than the facility cap ever allows"
OUTSIDE_ALLOCATION = "outside its allocation"


class Refusal(NamedTuple):
    """One reason a job can never start: the request ``field`` at fault, a message for the
    submitter, and the ``rule`` broken (the twin's rejection counter key)."""

    field: str
    message: str
    rule: str


@dataclass(frozen=True)
class PowerCeiling:
    """The facility's power rules and the most IT power (W) its cap ever leaves for jobs."""

    budget: PowerBudget
    ceiling_w: float


def default_gpu_type(gpu_type: str | None, allowed_types: Sequence[str] | None) -> str | None:
    """The GPU type a job gets: the one it asked for, else its allocation's only allowed type.

    >>> default_gpu_type(None, ["H100"]), default_gpu_type("A100", ["H100"]), default_gpu_type(None, None)
    ('H100', 'A100', None)
    """
    if gpu_type is None and allowed_types and len(allowed_types) == 1:
        return allowed_types[0]
    return gpu_type


class SubmissionGate:
    """The rules of the module docstring for one fleet; build once, ask per job."""

    def __init__(self, cluster: Cluster, power: PowerCeiling | None = None) -> None:
        self.cluster = cluster
        self.types = cluster.gpus_by_type
        self.largest_of: dict[str | None, int] = {}  # per GPU type (None: any type), its largest pool
        for node in cluster.nodes:
            pool_gpus = cluster.pools[node.pool]
            for key in (node.gpu_type.name, None):
                self.largest_of[key] = max(self.largest_of.get(key, 0), pool_gpus)
        self.power = power

    def refusals(
        self,
        gpus: int,
        gpu_type: str | None,
        tenant: str,
        *,
        allowed_types: Sequence[str] | None = None,
        max_gpus: int | None = None,
        project: str = "",
        qos: str = "normal",
        workload: WorkloadClass = WorkloadClass.TRAINING,
    ) -> list[Refusal]:
        """Every reason a job of ``gpus`` GPUs of ``gpu_type`` (None: any type) for ``tenant``
        could never start, in the module docstring's order; empty when it may be queued.

        ``allowed_types`` and ``max_gpus`` are the project's current allocation's limits, where
        the caller has one; ``qos`` and ``workload`` matter only to the power ceiling.
        """
        return self._refusals(gpus, gpu_type, tenant, allowed_types, max_gpus, project or tenant, qos, workload, None)

    def refusals_of(self, spec: JobSpec) -> list[Refusal]:
        """``refusals`` for a job spec (the twin's submissions)."""
        return self._refusals(spec.gpus, spec.gpu_type, spec.tenant, None, None, spec.project, spec.qos,
                              spec.workload, spec)  # fmt: skip

    def _refusals(
        self,
        gpus: int,
        gpu_type: str | None,
        tenant: str,
        allowed_types: Sequence[str] | None,
        max_gpus: int | None,
        project: str,
        qos: str,
        workload: WorkloadClass,
        spec: JobSpec | None,
    ) -> list[Refusal]:
        out: list[Refusal] = []
        types = self.types
        known = gpu_type is None or gpu_type in types
        if not known:
            have = ", ".join(sorted(types)) or "none"
            out.append(Refusal("gpu_type", f"the hub has no {gpu_type} GPUs (it has {have})", NO_POOL))
        if allowed_types:
            allowed = ", ".join(allowed_types)
            if gpu_type is None and len(allowed_types) > 1:
                out.append(Refusal("gpu_type", f"required: {project} may use only {allowed}", OUTSIDE_ALLOCATION))
            elif gpu_type is not None and gpu_type not in allowed_types:
                message = f"{project} may not use {gpu_type}; allowed: {allowed}"
                out.append(Refusal("gpu_type", message, OUTSIDE_ALLOCATION))
        if known:
            largest = self.largest_of.get(gpu_type, 0)
            if gpus > largest:
                where = f"{gpu_type} GPUs" if gpu_type else "GPUs of one type"
                if self.cluster.site_names:
                    where += " at one site"
                out.append(Refusal("gpus", f"{gpus} asked, but the hub has at most {largest} {where}", NO_POOL))
        if max_gpus is not None and gpus > max_gpus:
            message = f"{gpus} asked, but {project} may use at most {max_gpus} at once"
            out.append(Refusal("gpus", message, OUTSIDE_ALLOCATION))
        quota = self.cluster.tenant(tenant).gpu_quota  # read live: the live hub's operator may change it
        if quota is not None and gpus > quota:
            message = f"{gpus} asked, but {tenant} may hold at most {quota} GPUs at once (its quota)"
            out.append(Refusal("gpus", message, OVER_QUOTA))
        if self.power is not None and known:
            probe = spec or JobSpec(0, 0.0, gpus, 1.0, 1.0, tenant, gpu_type=gpu_type, qos=qos, workload=workload)
            least_w = self._least_power_w(self.power.budget, probe)
            if least_w > self.power.ceiling_w:
                message = (
                    f"needs at least {least_w / 1000:,.1f} kW even at its lowest GPU cap, but the facility cap "
                    f"never leaves more than {self.power.ceiling_w / 1000:,.1f} kW for jobs"
                )
                out.append(Refusal("gpus", message, OVER_POWER))
        return out

    def _least_power_w(self, budget: PowerBudget, spec: JobSpec) -> float:
        """The least power ``spec`` could run at, on the most frugal GPU type it may use."""
        probe = JobRecord(spec, 0)
        types = (spec.gpu_type,) if spec.gpu_type is not None else tuple(self.types)
        return min((budget.model.added_w(probe, t, budget.lowest_cap(probe)) for t in types), default=0.0)

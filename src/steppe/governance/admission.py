"""Governance admission checks for the scheduler: AI-use review and data residency.

Both implement ``steppe.scheduling.admission.AdmissionCheck`` and slot into a cycle's checks
next to ``FitsFleet`` and ``TenantQuota``. They hold jobs rather than refuse them at submit: a
job of a project without a current approval waits with ``AwaitingReview``, so an approval
later releases the project's jobs in their queue order, with no need to resubmit. Each check
has ``why(rec)``, the explanation to show with the job.

``ReviewCheck`` (``JobSpec.project`` is the ``org/project`` key):

* no approval, or one expired or revoked on the cycle's date -> ``AwaitingReview``;
* the job's GPU type is not allowed (or the job names none while the fleet has other types),
  or the hub's site is not allowed -> ``AwaitingReview`` (an amendment is needed);
* the approval's GPU-hour cap is used up, per the usage ledger passed in ->
  ``AssocGrpGRESMinutes``, Slurm's reason for an exhausted GPU-minute limit.

Running jobs are not checked again: expiry lets them finish; revocation's running-jobs choice
is carried out by the caller (``steppe.governance.approval.revocation_effect``).

``ResidencyCheck``: a job reading a dataset that may not be processed at this site, or may
only reach it over forbidden routes, or that is not registered, waits with ``DataResidency``.

In a hub at several sites both checks also say where a job may run (``sites_for``): the sites
whose jurisdiction and routes allow every dataset the job reads, and the sites its approval
allows; placement then looks only there (``scheduling/context.py``). A job waits with
``DataResidency`` (or ``AwaitingReview``) only when none of the hub's sites is allowed.
Jobs have no datasets field yet, so the job -> dataset names mapping is injected (the store
will provide it); ``staging(rec)`` gives each dataset's route and estimated staging time.

>>> from datetime import date
>>> from steppe.core.cluster import Cluster
>>> from steppe.core.job import JobSpec
>>> from steppe.core.records import JobRecord
>>> from steppe.core.state import HubState
>>> from steppe.scheduling.policies import make_policy
>>> from steppe.core.usage import DecayedUsage
>>> cluster, usage = Cluster.uniform(1, 8, "H200"), DecayedUsage()
>>> snap = HubState(cluster, make_policy("fifo").new_queue(cluster, usage), usage)
>>> check = ReviewCheck(lambda project: None, lambda now: date(2026, 2, 1), site="astana")
>>> check.begin_cycle(0.0)
>>> rec = JobRecord(JobSpec(1, 0.0, 8, 60.0, 60.0, tenant="kaznu", project="kaznu/kazllm"), seq=1)
>>> check.check(rec, snap, Counter()), check.why(rec)
(<PendingReason.AWAITING_REVIEW: 'AwaitingReview'>, 'project kaznu/kazllm has no approved AI-use review')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.governance.approval import Approval
from steppe.governance.errors import GovernanceError
from steppe.governance.residency import Dataset, ResidencyDecision, Topology, decide


def local_date(zone: tzinfo | str | float = "Asia/Almaty") -> Callable[[float], date]:
    """``now`` (seconds since the Unix epoch, UTC) -> the hub's local date in ``zone``: the site
    clock's zone (``Site.clock.zone``), an IANA name, or a fixed offset in hours. The default is
    Kazakhstan's single zone (UTC+5 since 1 March 2024).

    >>> local_date()(1_767_207_600.0)  # 2025-12-31 19:00 UTC = 2026-01-01 00:00 in Astana
    datetime.date(2026, 1, 1)
    >>> local_date("Europe/Berlin")(1_767_207_600.0), local_date(-3.0)(1_767_207_600.0)
    (datetime.date(2025, 12, 31), datetime.date(2025, 12, 31))
    """
    if isinstance(zone, str):
        tz: tzinfo = ZoneInfo(zone)
    elif isinstance(zone, int | float):
        tz = timezone(timedelta(hours=zone))
    else:
        tz = zone
    return lambda now: datetime.fromtimestamp(now, tz).date()


class ReviewCheck:
    """Hold jobs of projects without a current approval, or outside its conditions."""

    def __init__(
        self,
        approvals: Callable[[str], Approval | None],
        today: Callable[[float], date],
        *,
        used_gpu_hours: Callable[[str], float] | None = None,
        site: str | None = None,
        sites: Sequence[str] = (),
    ) -> None:
        self.approvals = approvals
        self.today = today
        self.used_gpu_hours = used_gpu_hours
        self.site = site
        self.sites = tuple(sites)  # a hub at several sites: a job may run at those its approval allows
        self._date: date | None = None
        self._fleet_types: frozenset[str] | None = None
        self.version = 0  # bumped by whoever changes the approvals (an admission epoch)

    def epoch(self, now: float) -> tuple[int, date]:
        """An approval decided, revoked or expired, or a new local date, may release held jobs."""
        return self.version, self.today(now)

    def begin_cycle(self, now: float) -> None:
        self._date = self.today(now)
        self._fleet_types = None

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        if self._fleet_types is None:
            self._fleet_types = frozenset(t.upper() for t in snap.cluster.gpus_by_type)
        found = self._evaluate(rec)
        return found[0] if found else None

    def sites_for(self, rec: JobRecord) -> frozenset[str] | None:
        """The hub's sites ``rec``'s approval allows it to run at (None: no condition on sites)."""
        approval = self.approvals(rec.spec.project)
        if approval is None or not approval.conditions.allowed_sites:
            return None
        return frozenset(s for s in self.sites if approval.conditions.allows_site(s))

    def why(self, rec: JobRecord) -> str | None:
        """Why ``rec`` is held by this check on the last cycle's date, or None."""
        found = self._evaluate(rec)
        return found[1] if found else None

    def _evaluate(self, rec: JobRecord) -> tuple[PendingReason, str] | None:
        if self._date is None:
            raise GovernanceError("ReviewCheck: begin_cycle(now) must run before check() (it sets the date)")
        project = rec.spec.project
        approval = self.approvals(project)
        if approval is None:
            return PendingReason.AWAITING_REVIEW, f"project {project} has no approved AI-use review"
        not_current = approval.not_current_reason(self._date)
        if not_current is not None:
            return PendingReason.AWAITING_REVIEW, not_current
        c = approval.conditions
        if c.allowed_gpu_types:
            allowed = ", ".join(sorted(c.allowed_gpu_types))
            gpu = rec.spec.gpu_type
            fleet = self._fleet_types or frozenset()
            if gpu is None and not fleet <= c.allowed_gpu_types:
                return PendingReason.AWAITING_REVIEW, (
                    f"approval of {project} allows only GPU types {allowed}; the job names no GPU type and "
                    f"the fleet also has {', '.join(sorted(fleet - c.allowed_gpu_types))}: set gpu_type")
            if gpu is not None and not c.allows_gpu_type(gpu):
                return PendingReason.AWAITING_REVIEW, (
                    f"approval of {project} allows GPU types {allowed}, not {gpu}; ask for an amendment")
        if c.allowed_sites and len(self.sites) > 1:
            if not any(c.allows_site(s) for s in self.sites):
                allowed = ", ".join(sorted(c.allowed_sites))
                return PendingReason.AWAITING_REVIEW, (
                    f"approval of {project} allows sites {allowed}; the hub's sites are {', '.join(self.sites)}")
        elif c.allowed_sites:
            sites = ", ".join(sorted(c.allowed_sites))
            if self.site is None:
                return PendingReason.AWAITING_REVIEW, f"approval of {project} allows sites {sites}; site unknown here"
            if not c.allows_site(self.site):
                return PendingReason.AWAITING_REVIEW, f"approval of {project} allows sites {sites}, not {self.site}"
        if c.gpu_hour_cap is not None:
            if self.used_gpu_hours is None:
                return PendingReason.AWAITING_REVIEW, (
                    f"approval of {project} caps GPU-hours at {c.gpu_hour_cap:g} but no usage ledger is configured")
            used = self.used_gpu_hours(project)
            if used >= c.gpu_hour_cap:
                return PendingReason.ASSOC_GRP_GRES_MINUTES, (
                    f"project {project} used {used:,.1f} of the {c.gpu_hour_cap:,.1f} GPU-hours its approval allows")
        return None


class ResidencyCheck:
    """Hold jobs whose datasets may not be used at this site (or not moved to it over an allowed route)."""

    def __init__(
        self,
        datasets_of: Mapping[int, Sequence[str]],
        registry: Mapping[str, Dataset],
        topology: Topology,
        site: str,
        sites: Sequence[str] = (),
    ) -> None:
        self.datasets_of = datasets_of
        self.registry = registry
        self.topology = topology
        self.site = topology.site(site).name
        self.sites = tuple(topology.site(s).name for s in sites)  # a hub at several sites (else empty)
        self._cache: dict[tuple[str, str], ResidencyDecision] = {}
        self.version = 0  # bumped by whoever changes the registry (an admission epoch)

    def epoch(self, now: float) -> int:
        return self.version

    def begin_cycle(self, now: float) -> None:
        """Forget cached decisions: the registry may have changed since the last cycle."""
        self._cache.clear()

    def decision(self, name: str, site: str | None = None) -> ResidencyDecision:
        """The decision for one dataset name at ``site`` (default: this site); unregistered names are denied."""
        where = site or self.site
        got = self._cache.get((name, where))
        if got is None:
            ds = self.registry.get(name)
            if ds is None:
                got = ResidencyDecision(name, where, False, None, f"dataset {name} is not registered", None)
            else:
                got = decide(ds, where, self.topology)
            self._cache[(name, where)] = got
        return got

    def staging(self, rec: JobRecord, site: str | None = None) -> list[ResidencyDecision]:
        """One decision per dataset the job reads at ``site`` (default: where it runs, else the first
        site that allows them all, else this site): route and staging time when allowed."""
        if site is None and self.sites:
            running_at = rec.pool.partition("/")[0] if "/" in rec.pool else ""
            site = running_at or min(self.allowed_sites(rec), key=self.sites.index, default=None)
        return [self.decision(name, site) for name in self.datasets_of.get(rec.job_id, ())]

    def allowed_sites(self, rec: JobRecord) -> frozenset[str]:
        """The hub's sites at which every dataset ``rec`` reads may be processed."""
        names = self.datasets_of.get(rec.job_id, ())
        return frozenset(s for s in self.sites if all(self.decision(n, s).allowed for n in names))

    def sites_for(self, rec: JobRecord) -> frozenset[str] | None:
        """Where ``rec`` may run, for placement in a hub at several sites (None: anywhere)."""
        if not self.sites or not self.datasets_of.get(rec.job_id):
            return None
        return self.allowed_sites(rec)

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        if not self.datasets_of.get(rec.job_id):
            return None
        if self.sites:
            return None if self.allowed_sites(rec) else PendingReason.DATA_RESIDENCY
        return PendingReason.DATA_RESIDENCY if self.why(rec) is not None else None

    def why(self, rec: JobRecord) -> str | None:
        """The first denied dataset's reason, or None when every dataset may be used here (with
        several sites: None when one site allows them all, else each site's first denial)."""
        if self.sites:
            if self.allowed_sites(rec):
                return None
            names = self.datasets_of.get(rec.job_id, ())
            denials = (next(d.reason for n in names if not (d := self.decision(n, s)).allowed) for s in self.sites)
            return "no site of the hub may process its data: " + "; ".join(denials)
        return next((d.reason for d in self.staging(rec) if not d.allowed), None)

    def staging_time_s(self, rec: JobRecord) -> float:
        """Estimated time to stage all the job's datasets here, one after another (0 when all are local)."""
        return sum(d.staging_time_s or 0.0 for d in self.staging(rec) if d.allowed)

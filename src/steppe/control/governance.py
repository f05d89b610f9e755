"""The loop's view of governance: approvals, the dataset registry and the datasets each job reads.

``GovernanceView`` owns the two governance admission checks the loop adds to its policy's
checks (``steppe.governance.admission``):

* ``ReviewCheck`` (unless the hub runs with ``--no-review-gate``): a job of a project without a
  current approval, or outside its conditions, waits with ``AwaitingReview``; past the
  approval's GPU-hour cap with ``AssocGrpGRESMinutes``. The cap counts the project's GPU-hours
  charged by the ledger (all time, every GPU type).
* ``ResidencyCheck``: a job reading a dataset that may not be processed at the hub's site, or
  moved to it only over forbidden routes, waits with ``DataResidency``.

The checks read in-memory mappings; ``load`` refreshes them from the store. The API writes a
governance change (approval, revocation, expiry, a dataset) and asks the loop to reload
(``HubLoop.reload_governance``), so the next cycle sees it. Job -> dataset links are read when
the loop admits a job and forgotten when it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection

from steppe.control.ledger import Ledger
from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.governance.admission import ResidencyCheck, ReviewCheck, local_date
from steppe.governance.approval import Approval
from steppe.governance.residency import Dataset, ResidencyDecision, Topology, load_topology
from steppe.store import governance as gov_repo


class GovernanceView:
    """Approvals, datasets and the review and residency checks built on them (module docstring)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        review_gate: bool = True,
        site: str = "astana",
        sites: Sequence[str] = (),
        topology: Topology | None = None,
        today: Callable[[float], date] | None = None,
    ) -> None:
        self.ledger = ledger
        self.topology = topology or load_topology()
        self.site = self.topology.site(site).name
        self.sites = tuple(sites)  # a hub at several sites: the checks also say where a job may run
        self.approvals: dict[str, Approval] = {}
        self.registry: dict[str, Dataset] = {}
        self.datasets_of: dict[int, list[str]] = {}
        self.review: ReviewCheck | None = None
        if review_gate:
            self.review = ReviewCheck(self.approvals.get, today or local_date(), used_gpu_hours=self.used_gpu_hours,
                                      site=self.site, sites=self.sites)  # fmt: skip
        self.residency = ResidencyCheck(self.datasets_of, self.registry, self.topology, self.site, self.sites)

    def checks(self) -> tuple[Any, ...]:
        """The admission checks to add to the policy's."""
        return (self.review, self.residency) if self.review is not None else (self.residency,)

    def used_gpu_hours(self, project: str) -> float:
        return sum(s for (p, _), s in self.ledger.by_type_s.items() if p == project) / 3600.0

    def load(self, conn: Connection) -> None:
        """Replace approvals and the registry with the store's (the checks keep their references)."""
        self.approvals.clear()
        self.approvals.update(gov_repo.approvals(conn))
        self.registry.clear()
        self.registry.update(gov_repo.registry(conn))
        if self.review is not None:  # held jobs may be admissible now: the memoised cycle must look again
            self.review.version += 1
        self.residency.version += 1

    def add_jobs(self, conn: Connection, job_ids: Iterable[int]) -> None:
        """Read which datasets these jobs read (jobs without any are not kept)."""
        self.datasets_of.update(gov_repo.datasets_of_jobs(conn, list(job_ids)))

    def forget(self, job_id: int) -> None:
        self.datasets_of.pop(job_id, None)

    def why(self, rec: JobRecord) -> str | None:
        """The sentence to show with a job held by a governance check (None otherwise)."""
        if rec.reason is PendingReason.DATA_RESIDENCY:
            return self.residency.why(rec)
        if self.review is not None and rec.reason in (
            PendingReason.AWAITING_REVIEW, PendingReason.ASSOC_GRP_GRES_MINUTES
        ):
            try:
                return self.review.why(rec)
            except Exception:  # before the first cycle the check has no date yet
                return None
        return None

    def staging(self, rec: JobRecord) -> list[ResidencyDecision]:
        return self.residency.staging(rec)

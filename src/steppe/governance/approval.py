"""Approvals and their conditions: what a reviewer grants, when it ends, and what revocation does.

An approval is *current* from its approval date through its expiry date (inclusive, in the
hub's local date) unless it was revoked. While it is current, the project's jobs may start if
they keep its conditions: a GPU-hour cap, allowed GPU types and allowed sites (empty = any).

Revocation stops new starts at once. For jobs already running, the reviewer chooses:
``finish`` lets them run to completion, ``cancel`` cancels them (``revocation_effect``). Expiry
behaves like ``finish``: jobs that started under a current approval run on (as Slurm lets
running jobs finish when an association's limits change).

>>> from datetime import date
>>> a = Approval("kaznu/kazllm", "kaznu", ApprovalConditions(date(2026, 6, 30)), "bob", date(2026, 2, 1))
>>> a.current(date(2026, 6, 30)), a.current(date(2026, 7, 1))
(True, False)
>>> revocation_effect(a.revoke(date(2026, 3, 1), "misuse", "cancel"), running_job_ids=[7, 3])
RevocationEffect(cancel=(3, 7), finish=())
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

from steppe.governance.errors import GovernanceError

RunningJobs = Literal["finish", "cancel"]


@dataclass(frozen=True)
class ApprovalConditions:
    """Conditions of an approval; empty type/site sets mean any. GPU types upper-case, sites lower-case."""

    expires_on: date
    gpu_hour_cap: float | None = None
    allowed_gpu_types: frozenset[str] = frozenset()
    allowed_sites: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_gpu_types", frozenset(t.upper() for t in self.allowed_gpu_types))
        object.__setattr__(self, "allowed_sites", frozenset(s.lower() for s in self.allowed_sites))

    def allows_gpu_type(self, gpu_type: str) -> bool:
        return not self.allowed_gpu_types or gpu_type.upper() in self.allowed_gpu_types

    def allows_site(self, site: str) -> bool:
        return not self.allowed_sites or site.lower() in self.allowed_sites

    def as_dict(self) -> dict[str, Any]:
        return {
            "expires_on": self.expires_on.isoformat(),
            "gpu_hour_cap": self.gpu_hour_cap,
            "allowed_gpu_types": sorted(self.allowed_gpu_types),
            "allowed_sites": sorted(self.allowed_sites),
        }


@dataclass(frozen=True)
class Approval:
    """A reviewer's approval of one revision of a project's proposal."""

    project: str
    org: str
    conditions: ApprovalConditions
    approved_by: str
    approved_on: date
    revision: int = 1
    revoked_on: date | None = None
    revoke_reason: str = ""
    running_jobs: RunningJobs | None = None

    def current(self, today: date) -> bool:
        """In force on ``today``: approved, not revoked, not past its expiry date."""
        return self.not_current_reason(today) is None

    def not_current_reason(self, today: date) -> str | None:
        """Why the approval is not in force on ``today``, or None when it is."""
        if self.revoked_on is not None and self.revoked_on <= today:
            return f"approval of {self.project} was revoked on {self.revoked_on}: {self.revoke_reason}"
        if today > self.conditions.expires_on:
            return f"approval of {self.project} expired on {self.conditions.expires_on}"
        if today < self.approved_on:
            return f"approval of {self.project} takes effect on {self.approved_on}"
        return None

    def revoke(self, on: date, reason: str, running_jobs: RunningJobs) -> Approval:
        """This approval, revoked from ``on``; ``running_jobs`` says what happens to running jobs."""
        if not reason.strip():
            raise GovernanceError(f"revoking the approval of {self.project} needs a reason")
        if running_jobs not in ("finish", "cancel"):
            raise GovernanceError(f"running_jobs must be 'finish' or 'cancel', got {running_jobs!r}")
        return replace(self, revoked_on=on, revoke_reason=reason, running_jobs=running_jobs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "org": self.org,
            "conditions": self.conditions.as_dict(),
            "approved_by": self.approved_by,
            "approved_on": self.approved_on.isoformat(),
            "revision": self.revision,
            "revoked_on": self.revoked_on.isoformat() if self.revoked_on else None,
            "revoke_reason": self.revoke_reason,
            "running_jobs": self.running_jobs,
        }


@dataclass(frozen=True)
class RevocationEffect:
    """What to do with a project's running jobs after a revocation (queued jobs simply wait)."""

    cancel: tuple[int, ...]
    finish: tuple[int, ...]


def revocation_effect(approval: Approval, running_job_ids: Iterable[int]) -> RevocationEffect:
    """Split the project's running jobs into those to cancel and those left to finish."""
    if approval.revoked_on is None:
        raise GovernanceError(f"approval of {approval.project} is not revoked")
    ids = tuple(sorted(running_job_ids))
    return RevocationEffect(ids, ()) if approval.running_jobs == "cancel" else RevocationEffect((), ids)

"""What a scheduling cycle decides: starts, preemptions, reasons, a reservation, a wake-up.

A plan is a proposal. The single writer verifies each entry against the current state and
commits what still fits (see ``steppe.core.state.HubState.apply``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steppe.core.inventory import Allocation
from steppe.core.job import PendingReason


@dataclass(frozen=True, slots=True)
class Start:
    """Start ``job_id`` on ``allocation``; ``cap_fraction`` < 1 runs its GPUs under a power cap."""

    job_id: int
    allocation: Allocation
    cap_fraction: float = 1.0


@dataclass(frozen=True, slots=True)
class Reservation:
    """GPUs promised to a blocked job at ``start_s`` (EASY backfill's shadow time)."""

    job_id: int
    start_s: float
    gpu_type: str
    extra_gpus: int


@dataclass
class Plan:
    """The outcome of one scheduling cycle."""

    starts: list[Start] = field(default_factory=list)
    preemptions: list[int] = field(default_factory=list)
    reasons: dict[int, PendingReason] = field(default_factory=dict)
    reservation: Reservation | None = None
    wakeup_s: float | None = None

    def wake_at(self, t_s: float) -> None:
        """Ask to be run again at ``t_s`` even if nothing else happens (earliest request wins)."""
        if self.wakeup_s is None or t_s < self.wakeup_s:
            self.wakeup_s = t_s

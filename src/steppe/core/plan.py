"""What a scheduling cycle decides: starts, power-cap changes, preemptions, reasons, a reservation, a wake-up.

A plan is a proposal. The single writer verifies each entry against the current state and
commits what still fits (see ``steppe.core.state.HubState.apply``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from steppe.core.inventory import Allocation
from steppe.core.job import PendingReason


class Start(NamedTuple):
    """Start ``job_id`` on ``allocation``.

    ``cap_fraction`` < 1 runs its GPUs under a power cap (fraction of TDP); ``power_w`` is the
    IT power the job adds to the facility's draw (above the idle draw of its GPUs), 0 when the
    hub does not schedule power. (A named tuple: a cycle makes one per start, cheaply.)
    """

    job_id: int
    allocation: Allocation
    cap_fraction: float = 1.0
    power_w: float = 0.0
    floor_power_w: float = 0.0  # what it would add at the lowest cap it may be given


class Recap(NamedTuple):
    """Change a running job's GPU power cap to ``cap_fraction``; its added power becomes ``power_w``."""

    job_id: int
    cap_fraction: float
    power_w: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """GPUs promised to a blocked job at ``start_s`` (EASY backfill's shadow time)."""

    job_id: int
    start_s: float
    pool: str  # the pool (site x GPU type) whose GPUs are promised
    extra_gpus: int
    extra_power_w: float = float("inf")


class Plan:
    """The outcome of one scheduling cycle (a plain slotted class: a replay makes one per cycle)."""

    __slots__ = ("starts", "preemptions", "recaps", "reasons", "reservation", "wakeup_s")

    def __init__(
        self,
        starts: list[Start] | None = None,
        preemptions: list[int] | None = None,
        recaps: list[Recap] | None = None,
        reasons: dict[int, PendingReason] | None = None,
        reservation: Reservation | None = None,
        wakeup_s: float | None = None,
    ) -> None:
        self.starts: list[Start] = starts if starts is not None else []
        self.preemptions: list[int] = preemptions if preemptions is not None else []
        self.recaps: list[Recap] = recaps if recaps is not None else []
        self.reasons: dict[int, PendingReason] = reasons if reasons is not None else {}
        self.reservation = reservation
        self.wakeup_s = wakeup_s

    def __repr__(self) -> str:
        return (
            f"Plan(starts={self.starts!r}, preemptions={self.preemptions!r}, recaps={self.recaps!r}, "
            f"reasons={self.reasons!r}, reservation={self.reservation!r}, wakeup_s={self.wakeup_s!r})"
        )

    def wake_at(self, t_s: float) -> None:
        """Ask to be run again at ``t_s`` even if nothing else happens (earliest request wins)."""
        if self.wakeup_s is None or t_s < self.wakeup_s:
            self.wakeup_s = t_s

"""What every policy provides: a queue in its priority order and a cycle that returns a plan."""

from __future__ import annotations

from typing import Protocol

from steppe.core.cluster import Cluster
from steppe.core.plan import Plan
from steppe.core.state import PendingQueue, Snapshot
from steppe.core.usage import DecayedUsage


class Policy(Protocol):
    """A scheduling policy. ``oracle`` policies read true run times and are lower bounds, not schedulers."""

    name: str
    oracle: bool

    def new_queue(self, cluster: Cluster, usage: DecayedUsage) -> PendingQueue: ...

    def schedule(self, snap: Snapshot, now: float) -> Plan: ...

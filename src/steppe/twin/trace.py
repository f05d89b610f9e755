"""A workload to replay: jobs in submission order, plus what the reader did to get them.

Readers never filter silently: every dropped or altered row is counted in ``dropped`` or
``adjusted`` (reason -> count) and explained in ``notes``; the summary prints both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from steppe.core.cluster import TenantSpec
from steppe.core.job import JobSpec


@dataclass
class Trace:
    """Jobs sorted by ``submit_s`` (seconds from the first submission) and provenance."""

    source: str
    jobs: list[JobSpec]
    notes: list[str] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)
    tenants: dict[str, TenantSpec] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.jobs)

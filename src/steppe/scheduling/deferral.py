"""Carbon- and price-aware deferral of flexible jobs: ``run-now`` and GAIA's ``lowest-window``.

A job marked *deferrable* with a *deadline* may wait for cleaner or cheaper hours, as long as
it can still finish (by its walltime) before the deadline. ``lowest-window`` chooses, once,
the begin time ``b`` in ``[submit, deadline - walltime]`` (on the hour grid, plus ``submit``
itself) that minimises the mean of a signal over the job's window ``[b, b + walltime]``;
until then the job waits with pending reason ``BeginTime`` and the cycle asks to be woken at
``b``. ``run-now`` is the baseline: every job may start at once. The signal is injected
(carbon intensity x PUE, or tariff x PUE, from the site), so the rule is testable alone.

Example: signal 800 g/kWh except 600 g/kWh from 02:00 to 06:00; a 2-hour job submitted at
00:00 with deadline 08:00 gets ``b`` = 02:00 (window mean 600 instead of 800).

Reference: K. Hanafy et al., "Going Green for Less Green: Optimizing the Cost of Reducing
Cloud Carbon Emissions" (GAIA), ASPLOS 2024: the "Lowest-Window" policy.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Protocol

from sortedcontainers import SortedList

from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot

MODES = ("run-now", "lowest-window")


class SignalForecast(Protocol):
    """What deferral minimises, e.g. grams CO2e per IT kWh."""

    def mean_over(self, t0_s: float, t1_s: float) -> float: ...


class DeferralCheck:
    """Admission check holding deferrable jobs until their chosen begin time."""

    def __init__(self, forecast: SignalForecast, mode: str = "lowest-window", step_s: float = 3600.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown deferral mode {mode!r}; valid: {', '.join(MODES)}")
        self.forecast = forecast
        self.mode = mode
        self.step_s = step_s
        self._begin: dict[int, float] = {}
        self._wakeups: SortedList = SortedList()
        self.deferred: Counter[str] = Counter()
        self._now = 0.0

    def begin_time(self, rec: JobRecord) -> float:
        """When ``rec`` may start (memoised per job)."""
        got = self._begin.get(rec.job_id)
        if got is not None:
            return got
        spec = rec.spec
        begin = spec.submit_s
        if self.mode == "lowest-window" and spec.deferrable and spec.deadline_s is not None:
            latest = spec.deadline_s - spec.walltime_s
            if latest > spec.submit_s:
                begin = self._lowest_window(spec.submit_s, latest, spec.walltime_s)
        self._begin[rec.job_id] = begin
        if begin > spec.submit_s:
            self._wakeups.add((begin, rec.job_id))
            self.deferred["jobs"] += 1
        return begin

    def _lowest_window(self, earliest: float, latest: float, length: float) -> float:
        first = math.ceil(earliest / self.step_s) * self.step_s
        candidates = [earliest, *(first + k * self.step_s for k in range(int((latest - first) // self.step_s) + 1))]
        best, best_mean = earliest, self.forecast.mean_over(earliest, earliest + length)
        for b in candidates[1:]:
            if b > latest:
                break
            m = self.forecast.mean_over(b, b + length)
            if m < best_mean - 1e-9:
                best, best_mean = b, m
        return best

    def begin_cycle(self, now: float) -> None:
        """The cycle's time (called by the cycle before any ``check``)."""
        self._now = now

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        if not rec.spec.deferrable:
            return None
        return PendingReason.BEGIN_TIME if self.begin_time(rec) > self._now else None

    def next_wakeup(self, now: float) -> float | None:
        while self._wakeups and self._wakeups[0][0] <= now:
            self._wakeups.pop(0)
        return self._wakeups[0][0] if self._wakeups else None

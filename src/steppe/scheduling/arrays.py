"""The throttle of job arrays (``sbatch --array 0-99%8``) as an admission check, in both modes.

A task of an array with a limit of N waits with ``JobArrayTaskLimit`` while N tasks of its array
run. The check is a state listener too: it counts each array's running tasks. Tasks it admits in
a cycle may start in that cycle; it infers which did, as ``control/ledger.py``'s checks do (a
check sees only per-tenant GPUs started so far: after it admits a task, its next call sees
whether the task's tenant's count rose by the task's GPUs), and forgets that at the next cycle.
A task ending changes the state's generation, so the memoised cycle looks again without an
epoch of its own.

Example: ``0-99%8`` on a free 64-GPU hub: the first cycle starts tasks 0-7, holds 8-99 with
``JobArrayTaskLimit``; each task that ends lets the next one start.
"""

from __future__ import annotations

from collections import Counter

from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot


class ArrayThrottle:
    """The admission check and state listener of the module docstring."""

    def __init__(self) -> None:
        self.running: Counter[int] = Counter()  # array id -> tasks running
        self.this_cycle: Counter[int] = Counter()  # array id -> tasks started earlier in this cycle
        self._last: tuple[JobRecord, int] | None = None  # the task admitted last, its tenant's count then

    def begin_cycle(self, now: float) -> None:
        self.this_cycle.clear()
        self._last = None

    def on_submit(self, rec: JobRecord, now: float) -> None:
        """Nothing runs yet."""

    def on_start(self, rec: JobRecord, now: float) -> None:
        if rec.spec.array_job:
            self.running[rec.spec.array_job] += 1

    def on_stop(self, rec: JobRecord, now: float) -> None:
        array = rec.spec.array_job
        if array and rec.allocation:  # it ran (a pending task cancelled never did)
            left = self.running[array] - 1
            if left > 0:
                self.running[array] = left
            else:
                del self.running[array]

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        last = self._last
        if last is not None:
            self._last = None
            if tenant_extra[last[0].spec.tenant] == last[1] + last[0].gpus:  # it started in this cycle
                self.this_cycle[last[0].spec.array_job] += 1
        spec = rec.spec
        if not spec.array_limit:
            return None
        array = spec.array_job
        if self.running.get(array, 0) + self.this_cycle.get(array, 0) >= spec.array_limit:
            return PendingReason.JOB_ARRAY_TASK_LIMIT
        self._last = (rec, tenant_extra[spec.tenant])
        return None

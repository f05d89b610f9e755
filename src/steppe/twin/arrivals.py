"""The twin's side of the pipeline step: a trace's jobs arrive through the one submission gate.

``TraceArrivals`` is the ``Intake`` the replay gives the pipeline (``steppe.pipeline.step``):
at each step it queues every job submitted at that instant that the gate lets in, and counts
the others under the first rule they break (as Slurm refuses a job that could never start).
``next_s`` is when the next job arrives, for the simulated environment. The twin has no
recorder: the state's listeners (metrics, event log) see every change.

Example: jobs at 0, 0 and 5 s on 2 x 8 H100, the second asking for 32 GPUs: ``intake(0.0)``
queues the first and counts the second under its rule (more GPUs than the largest pool);
``next_s`` is then 5.0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from steppe.core.job import JobSpec
from steppe.core.state import HubState
from steppe.scheduling.gate import SubmissionGate


class TraceArrivals:
    """Submissions from a sorted list of jobs, through the gate."""

    def __init__(self, jobs: Sequence[JobSpec], state: HubState, gate: SubmissionGate) -> None:
        self.jobs = jobs
        self.state = state
        self.gate = gate
        self.next = 0  # index of the next job to arrive
        self.next_s = jobs[0].submit_s if jobs else math.inf  # when it arrives
        self.submitted = 0
        self.rejected: Counter[str] = Counter()

    def intake(self, now: float) -> None:
        if self.next_s != now:
            return
        jobs, n, i = self.jobs, len(self.jobs), self.next
        while i < n and jobs[i].submit_s == now:
            spec = jobs[i]
            i += 1
            refused = self.gate.refusals_of(spec)
            if refused:
                self.rejected[refused[0].rule] += 1
                continue
            self.state.submit(spec, now)
            self.submitted += 1
        self.next = i
        self.next_s = jobs[i].submit_s if i < n else math.inf

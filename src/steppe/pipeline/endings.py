"""How a job's end is decided, the same in both modes: from the stop the pipeline asked for, or the exit.

A stop carries an intent (``cancel:<actor>`` or ``timeout``); when the job's exit comes back,
the intent decides the final state whatever the exit code. A job that ends on its own ends by
its exit: ``0:0`` is ``COMPLETED``, anything else ``FAILED`` with Slurm's reason.

>>> exit_ending(ExitInfo(0, 0, 5.0)).state.value, exit_ending(ExitInfo(2, 0, 5.0)).reason
('COMPLETED', 'NonZeroExitCode')
>>> intent_ending("timeout", 3600.0).detail
'walltime 01:00:00 reached'

``exit_state`` is ``exit_ending(info).state`` without building the ending (the step's fast path):

>>> exit_state(ExitInfo(0, 0, 5.0)).value, exit_state(ExitInfo(1, 0, 5.0, "launch failed: no GPU")).value
('COMPLETED', 'FAILED')
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from steppe.core.job import JobState
from steppe.core.units import format_duration
from steppe.executors.base import ExitInfo

TIMEOUT_INTENT = "timeout"


@dataclass(frozen=True)
class Ending:
    """How a job ends: final state, the short reason code and the event's text (and its exit, once known)."""

    state: JobState
    reason: str
    detail: str
    exit: ExitInfo | None = None

    def with_exit(self, info: ExitInfo) -> Ending:
        """This ending, with the exit the executor reported."""
        return replace(self, exit=info)


def intent_ending(intent: str, walltime_s: float, exit: ExitInfo | None = None) -> Ending:
    """The ending a stop intent (``cancel:<actor>`` or ``timeout``) leads to."""
    if intent.startswith("cancel"):
        actor = intent.partition(":")[2] or "a user"
        return Ending(JobState.CANCELLED, "None", f"cancelled by {actor}", exit)
    return Ending(JobState.TIMEOUT, "TimeLimit", f"walltime {format_duration(walltime_s)} reached", exit)


def exit_state(info: ExitInfo) -> JobState:
    """The final state of a job whose process ended on its own (``exit_ending(info).state``)."""
    if info.exit_code == 0 and info.signal == 0 and not info.detail.startswith("launch failed"):
        return JobState.COMPLETED
    return JobState.FAILED


def exit_ending(info: ExitInfo) -> Ending:
    """The ending of a job whose process ended on its own."""
    if info.detail.startswith("launch failed"):
        return Ending(JobState.FAILED, "LaunchFailed", info.detail, info)
    if info.exit_code == 0 and info.signal == 0:
        return Ending(JobState.COMPLETED, "None", "exit 0:0", info)
    if info.signal:
        return Ending(JobState.FAILED, f"RaisedSignal:{info.signal}", f"killed by signal {info.signal}", info)
    return Ending(JobState.FAILED, "NonZeroExitCode", f"exit {info.slurm}", info)

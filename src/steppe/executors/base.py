"""The executor protocol: the writer hands it starts and stops; it reports ends back."""

from __future__ import annotations

from typing import Protocol

from steppe.core.records import JobRecord


class Executor(Protocol):
    """Runs jobs. ``start`` after the writer committed a start; ``stop`` after a preemption or cancel."""

    def start(self, rec: JobRecord, now: float) -> None: ...

    def stop(self, rec: JobRecord, now: float) -> None: ...

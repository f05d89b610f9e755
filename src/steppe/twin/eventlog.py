"""The replay's event log, hashed as it grows: the same inputs and seed give the same digest.

Each event is one line ``time kind job_id detail`` with times printed to the microsecond.
"""

from __future__ import annotations

import hashlib

from steppe.core.records import JobRecord


class EventLog:
    """A state listener that hashes every transition (and optionally keeps the lines)."""

    def __init__(self, keep_lines: bool = False) -> None:
        self._hash = hashlib.sha256()
        self.lines: list[str] | None = [] if keep_lines else None
        self.count = 0

    def _add(self, line: str) -> None:
        self.count += 1
        self._hash.update(f"{line}\n".encode())
        if self.lines is not None:
            self.lines.append(line)

    def on_submit(self, rec: JobRecord, now: float) -> None:
        self._add(f"{now:.6f} SUBMIT {rec.job_id}")

    def on_start(self, rec: JobRecord, now: float) -> None:
        self._add(f"{now:.6f} START {rec.job_id} {rec.allocation!r} cap={rec.cap_fraction:.3f}")

    def on_stop(self, rec: JobRecord, now: float) -> None:
        self._add(f"{now:.6f} {rec.state.value} {rec.job_id}")

    def digest(self) -> str:
        return self._hash.hexdigest()

"""The replay's event log, hashed as it grows: the same inputs and seed give the same digest.

Each event is one line ``time kind job_id detail`` with times printed to the microsecond. The
digest is SHA-256 over the lines, each ending in a newline. Lines are hashed in batches (the
hash of a stream does not depend on how it is cut), so a transition costs one string format
and one list append.

>>> log = EventLog(keep_lines=True)
>>> log._add("0.000000 SUBMIT 1"); log.lines
['0.000000 SUBMIT 1']
>>> import hashlib; log.digest() == hashlib.sha256(b"0.000000 SUBMIT 1\\n").hexdigest()
True
"""

from __future__ import annotations

import hashlib

from steppe.core.records import JobRecord

_BATCH = 1024


class EventLog:
    """A state listener that hashes every transition (and optionally keeps the lines)."""

    def __init__(self, keep_lines: bool = False) -> None:
        self._hash = hashlib.sha256()
        self._pending: list[str] = []
        self.lines: list[str] | None = [] if keep_lines else None
        self.count = 0

    def _add(self, line: str) -> None:
        self.count += 1
        pending = self._pending
        pending.append(line)
        if self.lines is not None:
            self.lines.append(line)
        if len(pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._pending.append("")
            self._hash.update("\n".join(self._pending).encode())
            self._pending.clear()

    def on_submit(self, rec: JobRecord, now: float) -> None:
        self._add(f"{now:.6f} SUBMIT {rec.job_id}")

    def on_start(self, rec: JobRecord, now: float) -> None:
        self._add(f"{now:.6f} START {rec.job_id} {rec.allocation!r} cap={rec.cap_fraction:.3f}")

    def on_stop(self, rec: JobRecord, now: float) -> None:
        self._add(f"{now:.6f} {rec.state.value} {rec.job_id}")

    def digest(self) -> str:
        self._flush()
        return self._hash.hexdigest()

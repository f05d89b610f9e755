"""The live hub's environment for the pipeline: wall-clock time, wake-ups from any thread, waiting.

The twin's counterpart is ``twin.engine.SimulatedEnvironment``; both give the step its ``now``
and hold its next wake-up. ``WallClock`` reads an injected clock (``time.time``, or a test's
fake clock); ``wake_at(t)`` sets when the next step is due; ``wake()`` (from an API handler or
an executor's thread) asks for one at once; ``wait`` blocks until either; ``clear`` forgets the
wake-ups taken (after a pause that lets a burst of them gather into one step).

>>> env = WallClock(lambda: 100.0)
>>> env.wake_at(105.0); env.timeout_s()
5.0
>>> env.wake(); env.wait()
True
>>> env.clear(); env.wake_at(99.0); env.wait()
False
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class WallClock:
    """Wall-clock time and wake-ups; see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.next_wake_s: float | None = None
        self._wake = threading.Event()

    def now(self) -> float:
        return self.clock()

    def wake_at(self, time_s: float | None) -> None:
        """The next step is due at ``time_s`` (None: only when woken)."""
        self.next_wake_s = time_s

    def wake(self) -> None:
        """Ask for a step at once (thread-safe)."""
        self._wake.set()

    def woken(self) -> bool:
        """True when a step was asked for since the last ``clear`` (one is due at once)."""
        return self._wake.is_set()

    def timeout_s(self) -> float | None:
        """Seconds until the next step is due (None: none is)."""
        return None if self.next_wake_s is None else max(self.next_wake_s - self.clock(), 0.0)

    def wait(self) -> bool:
        """Block until woken or the next wake-up is due (with none due, until woken); True if woken."""
        return self._wake.wait(self.timeout_s())

    def clear(self) -> None:
        """Forget the wake-ups taken so far."""
        self._wake.clear()

"""The simulation kernel: one heap of ``(time, priority, seq, event)``.

Events at the same time pop in priority order (ends before timers), then in the order they
were pushed, so a replay is deterministic. The kernel knows nothing of jobs, metrics or UI.

>>> q = EventQueue()
>>> q.push(5.0, 1, "b"); q.push(5.0, 0, "a"); q.push(1.0, 0, "first")
>>> q.pop_batch()
(1.0, ['first'])
>>> q.pop_batch()
(5.0, ['a', 'b'])
"""

from __future__ import annotations

import heapq
import math
from typing import Any


class EventQueue:
    """A deterministic priority queue of timed events."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Any]] = []
        self._seq = 0

    def push(self, time_s: float, priority: int, event: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time_s, priority, self._seq, event))

    def peek_time(self) -> float:
        """Time of the next event, or infinity when empty."""
        return self._heap[0][0] if self._heap else math.inf

    def pop_batch(self) -> tuple[float, list[Any]]:
        """All events at the earliest time, in (priority, push) order."""
        time_s = self._heap[0][0]
        batch = []
        while self._heap and self._heap[0][0] == time_s:
            batch.append(heapq.heappop(self._heap)[3])
        return time_s, batch

    def __len__(self) -> int:
        return len(self._heap)

"""The simulation kernel: the simulated environment, one heap of ``(time, priority, seq, callback index, arg)``.

Events at the same time pop in priority order (executor exits before wake-ups), then in the
order they were pushed, so a replay is deterministic. The kernel knows nothing of jobs,
metrics or UI.

``SimulatedEnvironment`` is the twin's environment for the pipeline (SimPy's ``Environment``;
the live hub's is ``steppe.pipeline.environment.WallClock``): ``now`` is the time of the
instant being stepped; ``call_at`` is a timer (the fake executor's exits); ``wake_at`` asks for a
step at a time (the plan's wake-up). ``run`` jumps from instant to instant: the next of the
heap, the next arrival and the next walltime end; at each it fires the due timers, then runs
one pipeline step (which takes the arrivals of that instant and the walltime ends). An instant
whose only events are timers that return ``False`` (an exit dropped because its job was
stopped) is skipped: nothing happens then.

The environment's heap holds one flat tuple per timer, ``(time, priority, seq, callback
index, arg)``: callbacks are numbered once (a replay has one, the fake executor's ``fire``),
so an entry whose ``arg`` holds only numbers holds no container at all and the garbage
collector stops tracking it at its first pass; a running job's pending exit, which lives
until the job ends, then costs the collector nothing.

>>> env = SimulatedEnvironment()
>>> seen = []
>>> env.call_at(3.0, seen.append, "exit"); env.wake_at(2.0); env.wake_at(2.0)
>>> class Step:
...     wakeup_s = None
...     def step(self, now): seen.append(now)
...     def next_expiry_s(self): return math.inf
>>> class NoArrivals:
...     next_s = math.inf
>>> env.run(Step(), NoArrivals())
2
>>> seen
[2.0, 'exit', 3.0]
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Protocol

_TIMER, _WAKE = 0, 1


class Steppable(Protocol):
    """What ``SimulatedEnvironment.run`` drives (``steppe.pipeline.PipelineStep``): a step, the
    wake-up the last step asked for, and the next walltime end."""

    wakeup_s: float | None

    def step(self, now: float) -> Any: ...

    def next_expiry_s(self) -> float: ...


class Arrivals(Protocol):
    """When the next submission arrives (``twin.arrivals.TraceArrivals``; infinity: none)."""

    next_s: float


class SimulatedEnvironment:
    """Simulated time for the pipeline; see the module docstring."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self._heap: list[tuple[float, int, int, int, Any]] = []  # (time, priority, seq, callback, arg)
        self._seq = itertools.count(1)  # push order, for ties
        self._callbacks: list[Callable[[Any], Any]] = []
        self._callback_ix: dict[Callable[[Any], Any], int] = {}
        self._wakes: set[float] = set()

    def now(self) -> float:
        return self.now_s

    def call_at(self, time_s: float, callback: Callable[[Any], Any], arg: Any) -> None:
        """Call ``callback(arg)`` when the clock reaches ``time_s`` (before that instant's step);
        a callback that returns ``False`` asks for no step."""
        heapq.heappush(self._heap, (time_s, _TIMER, next(self._seq), self._index(callback), arg))

    def timer(self, callback: Callable[[Any], Any]) -> Callable[[float, Any], None]:
        """``call_at`` for one callback, as a function ``push(time_s, arg)`` (a replay's exits:
        one call per timer, no lookup)."""
        heap, seq, ix, heappush = self._heap, self._seq, self._index(callback), heapq.heappush

        def push(time_s: float, arg: Any) -> None:
            heappush(heap, (time_s, _TIMER, next(seq), ix, arg))

        return push

    def _index(self, callback: Callable[[Any], Any]) -> int:
        ix = self._callback_ix.get(callback)
        if ix is None:
            ix = self._callback_ix[callback] = len(self._callbacks)
            self._callbacks.append(callback)
        return ix

    def wake_at(self, time_s: float) -> None:
        """Run a step at ``time_s`` (once, however often it is asked)."""
        if time_s not in self._wakes:
            self._wakes.add(time_s)
            heapq.heappush(self._heap, (time_s, _WAKE, next(self._seq), -1, None))

    def run(self, step: Steppable, arrivals: Arrivals, after: Callable[[], None] | None = None) -> int:
        """Step at every instant until nothing is left to happen; returns the number of steps.

        After each step, its wake-up is scheduled and ``after()`` called (a replay's progress).
        The run ends when no arrival, timer or wake-up is left (jobs still waiting stay unfinished).
        """
        heap, wakes, callbacks, seq = self._heap, self._wakes, self._callbacks, self._seq
        heappop, heappush, inf = heapq.heappop, heapq.heappush, math.inf
        steps = 0
        while True:
            t_event = heap[0][0] if heap else inf
            t_arrival = arrivals.next_s
            if t_event == inf and t_arrival == inf:
                return steps
            t_expiry = step.next_expiry_s()
            now = min(t_arrival, t_event, t_expiry)
            self.now_s = now
            if t_event == now:
                due = t_arrival == now or t_expiry == now
                while heap and heap[0][0] == now:
                    _, _, _, ix, arg = heappop(heap)
                    if ix < 0:
                        wakes.discard(now)
                        due = True
                    elif callbacks[ix](arg) is not False:
                        due = True
                if not due:
                    continue
            step.step(now)
            steps += 1
            wakeup = step.wakeup_s
            if wakeup is not None and wakeup > now and wakeup not in wakes:
                wakes.add(wakeup)
                heappush(heap, (wakeup, _WAKE, next(seq), -1, None))
            if after is not None:
                after()

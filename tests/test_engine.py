"""The simulated environment's heap: flat entries that the garbage collector stops tracking."""

from __future__ import annotations

import gc
import math
from typing import Any

from steppe.twin.engine import SimulatedEnvironment


class _Step:
    wakeup_s: float | None = None

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def step(self, now: float) -> None:
        self.seen.append(now)

    def next_expiry_s(self) -> float:
        return math.inf


class _NoArrivals:
    next_s = math.inf


def test_a_pending_timer_of_numbers_is_not_tracked_by_the_garbage_collector() -> None:
    env = SimulatedEnvironment()
    seen: list[Any] = []
    env.call_at(5.0, seen.append, (1, 2, 5.0))
    env.wake_at(7.0)
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in env._heap)  # a running job's exit costs no GC work


def test_timers_fire_in_time_then_push_order_and_a_false_timer_asks_for_no_step() -> None:
    env = SimulatedEnvironment()
    seen: list[Any] = []

    def dropped(arg: Any) -> bool:
        seen.append(arg)
        return False

    env.call_at(2.0, seen.append, "b")
    env.call_at(1.0, seen.append, "a")
    env.call_at(2.0, seen.append, "c")
    env.call_at(3.0, dropped, "dropped")
    env.wake_at(2.0)
    assert env.run(_Step(seen), _NoArrivals()) == 2
    assert seen == ["a", 1.0, "b", "c", 2.0, "dropped"]

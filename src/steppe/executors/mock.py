"""``MockExecutor``: an executor that runs nothing and records everything, for tests of the live loop.

It implements the whole executor protocol (``steppe.executors.base``) in memory: ``start``
records the launch and a handle; a test ends a job with ``end(job_id, exit_code)`` (reported
through ``on_exit`` like a real process exit), makes a launch fail with ``fail_starts``, and
reads ``calls`` to see the order the loop called it in. Handles survive a simulated restart
when the same instance is bound to a new loop, as processes outlive a real hub. Its
``inventory`` is what it was given (``MockExecutor({"node001": (0, 1)})``), empty by default, with
``busy`` (GPUs others' jobs hold); a test sets ``down`` to play an engine that does not answer.

>>> from steppe.executors.base import ExitInfo
>>> ex = MockExecutor()
>>> ends = []
>>> ex.bind(lambda job_id, epoch, info: ends.append((job_id, info.slurm)), lambda job_id: None)
>>> ex.fail_starts.add(7)
>>> class Rec:
...     job_id, epoch, last_start_s, allocation = 7, 1, 0.0, ((0, 1),)
>>> ex.start(Rec(), 0.0); ends
[(7, '1:0')]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steppe.core.records import JobRecord
from steppe.executors.base import ExitInfo, Handle, Inventory, Launch, OnExit


class MockExecutor:
    """An in-memory executor; see the module docstring."""

    def __init__(self, gpus: dict[str, tuple[int, ...]] | None = None) -> None:
        self.gpus = dict(gpus or {})
        self.calls: list[tuple[str, int]] = []
        self.running: dict[int, Handle] = {}
        self.exits: dict[int, ExitInfo] = {}
        self.launched: dict[int, Handle] = {}
        self.fail_starts: set[int] = set()
        self.down = False
        self.busy: dict[str, int] = {}  # node -> GPUs held by work the hub did not start
        self.caps: dict[int, float] = {}
        self._epochs: dict[int, int] = {}
        self._new: dict[int, Handle] = {}
        self._on_exit: OnExit = lambda job_id, epoch, info: None
        self._launch_of: Callable[[int], Launch | None] | None = None

    def bind(self, on_exit: OnExit, launch_of: Callable[[int], Any]) -> None:
        self._on_exit, self._launch_of = on_exit, launch_of

    def start(self, rec: JobRecord, now: float) -> None:
        self.calls.append(("start", rec.job_id))
        if rec.job_id in self.fail_starts:
            self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, now, "launch failed: refused by the mock executor"))
            return
        devices = [[node, list(range(gpus))] for node, gpus in rec.allocation]  # (node, device indices) as local
        handle = {"job_id": rec.job_id, "start_s": rec.last_start_s, "devices": devices}
        self.running[rec.job_id] = self.launched[rec.job_id] = self._new[rec.job_id] = handle
        self._epochs[rec.job_id] = rec.epoch
        self.exits.pop(rec.job_id, None)

    def stop(self, rec: JobRecord, now: float) -> None:
        """Record the stop; the job ends with SIGTERM (``0:15``) as a polite process would."""
        self.calls.append(("stop", rec.job_id))
        if rec.job_id in self.running:
            self.end(rec.job_id, 0, 15, now)

    def recap(self, rec: JobRecord, now: float) -> None:
        self.calls.append(("recap", rec.job_id))
        self.caps[rec.job_id] = rec.cap_fraction

    def end(self, job_id: int, exit_code: int = 0, signal: int = 0, now: float = 0.0) -> None:
        """The job's process ends now (report it as a real exit would be)."""
        self.running.pop(job_id, None)
        info = ExitInfo(exit_code, signal, now)
        self.exits[job_id] = info
        self._on_exit(job_id, self._epochs.get(job_id, 0), info)

    def adopt(self, rec: JobRecord, handle: Handle) -> bool:
        if handle.get("job_id") in self.running:
            self._epochs[rec.job_id] = rec.epoch
            return True
        return False

    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> Handle | None:
        handle = self.launched.get(job_id)
        return handle if handle is not None and handle["start_s"] == start_s else None

    def outcome(self, job_id: int, start_s: float | None = None) -> ExitInfo | None:
        return self.exits.get(job_id)

    def outputs(self, job_id: int) -> dict[str, tuple[int, int]]:
        return {}

    def kill(self, handle: Handle) -> None:
        self.calls.append(("kill", int(handle["job_id"])))
        self.running.pop(int(handle["job_id"]), None)

    def take_launched(self) -> dict[int, Handle]:
        out, self._new = self._new, {}
        return out

    def inventory(self) -> Inventory:
        return Inventory(dict(self.gpus), dict(self.busy))

    def reachable(self) -> bool:
        """False while a test sets ``down`` (an engine that does not answer)."""
        return not self.down

    def close(self) -> None:
        self.calls.append(("close", 0))

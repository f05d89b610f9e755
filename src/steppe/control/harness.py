"""``LoopHarness``: the live hub's loop in process, for tests: a temporary SQLite store, a mock
executor, a fake clock, tenants, and every plan the policy returned.

Most live-hub behaviour (admission, recovery, launch failures, charging) is tested this way,
without a server, processes or wall-clock waits; a few end-to-end tests run a real ``steppe
serve``. Example::

    h = LoopHarness(tmp_path, gpus=2)
    a = h.submit(gpus=2)
    h.step()                      # a starts: h.executor.calls == [("start", a)]
    h.executor.end(a, 0)          # its process exits 0
    h.step(5.0)                   # 5 s later: a is COMPLETED in the store
    assert h.job(a).state == "COMPLETED"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import RowMapping

from steppe.control.loop import HubLoop
from steppe.control.machine import Fleet
from steppe.core.cluster import Cluster
from steppe.core.plan import Plan
from steppe.executors.mock import MockExecutor
from steppe.metering import MeterSetup
from steppe.scheduling.power import PowerBudget
from steppe.store import jobs as job_repo
from steppe.store import open_store, tenancy
from steppe.store.db import sqlite_url


class FakeClock:
    """A clock the test moves: ``clock()`` is now, ``advance(dt)`` moves it."""

    def __init__(self, t0_s: float = 1_800_000_000.0) -> None:
        self.now = t0_s

    def __call__(self) -> float:
        return self.now

    def advance(self, dt_s: float) -> float:
        self.now += dt_s
        return self.now


class LoopHarness:
    """A ``HubLoop`` over a temporary store with one organisation ``kaznu``, project ``nlp`` and user ``alice``."""

    def __init__(
        self, tmp_dir: Path, *, nodes: int = 1, gpus: int = 8, gpu_type: str = "H100", policy: str = "easy-backfill",
        executor: MockExecutor | None = None, clock: FakeClock | None = None, power: PowerBudget | None = None,
        metering: MeterSetup | None = None,
    ) -> None:  # fmt: skip
        self.store = open_store(sqlite_url(Path(tmp_dir) / "harness.db"))
        self.clock = clock or FakeClock()
        self.executor = executor or MockExecutor()
        cluster = Cluster.uniform(nodes, gpus, gpu_type)
        self.fleet = Fleet(cluster, {i: list(range(gpus)) for i in range(nodes)}, "harness")
        self.policy = policy
        self.power = power  # the loop's facility budget (read at the clock's POSIX seconds), or None
        self.metering = metering  # the loop's meter (site timeline, power model, counters), or GPU-seconds only
        self.plans: list[Plan] = []
        now = self.clock()
        with self.store.write() as conn:
            org = tenancy.create_org(conn, "kaznu", "KZ", now)
            self.project_id = tenancy.create_project(conn, org, "nlp", now)
            self.user_id = tenancy.create_user(conn, "alice", org, "member", now)
        self.loop = self._new_loop()
        self.loop.restore()

    def _new_loop(self) -> HubLoop:
        loop = HubLoop(self.store, self.fleet, self.executor, policy=self.policy, clock=self.clock, power=self.power,
                       metering=self.metering)
        schedule = loop.policy.schedule

        def recorded(snap: Any, now: float) -> Plan:
            plan = schedule(snap, now)
            self.plans.append(plan)
            return plan

        loop.policy.schedule = recorded  # type: ignore[method-assign]
        return loop

    def submit(self, gpus: int = 1, walltime_s: float = 3600.0, **values: Any) -> int:
        """Insert a pending job as the API would; returns its id."""
        row = {
            "project_id": self.project_id, "user_id": self.user_id, "name": "job", "argv": ["true"], "script": None,
            "workdir": "/", "env": {}, "gpus": gpus, "gpu_type": None, "walltime_s": walltime_s, "qos": "normal",
            "submit_s": self.clock(), "stdout_path": "/dev/null", "stderr_path": "/dev/null", **values,
        }  # fmt: skip
        with self.store.write() as conn:
            return job_repo.insert_job(conn, row, "alice")

    def step(self, dt_s: float = 0.0) -> bool:
        """Move the clock by ``dt_s`` and run one guarded loop step; False if the step failed."""
        self.clock.advance(dt_s)
        return self.loop.step_guarded()

    def restart(self) -> None:
        """A new loop on the same store and executor, as after a ``kill -9`` of the hub."""
        self.loop = self._new_loop()
        self.loop.restore()

    def job(self, job_id: int) -> RowMapping:
        with self.store.read() as conn:
            row = job_repo.get_job(conn, job_id)
        assert row is not None, f"no job {job_id}"
        return row

    def events(self, job_id: int) -> list[tuple[str, str]]:
        with self.store.read() as conn:
            return [(e.state, e.reason) for e in job_repo.events_of(conn, job_id)]

    def close(self) -> None:
        self.store.close()

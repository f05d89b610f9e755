"""Run a sweep's replays: in this process, in worker processes, or as Ray tasks.

Three backends, one contract: ``run_sweep`` returns one row per point (``twin/sweep.py``) in
the sweep's own order, never completion order, and the rows are the same whichever backend
ran them and however many workers it had (each replay is deterministic; only ``wall_s``, the
replay's own wall time, differs).

* ``workers=1``: the points one after another here (no pool, nothing pickled).
* ``workers=N`` (``ProcessBackend``): a pool of N spawned processes. The trace is parsed once,
  here, and each worker receives it once, when it starts (the pool's initializer), not once
  per replay; a task sends only its point, and a row comes back. Points are handed out one at a
  time as workers free up, so a long replay does not hold back a queue behind it.
* Ray (``RayBackend``, ``steppe sweep --ray ADDRESS`` or ``RAY_ADDRESS``): ``ray.init`` with
  the address (``auto``: a running cluster; ``local``: a new one on this machine, with
  ``workers`` CPUs; ``ray://host:port`` or ``host:port``), the trace put in the object store
  once, one task per replay. A task receives the trace's reference, not the trace, and each
  Ray worker process fetches and unpickles it once and keeps it for its later tasks. ``ray`` is
  imported on this path only; if this process is already connected to Ray, that connection is
  used and left open. Ray's workers must be able to import ``steppe`` (a local cluster's do).

>>> from steppe.twin.sweep import Sweep, TraceRequest
>>> sweep = Sweep(TraceRequest("philly-sample", limit=40), ("2x8:H100", "4x8:H100"), ("fifo", "las"))
>>> rows = run_sweep(sweep, sweep.trace.load(), InProcessBackend())
>>> [(r["cluster"], r["policy"], r["jobs"]) for r in rows]
[('2x8:H100', 'fifo', 40), ('2x8:H100', 'las', 40), ('4x8:H100', 'fifo', 40), ('4x8:H100', 'las', 40)]
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from steppe.twin.report import trace_provenance
from steppe.twin.sweep import ReplayOptions, Sweep, SweepPoint, replay_point
from steppe.twin.trace import Trace

Row = dict[str, Any]
OnDone = Callable[[int, int], None]
"""``on_done(replays_done, replays_total)``, after each replay ends (in completion order)."""


@dataclass(frozen=True)
class InProcessBackend:
    """The points one after another in this process."""

    def run(self, trace: Trace, points: list[SweepPoint], options: ReplayOptions, on_done: OnDone) -> list[Row]:
        rows = []
        for point in points:
            rows.append(replay_point(trace, point, options))
            on_done(len(rows), len(points))
        return rows


@dataclass(frozen=True)
class ProcessBackend:
    """A pool of ``workers`` spawned processes, each given the trace once (module docstring)."""

    workers: int

    def run(self, trace: Trace, points: list[SweepPoint], options: ReplayOptions, on_done: OnDone) -> list[Row]:
        workers = min(self.workers, len(points))
        if workers <= 1:  # one point (or one worker): a pool would only add its start
            return InProcessBackend().run(trace, points, options, on_done)
        # spawn, not fork: a fork of a process with threads (a progress bar's, Ray's) may hang
        context = multiprocessing.get_context("spawn")
        rows: list[Row | None] = [None] * len(points)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_keep_trace, initargs=(trace,)) as pool:
            futures: dict[Future[Row], int] = {
                pool.submit(_replay_with_kept_trace, point, options): i for i, point in enumerate(points)
            }
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    rows[futures[future]] = future.result()
                    on_done(done, len(points))
            except BaseException:
                pool.shutdown(cancel_futures=True)  # a failed replay (or ^C) stops the sweep
                raise
        return [row for row in rows if row is not None]


_kept_trace: Trace | None = None
"""A pool worker's trace, set once by ``_keep_trace`` when the worker starts."""


def _keep_trace(trace: Trace) -> None:
    global _kept_trace
    _kept_trace = trace


def _replay_with_kept_trace(point: SweepPoint, options: ReplayOptions) -> Row:
    assert _kept_trace is not None, "the pool's initializer gives each worker the trace"
    return replay_point(_kept_trace, point, options)


@dataclass(frozen=True)
class RayBackend:
    """One Ray task per replay at ``address`` (module docstring); ``workers`` sizes a ``local`` cluster."""

    address: str
    workers: int

    def run(self, trace: Trace, points: list[SweepPoint], options: ReplayOptions, on_done: OnDone) -> list[Row]:
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            extra: dict[str, Any] = {}
            if self.address == "local":
                extra = {"num_cpus": self.workers, "include_dashboard": False}
            ray.init(address=self.address, logging_level=logging.WARNING, **extra)
        try:
            trace_ref = ray.put(trace)
            replay_task = ray.remote(num_cpus=1)(_replay_on_ray)
            # the reference inside a list: Ray passes it as it is (the task fetches the trace once
            # per worker) instead of fetching and unpickling the trace for every task
            refs = [replay_task.remote([trace_ref], point, options) for point in points]
            waiting = list(refs)
            while waiting:
                finished, waiting = ray.wait(waiting, num_returns=1)
                on_done(len(refs) - len(waiting), len(refs))
            rows: list[Row] = ray.get(refs)
            return rows
        finally:
            if started_here:
                ray.shutdown()


_ray_trace: tuple[str, Trace] | None = None
"""A Ray worker's trace and its object id: the latest sweep's, fetched by its first task."""


def _replay_on_ray(trace_refs: list[Any], point: SweepPoint, options: ReplayOptions) -> Row:
    import ray

    global _ray_trace
    trace_id = trace_refs[0].hex()
    if _ray_trace is None or _ray_trace[0] != trace_id:
        _ray_trace = (trace_id, ray.get(trace_refs[0]))
    return replay_point(_ray_trace[1], point, options)


Backend = InProcessBackend | ProcessBackend | RayBackend


def choose_backend(workers: int | None, ray_address: str | None, environ: Mapping[str, str] = os.environ) -> Backend:
    """Ray when an address is given or ``RAY_ADDRESS`` is set; else ``workers`` processes (default: the
    CPUs this process may use), or this process alone for one worker."""
    address = ray_address or environ.get("RAY_ADDRESS") or None
    cpus = workers or available_cpus()
    if address is not None:
        return RayBackend(address, cpus)
    return InProcessBackend() if cpus == 1 else ProcessBackend(cpus)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system says, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every system
        return os.cpu_count() or 1


def run_sweep(sweep: Sweep, trace: Trace, backend: Backend, on_done: OnDone | None = None) -> list[Row]:
    """Every point's row, in the sweep's order, each with the trace's provenance (as ``simulate --json``)."""
    points = sweep.points()
    rows = backend.run(trace, points, sweep.options, on_done or _ignore)
    provenance = trace_provenance(trace)
    for row in rows:
        row["trace_provenance"] = provenance
    return rows


def _ignore(done: int, total: int) -> None:
    """No progress to show."""

"""A replay's memory: finished jobs' records are forgotten, their figures kept as packed numbers."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from builders import job

from steppe.core.cluster import Cluster
from steppe.core.job import JobState
from steppe.core.records import JobRecord
from steppe.twin import metrics
from steppe.twin.readers.synthetic import SyntheticSpec, generate_synthetic
from steppe.twin.replay import ReplayResult, replay
from steppe.twin.trace import Trace


@pytest.fixture(scope="module")
def busy() -> Trace:
    """Jobs that queue on 2 x 8 GPUs, a few too large to ever start (rejected by the gate)."""
    spec = SyntheticSpec(
        jobs=600, arrival_rate_per_h=90.0, tenants=3, gpu_sizes=(1, 4, 8, 32), gpu_probs=(0.6, 0.2, 0.18, 0.02), seed=4
    )
    return generate_synthetic(spec)


def _run(trace: Trace, policy: str = "easy-backfill", keep_jobs: bool = False) -> ReplayResult:
    return replay(trace, Cluster.uniform(2, 8, "H100"), policy, keep_jobs=keep_jobs)


def _same_summary(a: ReplayResult, b: ReplayResult) -> None:
    sa, sb = dict(a.summary), dict(b.summary)
    sa.pop("wall_s")
    sb.pop("wall_s")
    assert sa == sb


def test_a_replay_forgets_each_finished_job_and_keeps_its_figures(busy: Trace) -> None:
    lean, kept = _run(busy), _run(busy, keep_jobs=True)
    assert lean.summary["rejected"] > 0 and lean.summary["mean_wait_s"] > 0  # a workload that queues
    assert lean.state.jobs == {}  # every job ended, no record stays
    assert len(kept.state.jobs) == kept.summary["jobs"]
    assert lean.digest == kept.digest
    _same_summary(lean, kept)
    rows = {row[0]: row for row in lean.metrics.rows}
    assert rows == {row[0]: row for row in kept.metrics.rows}
    for job_id, rec in kept.state.jobs.items():
        row = rows[job_id]
        assert row[6:8] == (rec.first_start_s, rec.end_s)
        assert (row[10], row[11], row[3], row[1]) == (rec.executed_s, rec.state.value, rec.gpus, rec.spec.tenant)


def test_a_job_ended_by_its_walltime_is_forgotten_too() -> None:
    trace = Trace("t", [job(1, 1, runtime=100.0, walltime=60.0), job(2, 1, runtime=5.0, submit=1.0)])
    result = replay(trace, Cluster.uniform(1, 1, "H100"), "fifo")
    assert result.state.jobs == {}
    assert [(r[0], r[11], r[7]) for r in result.metrics.rows] == [
        (1, JobState.TIMEOUT.value, 60.0),
        (2, "COMPLETED", 65.0),
    ]


def test_rows_built_in_small_chunks_are_the_same(busy: Trace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _run(busy, "fifo")
    monkeypatch.setattr(metrics, "CHUNK", 7)  # rows (and the CSV) built 7 at a time
    chunked = _run(busy, "fifo")
    _same_summary(whole, chunked)
    assert chunked.metrics.rows == whole.metrics.rows
    assert chunked.metrics.tenants() == whole.metrics.tenants()
    for a, b in zip(whole.metrics.utilization_series(600.0), chunked.metrics.utilization_series(600.0), strict=True):
        np.testing.assert_array_equal(a, b)
    whole.metrics.write_jobs_csv(tmp_path / "whole.csv")
    chunked.metrics.write_jobs_csv(tmp_path / "chunked.csv")
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    lines = (tmp_path / "whole.csv").read_text().splitlines()
    assert lines[0].split(",") == list(metrics.JOB_COLUMNS)
    ids = [int(line.split(",")[0]) for line in lines[1:]]
    assert ids == sorted(ids) and len(ids) == whole.summary["jobs"]


def test_the_summary_is_the_same_after_more_jobs_finish() -> None:
    """Figures read mid-replay (cached) are rebuilt once more jobs finish."""
    collector = metrics.MetricsCollector(Cluster.uniform(1, 8, "H100"))
    trace = [job(i, 1, runtime=10.0 * i) for i in range(1, 4)]
    for i, spec in enumerate(trace):
        rec = JobRecord(spec, i + 1)
        collector.on_submit(rec, 0.0)
        rec.state, rec.first_start_s, rec.allocation = JobState.RUNNING, 0.0, ((0, 1),)
        collector.on_start(rec, 0.0)
        rec.state, rec.executed_s = JobState.COMPLETED, spec.runtime_s
        collector.on_stop(rec, spec.runtime_s)
        assert collector.summary()["jobs"] == i + 1
    assert collector.summary()["mean_jct_s"] == 20.0 and collector.summary()["states"] == {"COMPLETED": 3}
    assert collector.busy_series()[1].tolist() == [1, 0, 1, 0, 1, 0]


def test_memory_held_per_finished_job_is_small() -> None:
    """The replay keeps about 100 bytes per finished job (its figures and the busy-GPU series), not its record."""
    trace = generate_synthetic(SyntheticSpec(jobs=6000, arrival_rate_per_h=100.0, tenants=5, seed=2))
    cluster = Cluster.uniform(64, 8, "H100")  # about 300 of its 512 GPUs busy: few jobs in the hub at once
    replay(Trace("warm-up", trace.jobs[:50]), cluster, "fifo")  # modules loaded before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = replay(trace, cluster, "fifo", check_invariants=False)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert result.summary["jobs"] == 6000 and result.state.jobs == {}
    assert held / 6000 < 200, f"{held / 6000:.0f} bytes held per finished job"

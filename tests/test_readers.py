"""Trace readers on the real traces in ../shared/traces, the generic CSV round trip, the synthetic
generator, and one bad row per reader."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from steppe.core.cluster_config import cluster_from_dict, load_cluster
from steppe.core.errors import SteppeError, TraceError, UnknownNameError
from steppe.core.job import JobSpec, WorkloadClass
from steppe.twin.readers import (
    READERS,
    SyntheticSpec,
    derive_walltime,
    generate_synthetic,
    load_trace,
    openb_cluster_toml,
    parse_synthetic,
    read_alibaba,
    read_csv,
    read_openb_nodes,
    read_philly,
    read_swf,
    read_swf_logged_waits,
    write_csv,
)

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
PHILLY = TRACES / "philly" / "philly.csv"
KTH = TRACES / "kth-sp2" / "KTH-SP2-1996-2.1-cln.swf"
OPENB = TRACES / "alibaba-openb"


def _sorted(jobs: list[JobSpec]) -> bool:
    return all(a.submit_s <= b.submit_s for a, b in zip(jobs, jobs[1:], strict=False))


def test_registry_names_every_format() -> None:
    assert set(READERS) == {"philly", "swf", "alibaba", "csv", "synthetic"}


def test_philly_full_trace() -> None:
    trace = load_trace(f"philly:{PHILLY}")
    jobs = trace.jobs
    assert len(jobs) == 82_247
    assert _sorted(jobs) and jobs[0].submit_s == 0.0
    assert [j.job_id for j in jobs] == list(range(1, 82_248))
    assert len({j.tenant for j in jobs}) == 15
    assert all(j.walltime_s >= j.runtime_s and j.walltime_s % 3600 == 0 for j in jobs)
    assert trace.adjusted["walltime derived (none in trace)"] == 82_247
    assert any("walltime_s derived" in n for n in trace.notes)
    span = datetime(2017, 12, 22, 8, 2, 11) - datetime(2017, 9, 4, 10, 30, 41)  # the README's span
    assert jobs[-1].submit_s == span.total_seconds()
    assert Counter(j.gpus for j in jobs)[128] == 3
    # VC weights from philly_vc_nodes.csv; the four unlisted VCs get the median (32).
    assert trace.tenants["6214e9"].weight == 64 and trace.tenants["ed69ec"].weight == 8
    assert trace.tenants["23dbec"].weight == 32 and len(trace.tenants) == 15


def test_philly_limit_and_walltime_rule() -> None:
    trace = read_philly(PHILLY, walltime_factor=1.5, walltime_round_s=900.0, limit=100)
    assert len(trace) == 100
    assert all(j.walltime_s == derive_walltime(j.runtime_s, 1.5, 900.0) for j in trace.jobs)
    assert derive_walltime(0.0) == 3600.0 and derive_walltime(3600.0, 1.0, 3600.0) == 3600.0
    with pytest.raises(SteppeError, match="factor"):
        read_philly(PHILLY, walltime_factor=0.5)


def test_bundled_philly_sample_and_hub() -> None:
    trace = load_trace("philly-sample")
    assert len(trace) == 3000 and trace.jobs[0].submit_s == 0.0 and _sorted(trace.jobs)
    cluster = load_cluster("hub-sample")
    assert cluster.total_gpus == 64
    assert {j.tenant for j in trace.jobs} == set(cluster.tenants)
    assert max(j.gpus for j in trace.jobs) <= 64


def test_swf_kth() -> None:
    trace = load_trace(f"swf:{KTH}")
    assert len(trace) + sum(trace.dropped.values()) == 27_992
    assert len(trace) == 27_992  # the README: all remaining jobs have run time > 0
    assert _sorted(trace.jobs) and trace.jobs[0].submit_s == 0.0
    first = trace.jobs[0]
    assert (first.job_id, first.gpus, first.runtime_s, first.walltime_s) == (15, 4, 3477.0, 53940.0)
    assert (first.tenant, first.user) == ("g12", "u12")
    assert max(j.gpus for j in trace.jobs) == 100
    waits = read_swf_logged_waits(KTH)
    assert waits[15] == 192180.0 and set(waits) == {j.job_id for j in trace.jobs}


def test_swf_drops_and_derives(tmp_path: Path) -> None:
    path = tmp_path / "mini.swf"
    path.write_text(
        "; Version: 2.2\n"
        "1 100 5 50 4 -1 -1 4 600 -1 1 7 3 -1 -1 -1 -1 -1\n"
        "2 110 0 0 4 -1 -1 4 600 -1 0 7 3 -1 -1 -1 -1 -1\n"
        "3 120 0 30 -1 -1 -1 -1 600 -1 1 7 3 -1 -1 -1 -1 -1\n"
        "4 130 9 4000 -1 -1 -1 2 -1 -1 1 -1 -1 -1 -1 -1 -1 -1\n"
    )
    trace = read_swf(path)
    assert [j.job_id for j in trace.jobs] == [1, 4]
    assert trace.dropped == Counter({"run time <= 0": 1, "processors <= 0 (allocated and requested unknown)": 1})
    last = trace.jobs[1]
    assert (last.submit_s, last.gpus, last.walltime_s, last.tenant, last.user) == (
        30.0,
        2,
        10800.0,
        "unknown",
        "",
    )
    assert trace.adjusted["walltime derived (none in trace)"] == 1
    assert read_swf_logged_waits(path) == {1: 5.0, 4: 9.0}


def test_alibaba_default_pods() -> None:
    trace = load_trace(f"alibaba:{OPENB}")
    assert len(trace) + trace.dropped["CPU-only pod (num_gpu = 0)"] == 8_152
    assert trace.dropped["CPU-only pod (num_gpu = 0)"] == 1_088 and len(trace) == 7_064
    assert trace.adjusted["fractional GPU rounded up to a whole GPU"] == 3_078
    assert Counter(j.gpus for j in trace.jobs) == {1: 6_989, 2: 16, 4: 15, 8: 44}
    assert _sorted(trace.jobs) and trace.jobs[0].submit_s == 0.0
    qos = Counter(j.qos for j in trace.jobs)
    assert set(qos) == {"LS", "BE", "Burstable", "Guaranteed"}
    for job in trace.jobs:
        assert job.tenant == job.qos and job.preemptible == (job.qos == "BE")
        assert job.workload == (WorkloadClass.INFERENCE if job.qos == "LS" else WorkloadClass.TRAINING)
        assert job.walltime_s >= job.runtime_s >= 0


def test_alibaba_gpu_spec_variant() -> None:
    trace = read_alibaba(OPENB / "openb_pod_list_gpuspec33.csv")
    types = Counter(j.gpu_type for j in trace.jobs)
    assert set(types) == {None, "T4", "P100", "V100"}
    assert trace.adjusted["gpu_spec names a model Steppe does not know: constraint dropped"] > 0
    assert trace.adjusted["gpu_spec allows several models: constraint dropped"] > 0
    with pytest.raises(TraceError, match="no times"):
        read_alibaba(OPENB / "openb_pod_list_multigpu20.csv")


def test_openb_nodes_and_cluster_toml() -> None:
    nodes = read_openb_nodes(OPENB / "openb_node_list_all_node.csv")
    assert len(nodes) == 1_213 and sum(g for _n, g, _m in nodes) == 6_212
    text = openb_cluster_toml(OPENB)
    assert "GENERIC" in text and text.startswith("#")
    cluster = cluster_from_dict(tomllib.loads(text), "openb.toml")
    assert cluster.total_gpus == 6_212 and len(cluster.nodes) == 1_213
    assert cluster.gpus_by_type == {"GENERIC": 4_704, "T4": 842, "P100": 265, "V100": 399, "A10": 2}


def test_generic_csv_roundtrip(tmp_path: Path) -> None:
    jobs = [
        JobSpec(7, 0.0, 8, 3600.5, 7200.0, "kaznu", project="llm", gpu_type="H100", qos="high",
                preemptible=False, workload=WorkloadClass.INFERENCE, name="serve, v2", user="aida",
                deferrable=True, deadline_s=86400.25),
        JobSpec(3, 12.125, 1, 0.0, 60.0, "enu"),
    ]  # fmt: skip
    path = tmp_path / "jobs.csv"
    write_csv(jobs, path)
    assert load_trace(f"csv:{path}").jobs == jobs


def test_generic_csv_defaults(tmp_path: Path) -> None:
    path = tmp_path / "min.csv"
    path.write_text("tenant,gpus,runtime_s,submit_s,gpu_type\nb,2,100,1050,\na,1,5000,1000,h200\n")
    trace = read_csv(path)
    first, second = trace.jobs
    assert (first.job_id, first.submit_s, first.tenant, first.gpu_type, first.walltime_s) == (
        1,
        0.0,
        "a",
        "H200",
        10800.0,
    )
    assert (second.job_id, second.submit_s, second.gpu_type) == (2, 50.0, None)
    assert trace.adjusted["walltime derived (none in trace)"] == 2
    path.write_text("submit_s,gpus,runtime_s,tenant,colour\n0,1,1,a,red\n")
    with pytest.raises(TraceError, match="unknown column.*colour"):
        read_csv(path)


def test_synthetic_is_deterministic() -> None:
    spec = parse_synthetic("jobs=2000,rate=900,tenants=20,seed=3")
    assert spec == SyntheticSpec(jobs=2000, arrival_rate_per_h=900.0, tenants=20, seed=3)
    a, b = generate_synthetic(spec).jobs, generate_synthetic(spec).jobs
    assert a == b
    assert generate_synthetic(parse_synthetic("jobs=2000,rate=900,tenants=20,seed=4")).jobs != a
    assert load_trace("synthetic:jobs=500,rate=900,tenants=20", seed=3).jobs == a[:500]
    assert load_trace("synthetic:jobs=2000,rate=900,tenants=20,seed=3", limit=10).jobs == a[:10]
    assert a[0].submit_s == 0.0 and _sorted(a)
    assert {j.tenant for j in a} <= {f"t{k:02d}" for k in range(1, 21)}
    assert all(j.walltime_s >= j.runtime_s >= 1 for j in a)
    counts = Counter(j.tenant for j in a)
    assert counts["t01"] > counts["t20"]


def test_synthetic_large_and_size_mix() -> None:
    trace = generate_synthetic(SyntheticSpec(jobs=200_000, seed=1))
    share = Counter(j.gpus for j in trace.jobs)[1] / len(trace)
    assert 0.92 < share < 0.94
    assert max(j.runtime_s for j in trace.jobs) <= 30 * 86400


def test_synthetic_arrivals_follow_daily_and_weekly_cycles() -> None:
    plain = SyntheticSpec(jobs=60_000, arrival_rate_per_h=120.0, seed=5)  # ~3 weeks
    flat = generate_synthetic(plain).jobs
    daily = generate_synthetic(replace(plain, diurnal=0.5)).jobs
    weekly = generate_synthetic(replace(plain, weekly=0.6)).jobs
    # the same draws as the plain process: without cycles nothing changes, with them only the times
    assert generate_synthetic(replace(plain, diurnal=0.0, weekly=0.0)).jobs == flat
    assert [(j.gpus, j.runtime_s, j.tenant) for j in daily] == [(j.gpus, j.runtime_s, j.tenant) for j in flat]
    for jobs in (flat, daily, weekly):
        assert jobs[0].submit_s == 0.0 and _sorted(jobs)
        span_h = jobs[-1].submit_s / 3600.0
        assert 0.93 < len(jobs) / span_h / 120.0 < 1.07  # the mean rate stays the spec's

    def hour_counts(jobs: list[JobSpec]) -> Counter[int]:
        return Counter(int(j.submit_s // 3600) % 24 for j in jobs)

    by_hour = hour_counts(daily)
    afternoon, night = sum(by_hour[h] for h in (13, 14, 15)), sum(by_hour[h] for h in (1, 2, 3))
    assert 2.4 < afternoon / night < 3.6  # (1 + 0.5 cos(~0)) / (1 - 0.5 cos(~0)) ~ 3
    flat_by_hour = hour_counts(flat)
    assert 0.85 < sum(flat_by_hour[h] for h in (13, 14, 15)) / sum(flat_by_hour[h] for h in (1, 2, 3)) < 1.15
    by_day = Counter(int(j.submit_s // 86400) % 7 for j in weekly)  # day 0 is a Monday
    midweek, weekend = by_day[2] + by_day[3] + by_day[4], by_day[5] + by_day[6] + by_day[0]
    assert midweek / weekend > 2.0
    spec = parse_synthetic("jobs=3000,rate=200,diurnal=0.3,weekly=0.6,seed=2")
    assert (spec.diurnal, spec.weekly) == (0.3, 0.6)
    cycled = generate_synthetic(spec)
    assert load_trace("synthetic:jobs=100,rate=200,diurnal=0.3,weekly=0.6", seed=2).jobs == cycled.jobs[:100]
    assert "daily +-30%, weekly +-60% cycles" in cycled.notes[0]
    with pytest.raises(SteppeError, match="diurnal \\+ weekly must be < 1"):
        parse_synthetic("diurnal=0.5,weekly=0.5")
    with pytest.raises(SteppeError, match="must be >= 0"):
        parse_synthetic("diurnal=-0.1")


def test_load_trace_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError) as info:
        load_trace("nope:somewhere")
    assert "philly" in info.value.valid and "philly-sample" in str(info.value)
    with pytest.raises(SteppeError, match="no-such.csv"):
        load_trace(f"philly:{tmp_path / 'no-such.csv'}")
    with pytest.raises(UnknownNameError, match="colour"):
        load_trace("synthetic:jobs=10,colour=3")
    with pytest.raises(SteppeError, match="rate"):
        load_trace("synthetic:rate=fast")


PHILLY_HEAD = "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
SWF_OK = "1 100 5 50 4 -1 -1 4 600 -1 1 7 3 -1 -1 -1 -1 -1\n"
POD_HEAD = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
    "p0,1000,1024,1,1000,,LS,Running,0,100,0\n"
)
CSV_HEAD = "submit_s,gpus,runtime_s,tenant\n0,1,10,a\n"
CSV_WORKLOAD = "submit_s,gpus,runtime_s,tenant,workload\n0,1,10,a,\n"


@pytest.mark.parametrize(
    ("reader", "name", "text", "line", "field"),
    [
        (read_philly, "philly.csv", PHILLY_HEAD + "2017-10-09 07:01:56,abc,1,66.0,11cb48\n", 3, "duration"),
        (read_philly, "philly.csv", PHILLY_HEAD + "2017-10-09 07:01:56,60.0,0,0.0,11cb48\n", 3, "num_gpus"),
        (read_philly, "philly.csv", PHILLY_HEAD + "2017-13-09 07:01:56,60.0,1,60.0,11cb48\n", 3, "timestamp"),
        (read_philly, "philly.csv", PHILLY_HEAD + "2017-10-09 7:01:56,60.0,1,60.0,11cb48\n", 3, "timestamp"),
        (read_philly, "philly.csv", PHILLY_HEAD + "\n2017-10-09 07:01:56,60.0,1,60.0\n", 4, "columns"),
        (read_swf, "kth.swf", "; header\n" + SWF_OK + SWF_OK.replace("1 100 5", "2 101 x"), 3, "wait time"),
        (read_swf, "kth.swf", SWF_OK + "2 101 5 50 4\n", 2, "fields"),
        (read_alibaba, "pods.csv", POD_HEAD + "p1,1000,1024,two,1000,,LS,Running,0,100,0\n", 3, "num_gpu"),
        (read_alibaba, "pods.csv", POD_HEAD + "p1,1,1,1,1000,,LS,Running,0,50,60\n", 3, "deletion_time"),
        (read_csv, "jobs.csv", CSV_HEAD + "5,1,-3,a\n", 3, "runtime_s"),
        (read_csv, "jobs.csv", CSV_HEAD + "5,1,3,a,extra\n", 3, "columns"),
        (read_csv, "jobs.csv", CSV_WORKLOAD + "5,1,3,a,gaming\n", 3, "workload"),
    ],
)  # fmt: skip
def test_bad_row_names_file_line_and_field(
    tmp_path: Path, reader: Callable[[Path], object], name: str, text: str, line: int, field: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceError) as info:
        reader(path)
    message = str(info.value)
    assert name in message and f":{line}:" in message and field in message
    assert info.value.line == line

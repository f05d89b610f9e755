"""Sweeps: the points and their order, the same rows from every backend, the outputs, the TOML
config, and bad input refused before any replay."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from steppe.cli.main import app
from steppe.twin.sweep import Sweep, SweepPoint, TraceRequest
from steppe.twin.sweep_config import SweepInputError, load_checked_trace, sweep_from_inputs
from steppe.twin.sweep_run import InProcessBackend, ProcessBackend, RayBackend, choose_backend, run_sweep
from steppe.twin.trace import Trace

# small clusters so that jobs queue, a cap that binds on the larger one, 150 jobs: 8 short replays
SMALL = {"trace": "philly-sample", "limit": 150, "clusters": "2x8:H100,4x8:H100", "policies": "fifo,las"}
SMALL_CAPS = {**SMALL, "power_caps": "none,18kW"}


def without_wall_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as they must match across backends: all but the replays' own wall times."""
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


@pytest.fixture(scope="module")
def small_sweep() -> Sweep:
    return sweep_from_inputs(SMALL_CAPS)


@pytest.fixture(scope="module")
def small_trace(small_sweep: Sweep) -> Trace:
    return load_checked_trace(small_sweep)


@pytest.fixture(scope="module")
def rows_in_process(small_sweep: Sweep, small_trace: Trace) -> list[dict[str, Any]]:
    return run_sweep(small_sweep, small_trace, InProcessBackend())


def test_points_are_the_product_in_the_sweep_order() -> None:
    sweep = Sweep(
        TraceRequest("philly-sample"),
        clusters=("2x8:H100", "4x8:H100"),
        policies=("fifo", "las", "srtf"),
        power_caps=(None, "18kW"),
        sites=(None, "almaty"),
    )
    points = sweep.points()
    assert len(points) == 2 * 3 * 2 * 2
    assert points[:4] == [
        SweepPoint("2x8:H100", "fifo", None, None),
        SweepPoint("2x8:H100", "fifo", None, "almaty"),
        SweepPoint("2x8:H100", "fifo", "18kW", "astana"),  # a cap needs a site: the default one
        SweepPoint("2x8:H100", "fifo", "18kW", "almaty"),
    ]
    assert [p.policy for p in points[:12:4]] == ["fifo", "las", "srtf"]
    assert {p.cluster for p in points[12:]} == {"4x8:H100"}


def test_rows_come_back_in_the_sweep_order_with_the_point_and_replay_keys(
    small_sweep: Sweep, rows_in_process: list[dict[str, Any]]
) -> None:
    points = small_sweep.points()
    assert [(r["cluster"], r["policy"], r["power_cap"], r["site"]) for r in rows_in_process] == [
        (p.cluster, p.policy, p.power_cap, p.site) for p in points
    ]
    assert all(r["jobs"] + r["rejected"] == 150 and r["unfinished"] == 0 for r in rows_in_process)
    capped = [r for r in rows_in_process if r["power_cap"] == "18kW"]
    assert capped and all(r["power_cap_w"] == 18e3 and r["power_cap_violations"] == 0 for r in capped)
    assert all("facility_energy_kwh" not in r for r in rows_in_process if r["power_cap"] is None)
    # the cap binds somewhere: not every capped replay is its uncapped twin
    digests = {(r["cluster"], r["policy"], r["power_cap"]): r["event_digest"] for r in rows_in_process}
    assert any(digests[c, p, None] != digests[c, p, "18kW"] for c, p, _ in digests)


def test_two_worker_processes_give_the_same_rows(
    small_sweep: Sweep, small_trace: Trace, rows_in_process: list[dict[str, Any]]
) -> None:
    done: list[int] = []
    rows = run_sweep(small_sweep, small_trace, ProcessBackend(2), lambda n, total: done.append(n))
    assert without_wall_time(rows) == without_wall_time(rows_in_process)
    assert done == list(range(1, 9))


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A real Ray cluster on this machine, for this module only (never a shared one), shut down after."""
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        logging_level=logging.WARNING,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_tasks_give_the_same_rows(
    local_ray: None, small_sweep: Sweep, small_trace: Trace, rows_in_process: list[dict[str, Any]]
) -> None:
    import ray

    done: list[int] = []
    rows = run_sweep(small_sweep, small_trace, RayBackend("local", 2), lambda n, total: done.append(n))
    assert without_wall_time(rows) == without_wall_time(rows_in_process)
    assert done == list(range(1, 9))
    assert ray.is_initialized()  # a connection the sweep did not open stays open


def test_the_backend_follows_the_options_and_ray_address() -> None:
    assert choose_backend(1, None, {}) == InProcessBackend()
    assert choose_backend(3, None, {}) == ProcessBackend(3)
    assert choose_backend(2, "auto", {}) == RayBackend("auto", 2)
    assert choose_backend(2, None, {"RAY_ADDRESS": "10.0.0.5:6379"}) == RayBackend("10.0.0.5:6379", 2)
    assert choose_backend(2, "local", {"RAY_ADDRESS": "auto"}) == RayBackend("local", 2)


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands below run in worker processes whatever the environment says."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_cli_json_has_every_simulate_key_and_writes_csv_png_json(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    axes = ["--clusters", "2x8:H100", "--policies", "fifo,easy-backfill", "--power-caps", "none,18kW"]
    result = invoke("sweep", "--trace", "philly-sample", "--limit", "120", *axes, "--workers", "1", "--json",
                    "--out", str(out))  # fmt: skip
    rows = json.loads(result.stdout)
    assert [(r["policy"], r["power_cap"], r["site"]) for r in rows] == [
        ("fifo", None, None),
        ("fifo", "18kW", "astana"),
        ("easy-backfill", None, None),
        ("easy-backfill", "18kW", "astana"),
    ]
    one_point = ["--cluster", "2x8:H100", "--policy", "easy-backfill", "--power-cap", "18kW", "--json"]
    single = json.loads(invoke("simulate", "--trace", "philly-sample", "--limit", "120", *one_point).stdout)
    assert {k: v for k, v in rows[3].items() if k not in ("wall_s", "power_cap")} == {
        k: v for k, v in single.items() if k != "wall_s"
    } | {"p99_wait_s": rows[3]["p99_wait_s"]}
    assert rows[3]["power_cap"] == "18kW" and single["power_cap_w"] == 18e3

    assert json.loads((out / "sweep.json").read_text()) == rows
    with (out / "sweep.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["policy"], r["power_cap"], r["site"]) for r in table][:2] == [("fifo", "none", "none"),
                                                                            ("fifo", "18kW", "astana")]  # fmt: skip
    assert float(table[3]["mean_jct_s"]) == rows[3]["mean_jct_s"] and table[0]["facility_energy_kwh"] == ""
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "sweep.png").stat().st_size > 20_000


def test_cli_table() -> None:
    result = invoke("sweep", "--trace", "philly-sample", "--limit", "60", "--clusters", "2x8:H100", "--policies",
                    "fifo", "--sites", "almaty", "--workers", "1")  # fmt: skip
    assert "2x8:H100" in result.stdout and "p99 wait" in result.stdout and "facility MWh" in result.stdout


def test_toml_config_and_the_command_line_over_it(tmp_path: Path) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text(
        'trace = "philly-sample"\nlimit = 100\nclusters = ["2x8:H100", "3x8:H100"]\n'
        'policies = ["multifactor"]\npower_caps = ["none", "20kW"]\nsites = ["none"]\npower_policy = "hold"\n'
    )
    sweep = sweep_from_inputs({}, config)
    assert sweep.trace == TraceRequest("philly-sample", limit=100)
    assert sweep.options.power_policy == "hold"
    assert [(p.cluster, p.power_cap) for p in sweep.points()] == [
        ("2x8:H100", None),
        ("2x8:H100", "20kW"),
        ("3x8:H100", None),
        ("3x8:H100", "20kW"),
    ]
    overridden = sweep_from_inputs({"policies": "fifo,las", "limit": 10}, config)
    assert overridden.policies == ("fifo", "las") and overridden.trace.limit == 10
    assert overridden.clusters == sweep.clusters


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"policies": "fifo,lottery"}, "--policies: unknown policy 'lottery'; valid: easy-backfill, fifo"),
        ({"clusters": "2x8:H100,8xx8:H100"}, "--clusters: 8xx8:H100: no such file, and not a shorthand like 80x8"),
        ({"clusters": "2x8:Z9"}, "--clusters: 2x8:Z9: gpu_type: "),
        ({"power_caps": "none,500"}, "--power-caps: bad power '500': a number and a unit W, kW, MW or GW, or none"),
        ({"power_caps": "0kW"}, "--power-caps: a power cap must be more than zero, got '0kW'"),
        ({"power_caps": "1kW"}, "--power-caps: 1kW for 2x8:H100 at astana: the facility cap falls to"),
        ({"sites": "mars"}, "--sites: mars: no such file; bundled sites:"),
        ({"policies": "fifo,,las"}, "--policies: an empty name in 'fifo,,las'"),
        ({"limit": 0}, "--limit: expected a whole number of at least 1, got 0 (e.g. --limit 20000)"),
        ({"power_policy": "pray"}, "--power-policy: expected one of cap, hold, got 'pray' (e.g. --power-policy cap)"),
        ({"cap_floor": 0.1}, "--cap-floor: expected a fraction of TDP within 0.4-1.0, got 0.1"),
        ({"start": "2026-01-01T00:30"}, "--start: expected a date and whole hour like 2026-01-01T00:00"),
        ({"clusters": None}, "--clusters: required, in the command or the --config file (e.g. --clusters 60x8:H200"),
    ],
)
def test_bad_input_is_refused_naming_the_option_with_an_example(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepInputError) as err:
        sweep_from_inputs({"trace": "philly-sample", "clusters": "2x8:H100", **inputs})
    assert str(err.value).startswith(message)
    assert "(e.g. " in str(err.value) and "\n" not in str(err.value)


def test_bad_config_values_name_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text('trace = "philly-sample"\nclusters = "2x8:H100"\n')
    with pytest.raises(SweepInputError, match=r"sweep.toml: clusters: expected a list of names, got '2x8:H100' "
                                              r"\(e.g. clusters = \[\"60x8:H200\", \"80x8:H200\"\]\)"):  # fmt: skip
        sweep_from_inputs({}, config)
    config.write_text('trace = "philly-sample"\nclusters = ["2x8:H100"]\npolicy = "fifo"\n')
    with pytest.raises(SweepInputError, match=r"sweep.toml: policy: unknown key; known: cap_floor, check_invariants"):
        sweep_from_inputs({}, config)


def test_the_command_refuses_bad_input_in_one_line_before_any_replay(tmp_path: Path) -> None:
    out = tmp_path / "never"
    code = "import sys; from steppe.cli.main import main; sys.argv[0] = 'steppe'; main()"
    args = ["sweep", "--trace", "philly-sample", "--clusters", "2x8:H100", "--policies", "fifo,lottery",
            "--out", str(out)]  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().startswith("error: --policies: unknown policy 'lottery'")
    assert r.stderr.strip().endswith("(e.g. --policies fifo,easy-backfill)") and r.stderr.count("\n") == 1
    assert not out.exists()

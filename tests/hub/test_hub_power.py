"""The live hub under a facility power cap: the twin's power rules in the live loop.

In process (``LoopHarness``: temporary SQLite, mock executor, fake clock): a job that would take
the facility over its cap starts under a lower GPU cap, running jobs are capped to make room, and
a job that still does not fit waits ``PowerCap``; the twin, given the same jobs at the same
moments of the same site timeline, decides the same starts and caps. Also: the site clock (POSIX
seconds onto the site's timeline, in the site file's time zone), the facility invariant (logged,
never fatal), ``serve --power-cap``/``--cap-floor`` and the power gauges of ``/metrics``.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.cli.main import app as cli_app
from steppe.control.harness import LoopHarness
from steppe.core.cluster import Cluster
from steppe.core.job import JobSpec
from steppe.core.records import JobRecord
from steppe.energy.fleet import FleetPower
from steppe.energy.site import SITES_DIR
from steppe.power import build_power, hour_start, live_power
from steppe.scheduling.power import ConstantLimits, PowerBudget
from steppe.twin.replay import replay
from steppe.twin.trace import Trace

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

T0 = 1_800_000_000.0  # the harness clock's start: 2027-01-15 13:00 at astana (UTC+5), a whole hour
NODES, GPU = 3, "H200"
Decision = tuple[str, int, float, float]  # (start | recap, job id, cap fraction, seconds from T0)


class Decisions:
    """A state listener recording every start and cap change, with its time from ``t0_s``."""

    def __init__(self, t0_s: float) -> None:
        self.t0_s = t0_s
        self.seen: list[Decision] = []

    def on_submit(self, rec: JobRecord, now: float) -> None:
        pass

    def on_start(self, rec: JobRecord, now: float) -> None:
        self.seen.append(("start", rec.job_id, rec.cap_fraction, now - self.t0_s))

    def on_stop(self, rec: JobRecord, now: float) -> None:
        pass

    def on_recap(self, rec: JobRecord, now: float) -> None:
        self.seen.append(("recap", rec.job_id, rec.cap_fraction, now - self.t0_s))


def per_gpu_w(cap: float) -> float:
    probe = JobRecord(JobSpec(0, 0.0, 1, 1.0, 1.0, "kaznu"), 0)
    return FleetPower(Cluster.uniform(1, 8, GPU)).added_w(probe, GPU, cap)


def scenario_cap_w() -> float:
    """A facility cap whose IT budget at T0 holds 8 GPUs at full power plus 4 at the 0.6 floor, and 1 W."""
    cluster = Cluster.uniform(NODES, 8, GPU)
    probe = live_power(cluster, "astana", T0, power_cap_w=1e9)
    assert probe.budget is not None
    budget_w = 8 * per_gpu_w(1.0) + 4 * per_gpu_w(0.6) + 1.0
    return probe.budget.limits.pue_at(T0) * (probe.budget.static_it_w + budget_w)


# (job id, submitted at s from T0, GPUs): A fills 8 GPUs at full power; B fits only at the floor; C
# fits once A is capped; D (8 GPUs, which are free) does not fit even then: it waits PowerCap.
JOBS = [(1, 0.0, 8), (2, 0.0, 4), (3, 10.0, 2), (4, 10.0, 8)]
WALLTIME_S = 7200.0


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[LoopHarness]:
    cluster = Cluster.uniform(NODES, 8, GPU)
    power = live_power(cluster, "astana", T0, power_cap_w=scenario_cap_w())
    h = LoopHarness(tmp_path, nodes=NODES, gpus=8, gpu_type=GPU, power=power.budget)
    yield h
    h.close()


def run_live(h: LoopHarness) -> list[Decision]:
    seen = Decisions(T0)
    h.loop.state.listeners.append(seen)
    for at_s in sorted({at for _, at, _ in JOBS}):  # submit, then one step, at each moment
        h.clock.advance(T0 + at_s - h.clock())
        for job_id, _, gpus in (j for j in JOBS if j[1] == at_s):
            assert h.submit(gpus=gpus, walltime_s=WALLTIME_S) == job_id
        assert h.step()
    return seen.seen


def run_twin() -> list[Decision]:
    cluster = Cluster.uniform(NODES, 8, GPU)
    power = build_power(cluster, "astana", power_cap_w=scenario_cap_w(), start=hour_start(T0, 5.0))
    jobs = [JobSpec(i, at, gpus, 5000.0, WALLTIME_S, "kaznu", project="kaznu/nlp") for i, at, gpus in JOBS]
    seen = Decisions(0.0)
    replay(Trace("power scenario", jobs), cluster, "easy-backfill", power=power, listeners=[seen])
    return [d for d in seen.seen if d[3] <= JOBS[-1][1]]  # the decisions up to the last submission


def test_live_loop_starts_capped_caps_to_make_room_and_holds_with_power_cap(
    harness: LoopHarness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="steppe.hub"):
        seen = run_live(harness)
    assert not caplog.records  # the facility invariant held after every step
    starts = {job_id: cap for kind, job_id, cap, _ in seen if kind == "start"}
    assert starts[1] == 1.0  # A: full power
    assert starts[2] == pytest.approx(0.6)  # B: only at the floor
    assert 3 in starts  # C: after A was capped to make room
    assert [(job_id, round(cap, 6), at) for kind, job_id, cap, at in seen if kind == "recap"] == [(1, 0.6, 10.0)]
    assert harness.executor.caps == {1: pytest.approx(0.6)}  # the loop told the executor
    assert harness.job(4)["state"] == "PENDING" and harness.job(4)["reason"] == "PowerCap"
    assert harness.loop.power is not None
    assert harness.loop.state.power_draw_w <= harness.loop.power.it_budget_w(harness.clock()) + 1e-6


def test_the_twin_decides_the_same_starts_and_caps(harness: LoopHarness) -> None:
    live = run_live(harness)
    twin = run_twin()
    assert [d[:2] for d in live] == [d[:2] for d in twin]
    assert [d[2:] for d in live] == [pytest.approx(d[2:]) for d in twin]


def test_a_job_that_fits_under_the_cap_starts_at_full_power(tmp_path: Path) -> None:
    power = live_power(Cluster.uniform(NODES, 8, GPU), "astana", T0, power_cap_w=1e6)
    h = LoopHarness(tmp_path, nodes=NODES, gpus=8, gpu_type=GPU, power=power.budget)
    a = h.submit(gpus=8)
    assert h.step()
    assert h.job(a)["state"] == "RUNNING" and h.executor.caps == {}
    h.close()


def test_a_broken_facility_invariant_is_logged_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = FleetPower(Cluster.uniform(1, 8, GPU))
    below_idle = PowerBudget(fleet, ConstantLimits(fleet.static_it_w() / 2), fleet.static_it_w())  # nothing can fix it
    h = LoopHarness(tmp_path, gpus=8, gpu_type=GPU, power=below_idle)
    a = h.submit(gpus=1)
    with caplog.at_level(logging.ERROR, logger="steppe.hub"):
        assert h.step()
    assert any("facility power over its cap" in r.getMessage() for r in caplog.records)
    assert h.loop.errors == 0
    assert h.job(a)["reason"] == "PowerCap"
    h.close()


# -- the site clock ---------------------------------------------------------------------------------
def local_s(text: str, offset_h: float) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone(timedelta(hours=offset_h))).timestamp()


@pytest.mark.parametrize("offset_h", [5.0, 3.0, -3.5])
def test_the_timeline_starts_at_the_site_local_hour_and_its_windows_follow_the_site_zone(
    tmp_path: Path, offset_h: float
) -> None:
    text = (SITES_DIR / "astana.toml").read_text().replace("utc_offset_h = 5", f"utc_offset_h = {offset_h}")
    text = text.replace('time_zone = "Asia/Almaty"', "#")  # the older form: a fixed offset, no zone
    site_file = tmp_path / "site.toml"
    site_file.write_text(text)
    started = local_s("2027-01-15T16:42:10", offset_h)
    setup = live_power(Cluster.uniform(1, 8, GPU), str(site_file), started, power_cap_w=1e6)
    assert setup.budget is not None
    limits = setup.budget.limits
    assert setup.timeline.start_utc_s == local_s("2027-01-15T16:00", offset_h)
    evening = local_s("2027-01-15T17:00", offset_h)  # the winter evening window, 17:00-21:00 local
    assert limits.cap_w_at(evening - 1) == pytest.approx(1e6)
    assert limits.cap_w_at(evening) == pytest.approx(0.7e6)
    assert limits.next_change_s(started) == evening  # POSIX seconds: the loop wakes then
    assert limits.pue_at(started) == setup.timeline.pue_at(started - setup.timeline.start_utc_s)


# -- serve options and /metrics ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "hint"),
    [(["--power-cap", "lots"], "--power-cap"), (["--power-cap", "0kW"], "--power-cap"),
     (["--power-cap", "500kW", "--cap-floor", "0.2"], "--cap-floor")],
)  # fmt: skip
def test_serve_refuses_a_bad_power_cap_or_floor(args: list[str], hint: str) -> None:
    result = CliRunner().invoke(cli_app, ["serve", *args])
    assert result.exit_code == 2
    assert hint in result.output


def test_serve_passes_the_power_cap_to_the_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    got: list[HubSettings] = []
    monkeypatch.setattr("steppe.api.server.serve", lambda settings, *rest: got.append(settings))
    result = CliRunner().invoke(cli_app, ["serve", "--data-dir", str(tmp_path), "--power-cap", "500kW",
                                          "--cap-floor", "0.7", "--site", "almaty"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (got[0].power_cap_w, got[0].cap_floor, got[0].site) == (500e3, 0.7, "almaty")


def scrape(tmp_path: Path, **settings: Any) -> tuple[dict[str, float], Hub]:
    hub = Hub.open(HubSettings(data_dir=tmp_path / "data", gpus=8, gpu_type=GPU, review_gate=False, single_user=True,
                               executor="mock", public_metrics=True, **settings))  # fmt: skip
    with TestClient(create_app(hub)) as client:
        r = client.get("/metrics")
    assert r.status_code == 200, r.text
    values = {}
    for line in r.text.splitlines():
        m = re.fullmatch(r"(hub_facility_power_watts|hub_facility_power_cap_watts|hub_pue) (\S+)", line)
        if m:
            values[m[1]] = float(m[2])
    return values, hub


def test_metrics_show_facility_power_cap_and_pue_under_a_power_cap(tmp_path: Path) -> None:
    before = time.time()
    values, hub = scrape(tmp_path, power_cap_w=500e3)
    after = time.time()
    budget = hub.loop.power
    assert budget is not None
    assert set(values) == {"hub_facility_power_watts", "hub_facility_power_cap_watts", "hub_pue"}
    assert values["hub_facility_power_cap_watts"] in {budget.limits.cap_w_at(before), budget.limits.cap_w_at(after)}
    assert values["hub_facility_power_cap_watts"] in {500e3, 350e3}  # astana's winter evening window: 70 %
    assert values["hub_pue"] in {budget.limits.pue_at(before), budget.limits.pue_at(after)}
    assert values["hub_facility_power_watts"] == pytest.approx(values["hub_pue"] * budget.static_it_w)  # idle


def test_metrics_have_no_power_gauges_without_a_power_cap(tmp_path: Path) -> None:
    values, hub = scrape(tmp_path)
    assert hub.loop.power is None
    assert values == {}


def test_a_restart_counts_adopted_jobs_power_and_sheds_to_the_cap(
    harness: LoopHarness, caplog: pytest.LogCaptureFixture
) -> None:
    run_live(harness)
    before_w = harness.loop.state.power_draw_w
    running = set(harness.loop.state.running)
    harness.restart()  # the hub restarts; its jobs run on (their caps were not stored)
    assert set(harness.loop.state.running) == running
    assert harness.loop.state.power_draw_w >= before_w > 0  # counted at full power, never as drawing nothing
    with caplog.at_level(logging.ERROR, logger="steppe.hub"):
        assert harness.step(1.0)  # the first cycle caps them back under the facility cap
    assert not caplog.records
    assert harness.job(4)["state"] == "PENDING"


def test_the_live_api_refuses_a_job_that_could_never_fit_under_the_cap(tmp_path: Path) -> None:
    """The submission gate's power ceiling, as the twin's: refused at once (422), not held for ever."""
    cluster = Cluster.uniform(1, 8, GPU)
    probe = live_power(cluster, "astana", time.time(), power_cap_w=1e9)
    assert probe.budget is not None
    hub = None
    for gpus_allowed in (7.5, 7.0, 6.5, 6.0, 5.5):  # the lowest cap the site's winter windows still allow
        cap_w = 1.1 * (probe.budget.static_it_w + gpus_allowed * per_gpu_w(0.6))
        try:
            hub = Hub.open(HubSettings(data_dir=tmp_path / f"d{gpus_allowed}", gpus=8, gpu_type=GPU,
                                       review_gate=False, executor="mock", power_cap_w=cap_w))  # fmt: skip
            break
        except Exception:
            continue
    assert hub is not None and hub.power_ceiling is not None
    with TestClient(create_app(hub), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {(hub.settings.data_dir / 'admin-token').read_text().strip()}"
        assert client.post("/api/v1/orgs", json={"name": "kaznu", "country": "KZ"}).status_code == 201
        assert client.post("/api/v1/orgs/kaznu/projects", json={"name": "nlp"}).status_code == 201
        job = {"project": "kaznu/nlp", "argv": ["/bin/true"]}
        refused = client.post("/api/v1/jobs", json={**job, "gpus": 8})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "gpus"
        assert "even at its lowest GPU cap" in refused.json()["errors"][0]["message"]
        assert client.post("/api/v1/jobs", json={**job, "gpus": 1}).status_code == 201

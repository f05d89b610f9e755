"""Energy models against the figures in reference/hub-facts.md (sections cited next to each check)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from steppe.core.errors import ConfigError
from steppe.core.gpu import gpu_type
from steppe.core.job import WorkloadClass
from steppe.energy import (
    AIR_COOLING,
    LIQUID_COOLING,
    CapSchedule,
    CapWindow,
    CarbonSpec,
    SiteClimate,
    SiteTimeline,
    TariffSpec,
    binding_slowdown_factor,
    bundled_sites,
    capped_power_w,
    carbon_series_g_per_kwh,
    cop,
    gpu_energy_ratio,
    gpu_power_w,
    host_power_w,
    hourly_temperature,
    job_gpu_power_w,
    job_power_w,
    job_slowdown_factor,
    kzt_to_usd,
    load_site,
    node_idle_power_w,
    power_cdf_stats,
    pue,
    pue_array,
    slowdown_factor,
    tariff_series_kzt_per_kwh,
    throughput_ratio,
)
from steppe.energy.site import SITES_DIR

UTC_2026 = datetime(2026, 1, 1, tzinfo=UTC)
ACME_DIR = Path(__file__).resolve().parents[2] / "shared" / "traces" / "acme-power"
HOUR = 3600.0


def _utc_s(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


# --- facility (hub-facts 0.2 crac.cop, section 2 PUE model) -------------------------------------


def test_cop_at_20c_is_3_19() -> None:
    assert cop(20.0) == pytest.approx(3.19, abs=0.005)


def test_air_pue_free_cooling_and_full_chiller() -> None:
    assert pue(-20.0, AIR_COOLING) == pytest.approx(1.08)
    assert 1.37 <= pue(30.0, AIR_COOLING) <= 1.41  # hub-facts 2: 1.37-1.41 with chillers
    assert pue(18.0, AIR_COOLING) < pue(20.5, AIR_COOLING) < pue(23.0, AIR_COOLING)  # linear band


def test_astana_air_pue_january_and_july_afternoon() -> None:
    tl = SiteTimeline(load_site("astana"), start=UTC_2026, seed=0)
    arrays = tl.arrays(8760)
    january = arrays.pue[: 31 * 24]
    assert 1.08 <= january.mean() <= 1.10
    # July 15:00 local = 10:00 UTC; hours from 1 Jan to 1 Jul 2026 = 181 days
    july_afternoons = arrays.pue[181 * 24 + 10 : 212 * 24 : 24]
    assert len(july_afternoons) == 31
    assert july_afternoons.mean() > 1.3
    assert tl.pue_at((181 + 14) * 24 * HOUR + 10 * HOUR) == arrays.pue[195 * 24 + 10]
    # without weather noise the mean July afternoon (20.8 + 6.5 deg C) is on full chillers
    calm = SiteClimate(load_site("astana").climate.monthly_mean_c, 6.5, 0.0)
    t = hourly_temperature(calm, datetime(2026, 7, 15, 10, tzinfo=UTC), 1, seed=0)
    assert t[0] == pytest.approx(27.3, abs=0.3)
    assert pue(float(t[0]), AIR_COOLING) > 1.3


@pytest.mark.parametrize("site", ["astana", "almaty"])
def test_liquid_pue_year_round_at_most_1_15(site: str) -> None:
    for seed in range(3):
        t = hourly_temperature(load_site(site).climate, UTC_2026, 8760, seed)
        values = pue_array(t, LIQUID_COOLING)
        assert values.max() <= 1.15
        assert values.min() >= 1.0
    assert pue_array(np.linspace(-50, 50, 101), LIQUID_COOLING).max() <= 1.15


# --- capping (hub-facts 0.1 Zeus table) ---------------------------------------------------------


def test_zeus_curve_at_0_7() -> None:
    assert throughput_ratio(0.7) == pytest.approx(0.95)
    assert gpu_energy_ratio(0.7) == pytest.approx(0.835)
    assert slowdown_factor(0.7) == pytest.approx(1.053, abs=0.001)
    assert throughput_ratio(1.0) == slowdown_factor(1.0) == gpu_energy_ratio(1.0) == 1.0
    assert throughput_ratio(0.65) == pytest.approx((0.95 + 0.915) / 2)  # linear interpolation
    assert gpu_energy_ratio(0.4) > 1.0  # energy rises again at deep caps


@pytest.mark.parametrize("bad", [0.39, 1.01, -1.0, float("nan")])
def test_cap_out_of_range_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="cap_fraction must be between 0.4 and 1.0"):
        throughput_ratio(bad)
    with pytest.raises(ValueError, match="cap_fraction"):
        job_gpu_power_w(gpu_type("H200"), WorkloadClass.TRAINING, bad)


# --- GPU / node power (hub-facts section 1) -----------------------------------------------------


@pytest.mark.parametrize("name", ["H200", "H100", "B200"])
def test_training_power_per_gpu_between_0_7_and_0_9_tdp(name: str) -> None:
    gpu = gpu_type(name)
    assert 0.7 * gpu.tdp_w <= job_gpu_power_w(gpu, WorkloadClass.TRAINING) <= 0.9 * gpu.tdp_w


def test_inference_and_interactive_power() -> None:
    h200 = gpu_type("H200")
    inference_w = job_gpu_power_w(h200, WorkloadClass.INFERENCE)
    assert 137.0 <= inference_w <= 300.0  # hub-facts 0.1 gpu.h200.decode_power
    assert h200.idle_w < job_gpu_power_w(h200, WorkloadClass.INTERACTIVE) < inference_w
    assert job_power_w(h200, 8, WorkloadClass.TRAINING) == pytest.approx(
        8 * job_gpu_power_w(h200, WorkloadClass.TRAINING)
    )


def test_idle_gpu_draws_idle_w() -> None:
    for name in ("H200", "A100", "B200"):
        gpu = gpu_type(name)
        assert gpu_power_w(gpu, 0.0, 0.8) == pytest.approx(gpu.idle_w)
        assert job_gpu_power_w(gpu, WorkloadClass.INTERACTIVE, utilization=0.0) == pytest.approx(gpu.idle_w)
    assert gpu_type("H200").idle_w == pytest.approx(80.3)


def test_capped_power_never_exceeds_cap() -> None:
    for name in ("H200", "A100", "B200"):
        gpu = gpu_type(name)
        for workload in WorkloadClass:
            uncapped_w = job_gpu_power_w(gpu, workload)
            for c in np.linspace(0.4, 1.0, 13):
                capped_w = job_gpu_power_w(gpu, workload, float(c))
                assert capped_w <= c * gpu.tdp_w + 1e-6
                assert capped_w == pytest.approx(min(c * gpu.tdp_w, uncapped_w), abs=1e-6)
    assert capped_power_w(545.0, 700.0, 0.7) == 490.0


def test_cap_slows_training_not_decode() -> None:
    h200 = gpu_type("H200")
    assert job_slowdown_factor(h200, WorkloadClass.TRAINING, 0.7) == pytest.approx(slowdown_factor(0.7))
    assert job_slowdown_factor(h200, WorkloadClass.INFERENCE, 0.4) == 1.0  # decode never reaches 280 W
    assert binding_slowdown_factor(300.0, 700.0, 0.8) == 1.0


def test_host_and_node_idle_power() -> None:
    h200 = gpu_type("H200")
    assert 1500.0 <= host_power_w(h200, 8) <= 2000.0  # hub-facts 1: ~1.5-2 kW per 8-GPU Hopper node
    assert host_power_w(h200, 8) == pytest.approx(10200.0 * 0.18)
    assert host_power_w(h200, 4) == pytest.approx(host_power_w(h200, 8) / 2)
    assert node_idle_power_w(h200, 8) == pytest.approx(8 * 80.3 + host_power_w(h200, 8))
    # training node draw stays under the 10.2 kW DGX envelope and near the 8.4 kW measured peak
    node_w = job_power_w(h200, 8, WorkloadClass.TRAINING) + host_power_w(h200, 8)
    assert 0.6 * 10200 <= node_w <= 10200


# --- calibration against measured A100 power (acme-power traces) --------------------------------


def _acme(name: str) -> Path:
    path = ACME_DIR / name
    if not path.exists():
        pytest.skip(f"measured trace not available: {path}")
    return path


@pytest.mark.parametrize("cluster", ["seren", "kalos"])
def test_a100_training_power_within_measured_distribution(cluster: str) -> None:
    stats = power_cdf_stats(_acme(f"gpu_power_cdf_{cluster}_A100.csv"))
    a100 = gpu_type("A100")
    train_w = job_gpu_power_w(a100, WorkloadClass.TRAINING)
    # The CDF mixes idle and busy GPUs: training must sit above the median, below the p95,
    # and within 20 % of the mean of the busy half; idle at or below the 10th percentile.
    assert stats.median_w < train_w < stats.p95_w
    assert abs(train_w - stats.busy_half_mean_w) / stats.busy_half_mean_w < 0.2
    assert a100.idle_w <= stats.p10_w
    assert stats.min_w <= stats.mean_w <= stats.max_w


def test_a100_node_power_within_measured_distribution() -> None:
    stats = power_cdf_stats(_acme("server_power_cdf_seren_gpu_node.csv"))
    a100 = gpu_type("A100")
    idle_w = node_idle_power_w(a100, 8)
    busy_w = job_power_w(a100, 8, WorkloadClass.TRAINING) + host_power_w(a100, 8)
    assert 0.9 * stats.p10_w <= idle_w <= stats.median_w
    assert stats.median_w < busy_w < stats.p95_w


# --- climate (hub-facts 0.2) --------------------------------------------------------------------


@pytest.mark.parametrize(("site", "expected"), [("astana", 0.83), ("almaty", 0.72)])
def test_fraction_of_hours_below_18c(site: str, expected: float) -> None:
    climate = load_site(site).climate
    fractions = [
        float(np.mean(hourly_temperature(climate, UTC_2026, 8760, seed) < 18.0)) for seed in range(4)
    ]
    assert np.mean(fractions) == pytest.approx(expected, abs=0.04)


def test_temperature_shape_and_reproducibility() -> None:
    climate = load_site("astana").climate
    calm = SiteClimate(climate.monthly_mean_c, 6.5, 0.0)
    january = hourly_temperature(calm, UTC_2026, 31 * 24, seed=0)
    assert january.mean() == pytest.approx(-14.2, abs=0.6)  # monthly mean recovered
    day = january[10 * 24 : 11 * 24]  # 10 Jan, hours 00-23 UTC = 05-04 local
    assert int(np.argmin(day)) == 0 and int(np.argmax(day)) == 10  # 05:00 and 15:00 local
    assert day.max() - day.min() == pytest.approx(13.0, abs=0.2)
    long = hourly_temperature(climate, UTC_2026, 3 * 8760, seed=7)
    short = hourly_temperature(climate, UTC_2026, 500, seed=7)
    assert np.array_equal(short, long[:500])
    assert not np.array_equal(short, hourly_temperature(climate, UTC_2026, 500, seed=8))
    with pytest.raises(ValueError, match="timezone-aware"):
        hourly_temperature(climate, datetime(2026, 1, 1), 24, seed=0)


# --- grid carbon and tariff (hub-facts 0.3, section 3) -------------------------------------------


def test_carbon_default_800_with_winter_peak() -> None:
    spec = CarbonSpec()
    assert spec.g_per_kwh == 800.0
    year = carbon_series_g_per_kwh(spec, UTC_2026, 8760)
    assert year.mean() == pytest.approx(800.0, abs=1.0)
    assert year.max() == pytest.approx(856.0, abs=0.5) and year.min() == pytest.approx(744.0, abs=0.5)
    assert year[14 * 24] > year[196 * 24]  # mid-January above mid-July
    flat = carbon_series_g_per_kwh(CarbonSpec(seasonal_swing=0.0), UTC_2026, 48)
    assert np.all(flat == 800.0)
    daily = carbon_series_g_per_kwh(CarbonSpec(seasonal_swing=0.0, diurnal_swing=0.05), UTC_2026, 24)
    assert int(np.argmin(daily)) == 8  # 13:00 local = 08:00 UTC


def test_carbon_csv_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "kz.csv"
    good.write_text("hour_utc,g_per_kwh\n2025-01-01T00:00Z,700\n2025-01-01T01:00:00+00:00,710\n")
    spec = CarbonSpec(csv_path=good)
    assert list(carbon_series_g_per_kwh(spec, datetime(2025, 1, 1, tzinfo=UTC), 2)) == [700.0, 710.0]
    with pytest.raises(ConfigError, match="no value for 2026-01-01T00:00:00Z"):
        carbon_series_g_per_kwh(spec, UTC_2026, 1)
    repeat = CarbonSpec(csv_path=good, csv_repeat_year=True)
    assert carbon_series_g_per_kwh(repeat, UTC_2026, 2)[1] == 710.0
    bad = tmp_path / "bad.csv"
    bad.write_text("hour_utc,g_per_kwh\n2025-01-01T00:00Z,700\n2025-01-01T01:00Z,lots\n")
    with pytest.raises(ConfigError, match=r"bad\.csv:3: g_per_kwh: not a number"):
        carbon_series_g_per_kwh(CarbonSpec(csv_path=bad), datetime(2025, 1, 1, tzinfo=UTC), 1)
    bad.write_text("when,g\n")
    with pytest.raises(ConfigError, match=r"bad\.csv:1: header"):
        carbon_series_g_per_kwh(CarbonSpec(csv_path=bad), datetime(2025, 1, 1, tzinfo=UTC), 1)


def test_tariff_default_and_usd_conversion() -> None:
    spec = TariffSpec()
    assert spec.kzt_per_kwh == 29.14 and spec.kzt_per_usd == 510.0
    assert kzt_to_usd(29.14) == pytest.approx(0.0571, abs=1e-4)
    assert spec.usd_per_kwh == pytest.approx(29.14 / 510.0)
    assert 0.056 <= spec.usd_per_kwh <= 0.065  # hub-facts 0.3 kz.tariff_legal_entities_usd
    assert np.all(tariff_series_kzt_per_kwh(spec, UTC_2026, 48) == 29.14)
    tou = tariff_series_kzt_per_kwh(TariffSpec(day_multiplier=1.2, night_multiplier=0.5), UTC_2026, 24)
    local_hours = (np.arange(24) + 5) % 24
    night = (local_hours >= 23) | (local_hours < 7)
    assert np.allclose(tou[night], 29.14 * 0.5) and np.allclose(tou[~night], 29.14 * 1.2)


# --- site power cap -----------------------------------------------------------------------------


def test_site_cap_windows() -> None:
    site = load_site("astana")
    assert site.cap_w_at(_utc_s(2026, 1, 15, 13)) == 70e6  # 18:00 local, winter evening
    assert site.cap_w_at(_utc_s(2026, 7, 15, 13)) == 100e6  # 18:00 local, summer
    assert site.cap_w_at(_utc_s(2026, 1, 15, 12) - 1) == 100e6  # 16:59:59 local
    assert site.cap_w_at(_utc_s(2026, 1, 15, 12)) == 70e6  # 17:00 local
    assert site.cap_w_at(_utc_s(2026, 1, 15, 16)) == 100e6  # 21:00 local: window is [17, 21)
    assert site.cap_w_at(_utc_s(2026, 3, 15, 13)) == 100e6  # March is not in the window


def test_next_cap_change() -> None:
    site = load_site("astana")
    inside = _utc_s(2026, 12, 1, 13, 30)
    assert site.next_cap_change_s(inside) == _utc_s(2026, 12, 1, 16)  # 21:00 local
    assert site.next_cap_change_s(_utc_s(2026, 12, 1, 16)) == _utc_s(2026, 12, 2, 12)  # next 17:00 local
    assert site.next_cap_change_s(_utc_s(2026, 6, 1)) == _utc_s(2026, 11, 1, 12)  # first winter evening
    assert site.next_cap_change_s(_utc_s(2027, 2, 28, 16)) == _utc_s(2027, 11, 1, 12)
    t = _utc_s(2026, 1, 1)
    for _ in range(50):  # the cap really differs across each reported change, and not before it
        nxt = site.next_cap_change_s(t)
        assert site.cap_w_at(nxt) != site.cap_w_at(t) == site.cap_w_at(nxt - 1)
        t = nxt
    assert CapSchedule(50e6).next_cap_change_s(t) == math.inf
    wrap = CapSchedule(50e6, (CapWindow(frozenset(range(1, 13)), (22, 6), 40e6),), utc_offset_h=5.0)
    assert wrap.cap_w_at(_utc_s(2026, 5, 1, 20)) == 40e6  # 01:00 local
    assert wrap.next_cap_change_s(_utc_s(2026, 5, 1, 20)) == _utc_s(2026, 5, 2, 1)  # 06:00 local


def test_timeline_in_simulation_seconds() -> None:
    tl = SiteTimeline(load_site("astana"), start=UTC_2026, seed=0)
    assert tl.cap_w_at(12 * HOUR) == 70e6 and tl.cap_w_at(12 * HOUR - 1) == 100e6
    assert tl.next_cap_change_s(0.0) == 12 * HOUR
    assert tl.next_cap_change_s(12 * HOUR) == 16 * HOUR
    assert tl.tariff_kzt_per_kwh_at(0.0) == 29.14
    assert tl.carbon_g_per_kwh_at(0.0) > 800.0 > tl.carbon_g_per_kwh_at(190 * 24 * HOUR)
    early = [tl.temperature_c_at(h * HOUR) for h in range(48)]
    far_pue = tl.pue_at(3 * 8760 * HOUR)  # extends the horizon past the first year
    assert 1.0 < far_pue < 1.5
    assert early == [tl.temperature_c_at(h * HOUR) for h in range(48)]
    arrays = tl.arrays(48)
    assert list(arrays.temperature_c) == early and arrays.cap_w[12] == 70e6
    with pytest.raises(ValueError, match=">= 0"):
        tl.pue_at(-1.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        SiteTimeline(load_site("astana"), start=datetime(2026, 1, 1))


# --- site files ---------------------------------------------------------------------------------


def test_bundled_sites_load_and_cite_every_number() -> None:
    assert bundled_sites() == ["almaty", "astana"]
    for name in bundled_sites():
        site = load_site(name)
        assert site.name == name and site.utc_offset_h == 5.0 and site.base_cap_w == 100e6
        lines = (SITES_DIR / f"{name}.toml").read_text().splitlines()
        for i, line in enumerate(lines):
            code = line.split("#", 1)[0]
            if "=" in code and any(ch.isdigit() for ch in code.split("=", 1)[1]):
                assert "#" in line or lines[i - 1].lstrip().startswith("#"), f"{name}.toml:{i + 1} uncited"
    almaty = load_site("almaty")
    assert almaty.climate.monthly_mean_c[6] == 23.8 and almaty.climate.daily_amplitude_c == 6.0


def _write_site(tmp_path: Path, body: str) -> Path:
    """A site file: top-level keys of ``body`` (before its first table) go first, then [climate]."""
    top, sep, tables = body.partition("[")
    path = tmp_path / "site.toml"
    path.write_text(top + "[climate]\nmonthly_mean_c = [0,0,0,0,0,0,0,0,0,0,0,0]\n" + sep + tables)
    return path


_WINDOW = "[power_cap]\nbase = '100MW'\n[[power_cap.windows]]\n"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[power_cap]\nbase = "100MW"\nbogus = 1\n', "power_cap.bogus"),
        ("colour = 'red'\n[power_cap]\nbase = '1MW'\n", "colour"),
        ("[climate.extra]\n[power_cap]\nbase = '1MW'\n", "climate.extra"),
        ('[power_cap]\nbase = "100 parsecs"\n', "power_cap.base"),
        ("[power_cap]\nbase = 100\n", "power_cap.base"),
        ("[tariff]\nkzt_per_kwh = 'cheap'\n[power_cap]\nbase = '1MW'\n", "tariff.kzt_per_kwh"),
        ("[cooling]\nkind = 'immersion'\n[power_cap]\nbase = '1MW'\n", "cooling.kind"),
        ("[grid]\ncarbon_csv = 'missing.csv'\n[power_cap]\nbase = '1MW'\n", "grid.carbon_csv"),
        ("utc_offset_h = 30\n[power_cap]\nbase = '1MW'\n", "utc_offset_h"),
        ("", "power_cap"),
        (
            _WINDOW + "months = [13]\nhours = '17-21'\ncap = '70MW'\n",
            "power_cap.windows[0].months",
        ),
        (
            _WINDOW + "months = [1]\nhours = '17-17'\ncap = '70MW'\n",
            "power_cap.windows[0].hours",
        ),
        (
            _WINDOW + "months = [1]\nhours = '17-21'\ncap = '170MW'\n",
            "power_cap.windows[0].cap",
        ),
    ],
)
def test_site_toml_errors_name_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    path = _write_site(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert info.value.key == key
    assert str(path) in str(info.value) and key in str(info.value)


def test_site_toml_climate_and_name_errors(tmp_path: Path) -> None:
    path = tmp_path / "short.toml"
    path.write_text("[climate]\nmonthly_mean_c = [1, 2]\n[power_cap]\nbase = '1MW'\n")
    with pytest.raises(ConfigError, match="climate.monthly_mean_c"):
        load_site(path)
    with pytest.raises(ConfigError, match="bundled sites: almaty, astana"):
        load_site("atlantis")
    path.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_site(path)


def test_site_with_carbon_csv_and_liquid_cooling(tmp_path: Path) -> None:
    (tmp_path / "kz.csv").write_text("hour_utc,g_per_kwh\n2026-01-01T00:00Z,650\n2026-01-01T01:00Z,640\n")
    path = _write_site(
        tmp_path, "[cooling]\nkind = 'liquid'\n[grid]\ncarbon_csv = 'kz.csv'\n[power_cap]\nbase = '2MW'\n"
    )
    site = load_site(path)
    assert site.cooling == LIQUID_COOLING and site.power_cap.windows == ()
    tl = SiteTimeline(site, start=UTC_2026, seed=1)
    assert tl.carbon_g_per_kwh_at(0.0) == 650.0 and tl.carbon_g_per_kwh_at(1.5 * HOUR) == 640.0
    assert tl.pue_at(0.0) == pytest.approx(1.06) and tl.next_cap_change_s(0.0) == math.inf
    with pytest.raises(ConfigError, match="no value for"):
        tl.carbon_g_per_kwh_at(2 * HOUR)

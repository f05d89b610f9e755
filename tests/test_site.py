"""One Site: its time zone and jurisdiction, the site clock every local rule reads, its network.

A test site in Europe/Berlin (daylight saving: +1 in winter, +2 from 29 March to 25 October 2026)
shows that cap windows, tariff night hours and the daily cycles follow the wall clock across a
change; Astana's results are unchanged (tests/test_energy_models.py, tests/test_power.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from steppe.core.cluster import Cluster
from steppe.core.errors import ConfigError, UnknownNameError
from steppe.core.network import NetworkSite, Topology
from steppe.energy.climate import hourly_temperature
from steppe.energy.clock import SiteClock
from steppe.energy.site import SITES_DIR, load_site, site_from_dict
from steppe.energy.timeline import SiteTimeline
from steppe.governance.admission import local_date
from steppe.governance.residency import load_topology
from steppe.power import hub_clock, live_power, parse_start

BERLIN_TOML = """
name = "berlin-test"
time_zone = "Europe/Berlin"
jurisdiction = "DE"

[climate]                       # test values, not a climate claim
monthly_mean_c = [0.5, 1.5, 5.0, 10.0, 14.0, 17.0, 19.0, 19.0, 15.0, 10.0, 5.0, 2.0]
daily_amplitude_c = 5.0
noise_sigma_c = 0.0

[grid]
seasonal_swing = 0.0
diurnal_swing = 0.1

[tariff]
day_multiplier = 1.2
night_multiplier = 0.5
night_hours = "23-7"

[power_cap]
base = "1MW"

[[power_cap.windows]]
months = [3, 10]
hours = "17-21"
cap = "700kW"
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.fixture
def berlin_file(tmp_path: Path) -> Path:
    path = tmp_path / "berlin-test.toml"
    path.write_text(BERLIN_TOML)
    return path


def test_cap_windows_follow_the_wall_clock_across_daylight_saving(berlin_file: Path) -> None:
    site = load_site(berlin_file)
    # 28 March (CET, UTC+1): 17:00 local is 16:00 UTC; 30 March (CEST, UTC+2): 15:00 UTC.
    assert (site.cap_w_at(utc(2026, 3, 28, 15, 59, 59)), site.cap_w_at(utc(2026, 3, 28, 16))) == (1e6, 0.7e6)
    assert (site.cap_w_at(utc(2026, 3, 30, 14, 59, 59)), site.cap_w_at(utc(2026, 3, 30, 15))) == (1e6, 0.7e6)
    assert site.cap_w_at(utc(2026, 3, 30, 19)) == 1e6  # 21:00 CEST: the window has closed
    # The change day itself (01:00 UTC: 02:00 CET -> 03:00 CEST) and the autumn one (01:00 UTC: 03:00 -> 02:00).
    assert site.next_cap_change_s(utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 15)
    assert site.next_cap_change_s(utc(2026, 3, 29, 15)) == utc(2026, 3, 29, 19)
    assert site.next_cap_change_s(utc(2026, 10, 24, 20)) == utc(2026, 10, 25, 16)
    assert site.next_cap_change_s(utc(2026, 10, 25, 16)) == utc(2026, 10, 25, 20)
    # From summer the next change is the October window, on CEST (15:00 UTC on 1 October).
    assert site.next_cap_change_s(utc(2026, 6, 1, 12)) == utc(2026, 10, 1, 15)


def test_tariff_night_hours_and_daily_cycles_follow_the_wall_clock_across_daylight_saving(berlin_file: Path) -> None:
    site = load_site(berlin_file)
    start = parse_start("2026-03-28T00:00", site)  # 27 March 23:00 UTC
    timeline = SiteTimeline(site, start, seed=0)
    arr = timeline.arrays(72)
    local = [site.clock.local(timeline.start_utc_s + i * 3600.0) for i in range(72)]
    night = np.array([t.hour >= 23 or t.hour < 7 for t in local])
    assert np.array_equal(arr.tariff_kzt_per_kwh, np.where(night, 0.5, 1.2) * site.tariff.kzt_per_kwh)
    # 23:00 local is hour 23 of the timeline on 28 March (CET) but hour 46 on 29 March (CEST).
    assert (arr.tariff_kzt_per_kwh[22] > arr.tariff_kzt_per_kwh[23], arr.tariff_kzt_per_kwh[46] < 29.14) == (True, True)
    assert arr.tariff_kzt_per_kwh[45] > arr.tariff_kzt_per_kwh[46]
    # The carbon dip is at 13:00 local: 12:00 UTC on 28 March, 11:00 UTC on 30 March.
    day1, day3 = arr.carbon_g_per_kwh[1:25], arr.carbon_g_per_kwh[49:72]  # from 00:00 UTC
    assert (int(day1.argmin()), int(day3.argmin())) == (12, 11)
    # The daily temperature minimum is at 05:00 local: 04:00 UTC, then 03:00 UTC.
    temp = hourly_temperature(site.climate, datetime(2026, 3, 28, tzinfo=UTC), 72, seed=0)
    assert (int(temp[:24].argmin()), int(temp[48:].argmin())) == (4, 3)


def test_a_site_file_names_its_zone_and_jurisdiction_and_the_older_offset_form_still_loads() -> None:
    astana = load_site("astana")
    assert astana.describe() == {"name": "astana", "time_zone": "Asia/Almaty", "jurisdiction": "KZ"}
    assert astana.utc_offset_h == 5.0 and astana.clock.fixed_offset_s is None
    berlin = site_from_dict(_doc(time_zone="Europe/Berlin"), "b.toml")
    assert (berlin.time_zone, berlin.utc_offset_h) == ("Europe/Berlin", 1.0)  # the standard offset, not summer's
    older = site_from_dict(_doc(utc_offset_h=-3.5), "old.toml")
    assert (older.time_zone, older.utc_offset_h, older.clock.fixed_offset_s) == ("UTC-03:30", -3.5, -12600.0)
    assert site_from_dict(_doc(), "none.toml").time_zone == "UTC+05:00"  # neither key: Kazakhstan's UTC+5
    assert site_from_dict(_doc(time_zone="Asia/Almaty", utc_offset_h=5), "both.toml").time_zone == "Asia/Almaty"


@pytest.mark.parametrize(
    ("keys", "key", "words"),
    [
        ({"time_zone": "Asia/Almaty", "utc_offset_h": 6}, "utc_offset_h", "disagrees with time_zone 'Asia/Almaty'"),
        ({"time_zone": "Europe/Berlin", "utc_offset_h": 2}, "utc_offset_h", "standard offset is now 1 h"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "unknown IANA time zone"),
        ({"time_zone": 5}, "time_zone", "IANA time zone name"),
        ({"jurisdiction": "Kazakhstan"}, "jurisdiction", "ISO 3166"),
    ],
)
def test_a_site_file_whose_zone_keys_disagree_or_are_unknown_is_refused_naming_the_key(
    keys: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=f"site.toml: {key}: .*{words}"):
        site_from_dict(_doc(**keys), "site.toml")


def test_the_network_is_attached_and_must_agree_with_the_site_file(tmp_path: Path, berlin_file: Path) -> None:
    topology = load_topology()
    astana = load_site("astana", topology)
    assert astana.network is topology and astana.jurisdiction == "KZ"
    assert {r.name for r in astana.routes} == {
        "astana-frankfurt-transcaspian", "astana-frankfurt-north", "astana-almaty-domestic"}  # fmt: skip
    assert load_site("astana").routes == ()
    unsure = tmp_path / "almaty.toml"  # a file without jurisdiction takes the topology's
    unsure.write_text((SITES_DIR / "almaty.toml").read_text().replace('jurisdiction = "KZ"', "#"))
    assert (load_site(unsure).jurisdiction, load_site(unsure, topology).jurisdiction) == ("", "KZ")
    wrong = tmp_path / "astana.toml"
    wrong.write_text((SITES_DIR / "astana.toml").read_text().replace('jurisdiction = "KZ"', 'jurisdiction = "DE"'))
    with pytest.raises(ConfigError, match="astana.toml: jurisdiction: 'DE' disagrees with the topology's 'KZ'"):
        load_site(wrong, topology)
    with pytest.raises(ConfigError, match="name: site 'berlin-test' is not in the network topology"):
        load_site(berlin_file, topology)
    zoned = Topology({"berlin-test": NetworkSite("berlin-test", "DE", time_zone="Europe/Paris")}, ())
    with pytest.raises(ConfigError, match="time_zone: 'Europe/Berlin' disagrees with the topology's 'Europe/Paris'"):
        load_site(berlin_file, zoned)


def test_the_hub_clock_is_the_site_file_s_or_the_topology_s_for_a_partner_site() -> None:
    topology = load_topology()
    assert hub_clock("astana", topology).name == "Asia/Almaty"
    assert hub_clock("frankfurt", topology).name == "Europe/Berlin"  # no site file: the topology's zone
    with pytest.raises(UnknownNameError, match="valid: almaty, astana, frankfurt"):
        hub_clock("mars", topology)


def test_the_local_date_follows_the_zone_across_daylight_saving() -> None:
    berlin = local_date(ZoneInfo("Europe/Berlin"))
    assert berlin(utc(2026, 10, 24, 22, 30)) == date(2026, 10, 25)  # 00:30 CEST
    assert berlin(utc(2026, 10, 25, 22, 30)) == date(2026, 10, 25)  # 23:30 CET
    assert local_date()(utc(2026, 10, 25, 22, 30)) == date(2026, 10, 26)  # Astana, UTC+5
    assert local_date(SiteClock.named("Asia/Almaty").zone)(utc(2026, 10, 25, 18, 59)) == date(2026, 10, 25)


def test_a_live_hub_in_berlin_starts_on_its_local_hour_and_its_windows_follow_summer_time(berlin_file: Path) -> None:
    started = utc(2026, 3, 28, 10, 42, 10)  # 11:42 CET
    setup = live_power(Cluster.uniform(1, 8, "H200"), str(berlin_file), started, power_cap_w=1e6)
    assert setup.budget is not None and setup.timeline.start_utc_s == utc(2026, 3, 28, 10)
    limits = setup.budget.limits
    assert (limits.cap_w_at(utc(2026, 3, 28, 16)), limits.cap_w_at(utc(2026, 3, 29, 15))) == (0.7e6, 0.7e6)
    assert limits.cap_w_at(utc(2026, 3, 29, 14, 59)) == 1e6
    assert limits.next_change_s(utc(2026, 3, 29, 14, 30)) == utc(2026, 3, 29, 15)


def _doc(**top: Any) -> dict[str, Any]:
    return {**top, "climate": {"monthly_mean_c": [0.0] * 12}, "power_cap": {"base": "1MW"}}


def test_the_cap_memo_answers_as_a_lookup_would(berlin_file: Path) -> None:
    site = load_site(berlin_file)
    fresh = load_site(berlin_file).power_cap
    times = [utc(2026, 3, 29, 0) + k * 613.7 for k in range(400)] + [utc(2026, 3, 29, 15) - 1e-7, utc(2026, 3, 29, 15)]
    for t in times:  # one schedule asked in order (the memo hits), a fresh one per time (no memo)
        again = type(fresh)(fresh.base_cap_w, fresh.windows, clock=fresh.clock)
        assert site.cap_w_at(t) == again.cap_w_at(t), t

"""The hub's site: its calendar (the date approvals start and expire on) is the site's time zone,
and ``/metrics`` names the site, its zone and its jurisdiction."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LATE_EVENING_S = datetime(2026, 6, 1, 21, 30, tzinfo=UTC).timestamp()  # 23:30 in Berlin, 02:30 next day in Astana


@pytest.mark.parametrize(("site", "expected"), [("astana", date(2026, 6, 2)), ("frankfurt", date(2026, 6, 1))])
def test_the_hub_dates_approvals_in_its_site_s_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site: str, expected: date
) -> None:
    hub = Hub.open(HubSettings(data_dir=tmp_path / "data", gpus=8, gpu_type="H200", single_user=True,
                               executor="mock", site=site))  # fmt: skip
    try:
        review = hub.loop.governance.review
        assert review is not None and review.today(LATE_EVENING_S) == expected
        monkeypatch.setattr("steppe.app.hub.time.time", lambda: LATE_EVENING_S)
        assert hub.today() == expected
    finally:
        hub.close()


@pytest.mark.parametrize(
    ("site", "line"),
    [("almaty", 'hub_site_info{jurisdiction="KZ",name="almaty",time_zone="Asia/Almaty"} 1.0'),
     ("frankfurt", 'hub_site_info{jurisdiction="DE",name="frankfurt",time_zone="Europe/Berlin"} 1.0')],
)  # fmt: skip
def test_metrics_name_the_hub_s_site_its_zone_and_jurisdiction(tmp_path: Path, site: str, line: str) -> None:
    hub = Hub.open(HubSettings(data_dir=tmp_path / "data", gpus=8, gpu_type="H200", review_gate=False,
                               single_user=True, executor="mock", public_metrics=True, site=site))  # fmt: skip
    with TestClient(create_app(hub)) as client:  # its lifespan starts and closes the hub
        text = client.get("/metrics").text
    assert line in text.splitlines()

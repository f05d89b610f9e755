"""The hub's site: its calendar (the date approvals start and expire on) is the site's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from steppe.api.hub import Hub, HubSettings

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
        monkeypatch.setattr("steppe.api.hub.time.time", lambda: LATE_EVENING_S)
        assert hub.today() == expected
    finally:
        hub.close()

from __future__ import annotations

import pytest

from steppe.core.units import format_duration, parse_duration, parse_power


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("30:15", 1815), ("01:00:00", 3600), ("2-00", 172800), ("1-02:30", 95400), ("1-02:03:04", 93784)],
)
def test_slurm_time_formats(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1:2:3:4", "a-01", "-5", "1-2:3:4:5", "1.5"])
def test_bad_time_limits(text: str) -> None:
    with pytest.raises(ValueError, match="time limit"):
        parse_duration(text)


def test_power_and_format() -> None:
    assert parse_power("20MW") == 20e6 and parse_power("850 kW") == 850e3 and parse_power("700w") == 700
    with pytest.raises(ValueError, match="20MW"):
        parse_power("twenty")
    assert format_duration(59) == "00:00:59"

from __future__ import annotations

import pytest

from steppe.core.units import format_duration, parse_duration, parse_power, parse_time_limit


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


@pytest.mark.parametrize(
    ("text", "unit", "example"),
    [
        ("25:61:61", "minutes must be below 60 when hours", "25:59:59"),
        ("01:00:60", "seconds must be below 60 when minutes", "01:00:59"),
        ("10:60", "seconds must be below 60 when minutes", "10:59"),
        ("1-24", "hours must be below 24 when days", "1-23"),
        ("2-23:60", "minutes must be below 60 when hours", "2-23:59"),
        ("0-00:00:99", "seconds must be below 60 when minutes", "0-00:00:59"),
    ],
)
def test_fields_after_a_larger_unit_stay_below_it(text: str, unit: str, example: str) -> None:
    with pytest.raises(ValueError, match=unit) as err:
        parse_duration(text)
    assert f"(e.g. {example})" in str(err.value) and repr(text) in str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 5400), ("36:00:00", 129600), ("120:30", 7230), ("1-23:59:59", 172799)]
)
def test_the_first_field_may_be_large(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "00:00", "0-00:00:00", "00:00:00"])
def test_a_zero_time_limit_is_refused(text: str) -> None:
    assert parse_duration(text) == 0
    with pytest.raises(ValueError, match="must be more than zero"):
        parse_time_limit(text)
    assert parse_time_limit("01:00:00") == 3600

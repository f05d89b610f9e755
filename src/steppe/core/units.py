"""Parsing of the quantities users type: Slurm time limits and power with SI prefixes.

>>> parse_duration("1-02:00:00")
93600.0
>>> parse_duration("90")      # Slurm: a bare number is minutes
5400.0
>>> parse_power("20MW")
20000000.0
"""

from __future__ import annotations

import re

_POWER_UNITS = {"w": 1.0, "kw": 1e3, "mw": 1e6, "gw": 1e9}
_POWER_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgG]?[wW])\s*$")


def parse_duration(text: str) -> float:
    """Parse a Slurm time limit into seconds.

    Accepted forms (as in ``sbatch --time``): ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
    ``D-HH:MM`` and ``D-HH:MM:SS``. As in Slurm, the first field may be as large as needed
    (``90`` minutes, ``36:00:00``), but a field after a larger unit must stay below it:
    minutes and seconds below 60, hours below 24 when days are given. Raises ``ValueError``
    naming the problem, with an accepted example.

    >>> parse_duration("25:61:61")
    Traceback (most recent call last):
    ...
    ValueError: bad time limit '25:61:61': minutes must be below 60 when hours are given (e.g. 25:59:59)
    """
    raw = text.strip()
    if not raw:
        raise ValueError("empty time limit")
    days = 0
    rest = raw
    if "-" in raw:
        day_part, rest = raw.split("-", 1)
        days = _non_negative_int(day_part, raw)
        parts = [_non_negative_int(p, raw) for p in rest.split(":")]
        if len(parts) > 3:
            raise ValueError(f"bad time limit {raw!r}: expected D-HH[:MM[:SS]]")
        _check_units(raw, f"{days}-", parts, ["hours", "minutes", "seconds"], "days")
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    else:
        parts = [_non_negative_int(p, raw) for p in rest.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            _check_units(raw, "", parts, ["minutes", "seconds"], "")
            hours, minutes, seconds = 0, parts[0], parts[1]
        elif len(parts) == 3:
            _check_units(raw, "", parts, ["hours", "minutes", "seconds"], "")
            hours, minutes, seconds = parts
        else:
            raise ValueError(f"bad time limit {raw!r}: expected MM, MM:SS, HH:MM:SS or D-HH:MM:SS")
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


_BELOW = {"hours": 24, "minutes": 60, "seconds": 60}


def _check_units(raw: str, prefix: str, parts: list[int], units: list[str], larger: str) -> None:
    """Every field after a larger unit must stay below that unit (Slurm's rule); the first field
    is free unless ``larger`` (days) precedes it."""
    for i, (unit, value) in enumerate(zip(units, parts, strict=False)):
        above = units[i - 1] if i else larger
        if above and value >= _BELOW[unit]:
            pairs = enumerate(zip(units, parts, strict=False))
            fixed = [p if not (j or larger) else min(p, _BELOW[u] - 1) for j, (u, p) in pairs]
            example = prefix + ":".join(f"{p:02d}" for p in fixed)
            raise ValueError(
                f"bad time limit {raw!r}: {unit} must be below {_BELOW[unit]} when {above} are given (e.g. {example})"
            )


def format_duration(seconds: float) -> str:
    """Format seconds as Slurm does in ``squeue``: ``D-HH:MM:SS`` or ``HH:MM:SS``.

    >>> format_duration(93784)
    '1-02:03:04'
    """
    total = int(round(seconds))
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def parse_time_limit(text: str) -> float:
    """A time limit (``parse_duration``) that must be more than zero: a job's ``--time``, a token's lifetime.

    >>> parse_time_limit("0")
    Traceback (most recent call last):
    ...
    ValueError: bad time limit '0': it must be more than zero (e.g. 01:00:00 for one hour)
    """
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"bad time limit {text.strip()!r}: it must be more than zero (e.g. 01:00:00 for one hour)")
    return seconds


def parse_power(text: str) -> float:
    """Parse a power such as ``20MW``, ``850 kW`` or ``700W`` into watts."""
    match = _POWER_RE.match(text)
    if not match:
        raise ValueError(f"bad power {text!r}: expected a number and a unit W, kW, MW or GW (e.g. 20MW)")
    return float(match.group(1)) * _POWER_UNITS[match.group(2).lower()]


def _non_negative_int(part: str, whole: str) -> int:
    if not part.isdigit():
        raise ValueError(f"bad time limit {whole!r}: {part!r} is not a non-negative integer")
    return int(part)

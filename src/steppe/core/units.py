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
    ``D-HH:MM`` and ``D-HH:MM:SS``. Raises ``ValueError`` naming the problem.
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
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    else:
        parts = [_non_negative_int(p, raw) for p in rest.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        elif len(parts) == 3:
            hours, minutes, seconds = parts
        else:
            raise ValueError(f"bad time limit {raw!r}: expected MM, MM:SS, HH:MM:SS or D-HH:MM:SS")
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


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

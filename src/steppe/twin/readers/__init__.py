"""Trace readers: turn a workload log into a ``Trace`` of ``JobSpec`` in submission order.

A trace is named ``FORMAT:PATH`` or by a bundled name:

==============  =============================================================================
``philly``      Microsoft Philly job list csv (``steppe.twin.readers.philly``)
``swf``         Standard Workload Format v2.2, e.g. the KTH SP2 log (``...readers.swf``)
``alibaba``     Alibaba 2023 openb pod list csv, or its folder (``...readers.alibaba``)
``csv``         Steppe's generic CSV schema (``...readers.csv_generic``)
``synthetic``   seeded generator; the part after ``:`` is ``key=value,...`` (``...readers.synthetic``)
philly-sample   a 3,000-job Philly excerpt shipped with Steppe (``steppe/data/philly_sample.csv``)
==============  =============================================================================

Every reader takes ``walltime_factor`` and ``walltime_round_s`` (the rule that derives a
walltime where a trace has none, see ``philly``) and ``limit`` (keep the first N jobs). The
format table is ``READERS``; ``docs/trace-formats.md`` describes each format and its sources.

>>> load_trace("synthetic:jobs=3,seed=7").jobs[0].submit_s
0.0
>>> load_trace("nope:x")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
steppe.core.errors.UnknownNameError: unknown trace format 'nope'; valid: alibaba, csv, philly, ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from steppe.core.errors import SteppeError, UnknownNameError
from steppe.twin.readers.alibaba import openb_cluster_toml, read_alibaba, read_openb_nodes
from steppe.twin.readers.csv_generic import read_csv, write_csv
from steppe.twin.readers.philly import derive_walltime, read_philly
from steppe.twin.readers.swf import read_swf, read_swf_logged_waits
from steppe.twin.readers.synthetic import SyntheticSpec, generate_synthetic, parse_synthetic, synthetic_trace
from steppe.twin.trace import Trace

__all__ = [
    "BUNDLED",
    "READERS",
    "SyntheticSpec",
    "derive_walltime",
    "generate_synthetic",
    "load_trace",
    "openb_cluster_toml",
    "parse_synthetic",
    "read_alibaba",
    "read_csv",
    "read_openb_nodes",
    "read_philly",
    "read_swf",
    "read_swf_logged_waits",
    "synthetic_trace",
    "write_csv",
]

READERS: dict[str, Callable[..., Trace]] = {
    "philly": read_philly,
    "swf": read_swf,
    "alibaba": read_alibaba,
    "csv": read_csv,
    "synthetic": synthetic_trace,
}

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
BUNDLED: dict[str, tuple[str, Path]] = {"philly-sample": ("philly", DATA_DIR / "philly_sample.csv")}


def load_trace(
    spec: str,
    *,
    walltime_factor: float = 2.0,
    walltime_round_s: float = 3600.0,
    seed: int = 0,
    limit: int | None = None,
) -> Trace:
    """Read the trace ``spec`` names: ``FORMAT:PATH``, ``synthetic:key=value,...`` or a bundled name.

    ``seed`` is used by the synthetic generator when its spec sets none.
    """
    if limit is not None and limit < 0:
        raise SteppeError(f"trace limit must be >= 0, got {limit}")
    options: dict[str, float | int | None] = {
        "walltime_factor": walltime_factor,
        "walltime_round_s": walltime_round_s,
        "limit": limit,
    }
    if spec in BUNDLED:
        fmt, path = BUNDLED[spec]
        return READERS[fmt](path, **options)
    fmt, _, arg = spec.partition(":")
    reader = READERS.get(fmt.strip().lower())
    if reader is None:
        raise UnknownNameError("trace format", fmt, [*READERS, *BUNDLED])
    if reader is synthetic_trace:
        return reader(arg, seed=seed, **options)
    if not arg.strip():
        raise SteppeError(f"trace {spec!r}: give a file, as {fmt}:PATH")
    return reader(Path(arg.strip()).expanduser(), **options)

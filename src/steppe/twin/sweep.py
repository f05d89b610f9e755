"""A sweep: one trace replayed at every point of clusters x policies x power caps x sites.

A ``Sweep`` names what to replay; ``points()`` expands it in its own fixed order (clusters
outermost, then policies, power caps and sites) and ``replay_point`` replays one point into
one row: the point's ``cluster``, ``policy``, ``power_cap`` and ``site`` and every key
``steppe simulate --json`` prints (``twin/report.py``'s ``script_view``), plus ``p99_wait_s``.
A row is a small dict of numbers and strings: it is all that comes back from a worker process
or a Ray task, so no replay's per-job figures are ever pickled.

Each point is an ordinary replay (``twin/replay.py``), deterministic: the same trace and point
give the same row wherever and in whatever order it runs, except ``wall_s`` (the replay's own
wall time). Running the points is ``twin/sweep_run.py``'s job; reading a sweep from the command
line or a TOML file is ``twin/sweep_config.py``'s; writing its CSV, JSON and PNG is
``twin/sweep_output.py``'s.

A power cap needs a site (its PUE turns IT power into facility power): a capped point with no
site is replayed at ``astana``, as ``steppe simulate --power-cap`` is, and its row says so. A
site with no cap meters energy, carbon and cost only.

>>> sweep = Sweep(TraceRequest("philly-sample", limit=50), clusters=("4x8:H100", "8x8:H100"),
...               policies=("fifo", "las"), power_caps=(None, "30kW"), sites=(None,))
>>> [p.label for p in sweep.points()][:3]
['4x8:H100 fifo no-cap no-site', '4x8:H100 fifo 30kW astana', '4x8:H100 las no-cap no-site']
>>> len(sweep.points())
8
>>> row = replay_point(sweep.trace.load(), sweep.points()[1], sweep.options)
>>> row["cluster"], row["policy"], row["power_cap"], row["site"], row["jobs"], row["power_cap_w"]
('4x8:H100', 'fifo', '30kW', 'astana', 50, 30000.0)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from steppe.core.cluster_config import load_cluster
from steppe.core.units import parse_power
from steppe.twin.power import DEFAULT_START, PowerSetup, build_power
from steppe.twin.readers import load_trace
from steppe.twin.replay import replay
from steppe.twin.report import script_view
from steppe.twin.trace import Trace

DEFAULT_SITE = "astana"
"""Where a capped point with no site is replayed (as ``steppe simulate --power-cap``)."""

POINT_KEYS = ("cluster", "policy", "power_cap", "site")
"""The keys a row takes from its point; they come first in every row, CSV and table."""


@dataclass(frozen=True)
class TraceRequest:
    """The trace a sweep replays and how to read it (the options of ``load_trace``)."""

    spec: str
    walltime_factor: float = 2.0
    walltime_round_s: float = 3600.0
    seed: int = 0
    limit: int | None = None

    def load(self) -> Trace:
        return load_trace(
            self.spec,
            walltime_factor=self.walltime_factor,
            walltime_round_s=self.walltime_round_s,
            seed=self.seed,
            limit=self.limit,
        )


@dataclass(frozen=True)
class ReplayOptions:
    """What every point of a sweep shares: the power options of ``steppe simulate`` and the checks."""

    power_policy: str = "cap"  # under a cap: "cap" (lower per-job GPU caps first) or "hold"
    cap_floor: float = 0.6
    start: str = DEFAULT_START
    seed: int = 0  # weather noise at the site
    check_invariants: bool = True


@dataclass(frozen=True)
class SweepPoint:
    """One replay of a sweep: specs as the user gave them (``power_cap`` e.g. ``"500kW"``).

    ``site`` is None only for a point with no power data at all (no cap, no site).
    """

    cluster: str
    policy: str
    power_cap: str | None
    site: str | None

    @property
    def label(self) -> str:
        return f"{self.cluster} {self.policy} {self.power_cap or 'no-cap'} {self.site or 'no-site'}"

    def as_row(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "policy": self.policy, "power_cap": self.power_cap, "site": self.site}

    def power(self, options: ReplayOptions) -> PowerSetup | None:
        """A fresh power setup for this point (never shared: a replay's budget keeps its own state)."""
        if self.site is None:
            return None
        cap_w = parse_power(self.power_cap) if self.power_cap is not None else None
        return build_power(
            load_cluster(self.cluster),
            self.site,
            power_cap_w=cap_w,
            capping=options.power_policy == "cap",
            enforce=cap_w is not None,
            floor=options.cap_floor,
            start=options.start,
            seed=options.seed,
        )


@dataclass(frozen=True)
class Sweep:
    """The product of ``clusters`` x ``policies`` x ``power_caps`` x ``sites`` over one trace.

    ``None`` in ``power_caps`` is "no cap" and in ``sites`` "no site"; build a checked sweep from
    user input with ``twin/sweep_config.py``.
    """

    trace: TraceRequest
    clusters: tuple[str, ...]
    policies: tuple[str, ...]
    power_caps: tuple[str | None, ...] = (None,)
    sites: tuple[str | None, ...] = (None,)
    options: ReplayOptions = field(default_factory=ReplayOptions)

    def points(self) -> list[SweepPoint]:
        """Every point, in the sweep's own order: results always come back in this order."""
        return [
            SweepPoint(cluster, policy, cap, site if site is not None or cap is None else DEFAULT_SITE)
            for cluster, policy, cap, site in itertools.product(
                self.clusters, self.policies, self.power_caps, self.sites
            )
        ]


def replay_point(trace: Trace, point: SweepPoint, options: ReplayOptions) -> dict[str, Any]:
    """Replay one point; its row (module docstring). Runs in whichever process the backend chose."""
    result = replay(
        trace,
        load_cluster(point.cluster),
        point.policy,
        check_invariants=options.check_invariants,
        power=point.power(options),
    )
    row = point.as_row()
    row.update((k, v) for k, v in script_view(result.summary).items() if k not in row)
    row["p99_wait_s"] = result.summary["p99_wait_s"]
    return row

"""Seeded synthetic workloads, shaped like Philly by default, for sweeps and scale tests.

Model (every draw comes from numpy's PCG64, seeded, one independent stream per quantity, so
the first k jobs are the same whatever ``jobs`` is):

* arrivals: a Poisson process of ``arrival_rate_per_h`` jobs per hour on average; the first
  job at 0 s. With ``diurnal`` or ``weekly`` amplitudes the rate follows working hours and
  working days, ``rate(t) = r (1 + d cos(2 pi (t - 14 h) / 1 day) + w cos(2 pi (t - 3.5 days) / 7 days))``
  (t = 0 is a Monday midnight: busiest at 14:00 and mid-week, quietest at 02:00 and at the
  weekend; the mean stays ``r``). The same unit-rate draws are mapped through the inverse of
  the cumulative rate ``Lambda(t)`` (time rescaling), so ``d = w = 0`` gives exactly the plain
  Poisson process. E.g. ``d = 0.5``: 1.5 r at 14:00 and 0.5 r at 02:00;
* tenants ``t01``, ``t02``, ...: tenant k submits a share proportional to ``1 / k**tenant_skew``
  (Zipf-like; skew 0 means equal shares);
* GPUs per job: drawn from ``gpu_sizes`` with ``gpu_probs`` (default close to Philly:
  1: 93 %, 2: 2.5 %, 4: 2.5 %, 8: 1.5 %, 16: 0.3 %, 32: 0.2 %);
* run time: log-normal with median ``median_runtime_s`` and shape ``runtime_sigma``, whole
  seconds, at least 1 s and at most ``max_runtime_s`` (default 1,200 s, 2.0, 30 days);
* walltime: the Philly rule, ``ceil(runtime x factor / round) x round``.

As a ``load_trace`` spec: ``synthetic:jobs=100000,rate=900,tenants=20,seed=3``. Keys:
``jobs, rate, tenants, skew, median_s, sigma, max_s, diurnal, weekly, seed``; a key left out
keeps its default.

>>> spec = parse_synthetic("jobs=5,rate=60,tenants=3,seed=1")
>>> t = generate_synthetic(spec)
>>> len(t), t.jobs[0].submit_s, sorted({j.tenant for j in t.jobs}) <= ["t01", "t02", "t03"]
(5, 0.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from steppe.core.errors import SteppeError, UnknownNameError
from steppe.core.job import JobSpec
from steppe.twin.memory import gc_paused
from steppe.twin.readers.philly import WALLTIME_DERIVED, check_walltime_rule, walltime_rule_note
from steppe.twin.trace import Trace

DAY_S = 86400.0
WEEK_S = 7 * DAY_S
DAY_PEAK_S = 14 * 3600.0  # 14:00
WEEK_PEAK_S = 3.5 * DAY_S  # Thursday 00:00, the middle of the week


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of a synthetic workload; see the module docstring for the model."""

    jobs: int = 10_000
    arrival_rate_per_h: float = 30.0
    tenants: int = 10
    tenant_skew: float = 1.0
    gpu_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    gpu_probs: tuple[float, ...] = (0.93, 0.025, 0.025, 0.015, 0.003, 0.002)
    median_runtime_s: float = 1200.0
    runtime_sigma: float = 2.0
    max_runtime_s: float = 30 * DAY_S
    diurnal: float = 0.0
    weekly: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.jobs >= 0, "jobs must be >= 0"),
            (0 < self.arrival_rate_per_h < math.inf, "arrival_rate_per_h must be > 0"),
            (self.tenants >= 1, "tenants must be >= 1"),
            (0 <= self.tenant_skew < math.inf, "tenant_skew must be >= 0"),
            (
                len(self.gpu_sizes) == len(self.gpu_probs) > 0,
                "gpu_sizes and gpu_probs need equal, non-zero length",
            ),
            (all(s >= 1 for s in self.gpu_sizes), "gpu_sizes must be >= 1"),
            (all(p >= 0 for p in self.gpu_probs), "gpu_probs must be >= 0"),
            (abs(sum(self.gpu_probs) - 1.0) < 1e-6, "gpu_probs must sum to 1"),
            (0 < self.median_runtime_s < math.inf, "median_runtime_s must be > 0"),
            (0 <= self.runtime_sigma < math.inf, "runtime_sigma must be >= 0"),
            (1 <= self.max_runtime_s < math.inf, "max_runtime_s must be >= 1"),
            (self.diurnal >= 0 and self.weekly >= 0, "diurnal and weekly must be >= 0"),
            (self.diurnal + self.weekly < 1, "diurnal + weekly must be < 1 (the rate stays positive)"),
            (self.seed >= 0, "seed must be >= 0"),
        ]
        for ok, problem in checks:
            if not ok:
                raise SteppeError(f"synthetic workload: {problem}")


KEYS: dict[str, str] = {
    "jobs": "jobs",
    "rate": "arrival_rate_per_h",
    "tenants": "tenants",
    "skew": "tenant_skew",
    "median_s": "median_runtime_s",
    "sigma": "runtime_sigma",
    "max_s": "max_runtime_s",
    "diurnal": "diurnal",
    "weekly": "weekly",
    "seed": "seed",
}


def parse_synthetic(text: str, seed: int = 0) -> SyntheticSpec:
    """A spec from ``key=value`` pairs separated by commas; ``seed`` applies unless the text sets one."""
    kinds = {f.name: f.type for f in fields(SyntheticSpec)}
    values: dict[str, Any] = {"seed": seed}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not sep:
            raise SteppeError(f"synthetic spec: {item.strip()!r} is not key=value")
        if key not in KEYS:
            raise UnknownNameError("synthetic parameter", key, list(KEYS))
        name = KEYS[key]
        try:
            values[name] = int(raw) if kinds[name] == "int" else float(raw)
        except ValueError:
            kind = "an integer" if kinds[name] == "int" else "a number"
            raise SteppeError(f"synthetic spec: {key}: not {kind}: {raw!r}") from None
    return replace(SyntheticSpec(), **values)


def generate_synthetic(spec: SyntheticSpec, *, walltime_factor: float = 2.0, walltime_round_s: float = 3600.0) -> Trace:
    """Draw the workload ``spec`` describes; the same spec always gives the same jobs."""
    check_walltime_rule(walltime_factor, walltime_round_s)
    n = spec.jobs
    arrivals, who, size, length = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(4))
    gaps = arrivals.exponential(3600.0 / spec.arrival_rate_per_h, n)
    submit = np.cumsum(gaps) - (gaps[0] if n else 0.0)
    if spec.diurnal or spec.weekly:
        submit = np.maximum.accumulate(np.round(_rescale(submit, spec.diurnal, spec.weekly), 3))
    else:
        submit = np.round(submit, 3)
    shares = 1.0 / np.arange(1, spec.tenants + 1, dtype=np.float64) ** spec.tenant_skew
    tenant_idx = who.choice(spec.tenants, size=n, p=shares / shares.sum())
    probs = np.asarray(spec.gpu_probs, dtype=np.float64)
    gpus = size.choice(np.asarray(spec.gpu_sizes, dtype=np.int64), size=n, p=probs / probs.sum())
    runtime = length.lognormal(math.log(spec.median_runtime_s), spec.runtime_sigma, n)
    runtime = np.clip(np.rint(runtime), 1.0, math.floor(spec.max_runtime_s))
    walltime = np.maximum(np.ceil(runtime * walltime_factor / walltime_round_s), 1.0) * walltime_round_s
    walltime = np.maximum(walltime, runtime)
    width = max(2, len(str(spec.tenants)))
    names = [f"t{k + 1:0{width}d}" for k in range(spec.tenants)]
    tenants = [names[k] for k in tenant_idx.tolist()]
    columns = (range(1, n + 1), submit.tolist(), gpus.tolist(), runtime.tolist(), walltime.tolist(), tenants)
    with gc_paused():
        jobs = list(map(JobSpec, *columns))
    trace = Trace(source=f"synthetic:{_describe(spec)}", jobs=jobs)
    trace.notes += [
        f"synthetic workload: Poisson arrivals at {spec.arrival_rate_per_h:g}/h{_cycles(spec)}, "
        f"{spec.tenants} tenants with "
        f"Zipf({spec.tenant_skew:g}) shares, log-normal run time (median {spec.median_runtime_s:g} s, "
        f"sigma {spec.runtime_sigma:g}, at most {spec.max_runtime_s:g} s), seed {spec.seed}",
        walltime_rule_note(walltime_factor, walltime_round_s),
    ]
    if n:
        trace.adjusted[WALLTIME_DERIVED] = n
    return trace


def synthetic_trace(
    text: str,
    *,
    walltime_factor: float = 2.0,
    walltime_round_s: float = 3600.0,
    seed: int = 0,
    limit: int | None = None,
) -> Trace:
    """``load_trace`` entry point: parse ``key=value,...`` and generate (at most ``limit`` jobs)."""
    spec = parse_synthetic(text, seed=seed)
    if limit is not None:
        spec = replace(spec, jobs=max(0, min(spec.jobs, limit)))
    return generate_synthetic(spec, walltime_factor=walltime_factor, walltime_round_s=walltime_round_s)


def _cumulative_rate(t: np.ndarray, diurnal: float, weekly: float) -> np.ndarray:
    """``Lambda(t) / r``: expected arrivals by ``t`` in units of the mean gap (``t`` itself at d = w = 0)."""
    out = t.copy()
    for amp, period, peak in ((diurnal, DAY_S, DAY_PEAK_S), (weekly, WEEK_S, WEEK_PEAK_S)):
        if amp:
            w = 2 * math.pi / period
            out += amp / w * (np.sin(w * (t - peak)) + math.sin(w * peak))
    return out


def _rescale(s: np.ndarray, diurnal: float, weekly: float) -> np.ndarray:
    """Times ``t`` with ``Lambda(t) / r = s`` (the plain Poisson times ``s`` mapped onto the cycles).

    ``Lambda(t) / r - t`` is bounded by ``B = 2 (d / w_day + w / w_week)``, so ``t`` lies in
    ``[s - B, s + B]``; ``Lambda`` increases, so 48 bisection steps pin ``t`` to ``2 B / 2**48``
    (under a nanosecond for B = 1.2e5 s, d = 0.3 and w = 0.6; times are then rounded to 1 ms).
    """
    bound = 2 * (diurnal * DAY_S + weekly * WEEK_S) / (2 * math.pi)
    lo, hi = np.maximum(s - bound, 0.0), s + bound
    for _ in range(48):
        mid = 0.5 * (lo + hi)
        below = _cumulative_rate(mid, diurnal, weekly) < s
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _cycles(spec: SyntheticSpec) -> str:
    parts = [f"{name} +-{amp:.0%}" for name, amp in (("daily", spec.diurnal), ("weekly", spec.weekly)) if amp]
    return f" on average ({', '.join(parts)} cycles)" if parts else ""


def _describe(spec: SyntheticSpec) -> str:
    default = SyntheticSpec()
    parts = [
        f"{key}={getattr(spec, name)}" for key, name in KEYS.items() if getattr(spec, name) != getattr(default, name)
    ]
    return ",".join(parts) or "defaults"

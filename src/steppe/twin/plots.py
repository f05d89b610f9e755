"""Comparison plots: JCT CDF per policy and GPU utilization over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from steppe.twin.replay import ReplayResult  # noqa: E402


def plot_comparison(results: Sequence[ReplayResult], path: Path, bin_s: float = 3600.0) -> Path:
    """Two panels: JCT CDFs (log x) and hourly utilization, one line per policy."""
    fig, (ax_cdf, ax_util) = plt.subplots(1, 2, figsize=(13, 4.8))
    for res in results:
        label = f"{res.policy} (oracle)" if res.oracle else res.policy
        jct = np.sort(res.metrics.jct_values())
        if len(jct):
            ax_cdf.plot(np.maximum(jct, 1.0) / 3600.0, np.arange(1, len(jct) + 1) / len(jct), label=label)
        t, util = res.metrics.utilization_series(bin_s)
        if len(t):
            ax_util.plot((t - t[0]) / 86400.0, util, label=label, linewidth=0.8)
    ax_cdf.set_xscale("log")
    ax_cdf.set_xlabel("job completion time (hours, log)")
    ax_cdf.set_ylabel("fraction of jobs")
    ax_cdf.set_title("JCT CDF")
    ax_cdf.grid(True, alpha=0.3)
    ax_cdf.legend()
    ax_util.set_xlabel("days since first submission")
    ax_util.set_ylabel("GPU utilization (hourly mean)")
    ax_util.set_ylim(0, 1.05)
    ax_util.set_title("Utilization over time")
    ax_util.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_power(result: ReplayResult, path: Path) -> Path:
    """Three panels over time: facility power (hourly peak and mean) against the cap, PUE, carbon intensity."""
    energy = result.energy
    if energy is None:
        raise ValueError("plot_power needs a replay with a site")
    hours = len(energy.facility_kwh_by_hour)
    days = np.arange(hours) / 24.0
    hour_of = np.minimum((energy.times // 3600).astype(np.int64), max(hours - 1, 0))
    peak = np.zeros(hours)
    np.maximum.at(peak, hour_of, energy.facility_w)
    fig, (ax_p, ax_pue, ax_c) = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    ax_p.plot(days, energy.facility_kwh_by_hour / 1e3, label="facility power, hourly mean", linewidth=0.8)
    ax_p.plot(days, peak / 1e6, label="facility power, hourly peak", linewidth=0.6, alpha=0.7)
    ax_p.plot(days, energy.arrays.cap_w[:hours] / 1e6, label="facility cap", color="black", linewidth=1.0)
    ax_p.set_ylabel("MW")
    ax_p.set_title(f"{result.policy}: facility power against the cap ({result.summary.get('site', '')})")
    ax_p.legend(loc="lower right")
    ax_p.grid(True, alpha=0.3)
    ax_pue.plot(days, energy.arrays.pue[:hours], color="tab:green", linewidth=0.8)
    ax_pue.set_ylabel("PUE")
    ax_pue.grid(True, alpha=0.3)
    ax_c.plot(days, energy.arrays.carbon_g_per_kwh[:hours], color="tab:brown", linewidth=0.8)
    ax_c.set_ylabel("grid gCO2e/kWh")
    ax_c.set_xlabel("days since the replay's start")
    ax_c.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

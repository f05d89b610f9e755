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

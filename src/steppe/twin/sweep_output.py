"""A sweep's rows on disk: ``sweep.csv``, ``sweep.json`` and ``sweep.png``.

The CSV has one line per replay in the sweep's order and one column per scalar key of the rows
(the point's ``cluster``, ``policy``, ``power_cap``, ``site`` first, then ``gpus``, then the rest
by name; nested values such as ``trace_provenance`` stay in the JSON). The JSON is the list
``steppe sweep --json`` prints. The PNG shows mean JCT and p99 wait against the cluster's GPUs,
one line per policy (per policy, cap and site when the sweep has several caps or sites), and a
panel of facility energy when the replays metered power.

>>> rows = [{"cluster": "2x8:H100", "policy": "fifo", "power_cap": None, "site": None, "gpus": 16,
...          "mean_jct_s": 10.0, "trace_provenance": {"jobs": 3}}]
>>> csv_columns(rows)
['cluster', 'policy', 'power_cap', 'site', 'gpus', 'mean_jct_s']
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steppe.twin.sweep import POINT_KEYS

Row = dict[str, Any]


def csv_columns(rows: Sequence[Row]) -> list[str]:
    """The point's keys, ``gpus``, then every other key with a scalar value, by name."""
    first = [*POINT_KEYS, "gpus"]
    scalar = {k for row in rows for k, v in row.items() if not isinstance(v, dict | list)}
    return [k for k in first if k in scalar] + sorted(scalar - set(first))


def write_sweep_csv(rows: Sequence[Row], path: Path) -> Path:
    """One line per replay; an empty cell where a replay lacks a key (no power data), ``none`` for no cap/site."""
    columns = csv_columns(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(k, row.get(k)) for k in columns])
    return path


def _cell(key: str, value: Any) -> Any:
    if value is None:
        return "none" if key in ("power_cap", "site") else ""
    return value


def write_sweep_json(rows: Sequence[Row], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sweep_json(rows) + "\n")
    return path


def sweep_json(rows: Sequence[Row]) -> str:
    """The rows as ``steppe sweep --json`` prints them (keys sorted, as ``simulate --json``)."""
    return json.dumps(list(rows), indent=2, sort_keys=True)


def plot_sweep(rows: Sequence[Row], path: Path) -> Path:
    """Mean JCT and p99 wait (hours) against GPUs, one line per policy (and cap and site, when
    several); facility energy (MWh) in a third panel when the replays metered it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_energy = any(row.get("facility_energy_kwh") is not None for row in rows)
    panels = [("mean_jct_s", "mean JCT (hours)", 3600.0), ("p99_wait_s", "p99 wait (hours)", 3600.0)]
    if with_energy:
        panels.append(("facility_energy_kwh", "facility energy (MWh)", 1000.0))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    lines = _lines(rows)
    policies = list(dict.fromkeys(row["policy"] for row in rows))
    variants = list(dict.fromkeys((row["power_cap"], row["site"]) for row in rows))
    styles = ["-", "--", ":", "-."]
    for ax, (key, title, scale) in zip(axes[0], panels, strict=True):
        for (policy, cap, site), line in lines.items():
            points = sorted((row["gpus"], row[key] / scale) for row in line if row.get(key) is not None)
            if not points:
                continue
            variant = variants.index((cap, site))
            label = policy if len(variants) == 1 else f"{policy}, {cap or 'no cap'}" + (f", {site}" if site else "")
            ax.plot(
                [x for x, _ in points],
                [y for _, y in points],
                marker="o",
                color=f"C{policies.index(policy) % 10}",
                linestyle=styles[variant % len(styles)],
                label=label,
            )
        ax.set_xlabel("GPUs")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _lines(rows: Sequence[Row]) -> dict[tuple[str, str | None, str | None], list[Row]]:
    """Rows grouped into the plot's lines: one per (policy, power cap, site), in the sweep's order."""
    lines: dict[tuple[str, str | None, str | None], list[Row]] = {}
    for row in rows:
        lines.setdefault((row["policy"], row["power_cap"], row["site"]), []).append(row)
    return lines


def write_sweep_outputs(rows: Sequence[Row], out_dir: Path) -> list[Path]:
    """``sweep.csv``, ``sweep.json`` and ``sweep.png`` under ``out_dir``."""
    return [
        write_sweep_csv(rows, out_dir / "sweep.csv"),
        write_sweep_json(rows, out_dir / "sweep.json"),
        plot_sweep(rows, out_dir / "sweep.png"),
    ]

"""Rich rendering of replay summaries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from steppe.core.units import format_duration

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("jobs", "jobs", "int"),
    ("mean JCT", "mean_jct_s", "dur"),
    ("median JCT", "median_jct_s", "dur"),
    ("p95 JCT", "p95_jct_s", "dur"),
    ("p99 JCT", "p99_jct_s", "dur"),
    ("mean wait", "mean_wait_s", "dur"),
    ("mean bounded slowdown", "mean_bounded_slowdown", "f2"),
    ("GPU utilization", "utilization", "pct"),
    ("makespan", "makespan_s", "dur"),
    ("Jain index (tenants)", "jain_index", "f3"),
    ("preemptions", "preemptions", "int"),
    ("rejected at submit", "rejected", "int"),
    ("never finished", "unfinished", "int"),
    ("replay wall time", "wall_s", "secs"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "dur":
        return format_duration(float(value))
    if kind == "pct":
        return f"{100 * float(value):.1f} %"
    if kind == "secs":
        return f"{float(value):.2f} s"
    if kind == "f2":
        return f"{float(value):.2f}"
    return f"{float(value):.3f}"


def summary_table(summaries: Sequence[dict[str, Any]], title: str) -> Table:
    """One column per policy, one row per figure."""
    table = Table(title=title)
    table.add_column("metric")
    for s in summaries:
        name = s.get("policy", "?")
        table.add_column(f"{name} (oracle)" if s.get("oracle") else str(name), justify="right")
    for label, key, kind in _ROWS:
        table.add_row(label, *(_fmt(s.get(key), kind) for s in summaries))
    return table


def tenant_table(tenants: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Per tenant")
    for col in ("tenant", "jobs", "GPU-hours", "share", "weight", "mean wait", "mean slowdown"):
        table.add_column(col, justify="left" if col == "tenant" else "right")
    for t in tenants:
        table.add_row(
            t["tenant"], f"{t['jobs']:,}", f"{t['gpu_hours']:,.0f}", f"{100 * t['share']:.1f} %",
            f"{t['weight']:g}", format_duration(t["mean_wait_s"]), f"{t['mean_bounded_slowdown']:.2f}",
        )
    return table


def print_notes(console: Console, provenance: dict[str, Any]) -> None:
    """What the reader did to the trace (derived walltimes, dropped or adjusted rows)."""
    for note in provenance.get("notes", []):
        console.print(f"[dim]note:[/dim] {note}")
    for reason, count in provenance.get("dropped", {}).items():
        console.print(f"[dim]dropped:[/dim] {count:,} rows: {reason}")
    for reason, count in provenance.get("adjusted", {}).items():
        console.print(f"[dim]adjusted:[/dim] {count:,} rows: {reason}")

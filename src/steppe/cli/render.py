"""Rich rendering of replay summaries, and the CLI's one-line error messages (``print_error``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def print_error(message: str) -> None:
    """``error: MESSAGE`` on stderr as one line. The message is plain text, never rich markup, so a
    pattern such as ``[a-z0-9]`` in it is printed as it is."""
    text = Text.assemble(("error:", "red"), " ", " ".join(message.split()))
    Console(stderr=True, soft_wrap=True).print(text, highlight=False)


def print_warning(message: str, label: str = "warning") -> None:
    """``warning: MESSAGE`` (or ``note:``) on stderr as one line of plain text, as ``print_error``."""
    text = Text.assemble((f"{label}:", "yellow"), " ", " ".join(message.split()))
    Console(stderr=True, soft_wrap=True).print(text, highlight=False)


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
    if kind == "f1":
        return f"{float(value):.1f}"
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
            t["tenant"],
            f"{t['jobs']:,}",
            f"{t['gpu_hours']:,.0f}",
            f"{100 * t['share']:.1f} %",
            f"{t['weight']:g}",
            format_duration(t["mean_wait_s"]),
            f"{t['mean_bounded_slowdown']:.2f}",
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


_ENERGY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("power scheduling", "power_scheduling", "str"),
    ("facility cap (base)", "power_cap_w", "mw"),
    ("lowest cap", "min_power_cap_w", "mw"),
    ("peak facility power", "peak_facility_power_w", "mw"),
    ("hours at the cap", "hours_at_cap", "f1"),
    ("cap violations", "power_cap_violations", "int"),
    ("IT energy (MWh)", "it_energy_kwh", "mwh"),
    ("facility energy (MWh)", "facility_energy_kwh", "mwh"),
    ("mean PUE", "mean_pue", "f3"),
    ("carbon (t CO2e)", "carbon_kg", "t"),
    ("cost (million KZT)", "cost_kzt", "mkzt"),
    ("cost (thousand USD)", "cost_usd", "kusd"),
    ("jobs run under a GPU cap", "capped_jobs", "int"),
)


def _efmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    scale = {"mwh": 1e3, "t": 1e3, "mkzt": 1e6, "kusd": 1e3}
    if kind == "str":
        return str(value)
    if kind == "mw":
        v = float(value)
        return f"{v / 1e6:,.3f} MW" if v >= 1e6 else f"{v / 1e3:,.1f} kW"
    if kind in scale:
        return f"{float(value) / scale[kind]:,.2f}"
    return _fmt(value, kind)


def energy_table(summaries: Sequence[dict[str, Any]]) -> Table:
    """Power, energy, carbon and cost, one column per run."""
    table = Table(title=f"Energy at {summaries[0].get('site', '?')}")
    table.add_column("metric")
    for s in summaries:
        table.add_column(str(s.get("policy", "?")), justify="right")
    for label, key, kind in _ENERGY_ROWS:
        table.add_row(label, *(_efmt(s.get(key), kind) for s in summaries))
    return table


def tenant_energy_table(tenants: Sequence[dict[str, Any]], hub: dict[str, Any]) -> Table:
    table = Table(title="Energy per tenant (idle hosts and GPUs are the hub's)")
    for col in ("tenant", "IT MWh", "facility MWh", "t CO2e", "million KZT", "thousand USD"):
        table.add_column(col, justify="left" if col == "tenant" else "right")
    for t in tenants:
        table.add_row(
            t["tenant"],
            f"{t['it_energy_kwh'] / 1e3:,.2f}",
            f"{t['facility_energy_kwh'] / 1e3:,.2f}",
            f"{t['carbon_kg'] / 1e3:,.2f}",
            f"{t['cost_kzt'] / 1e6:,.3f}",
            f"{t['cost_usd'] / 1e3:,.2f}",
        )
    table.add_row("(idle)", f"{hub.get('idle_it_energy_kwh', 0) / 1e3:,.2f}", "", "", "", "")
    return table


_SWEEP_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("jobs", "jobs", "int"),
    ("mean JCT", "mean_jct_s", "dur"),
    ("p99 JCT", "p99_jct_s", "dur"),
    ("mean wait", "mean_wait_s", "dur"),
    ("p99 wait", "p99_wait_s", "dur"),
    ("util.", "utilization", "pct"),
    ("facility MWh", "facility_energy_kwh", "mwh"),
    ("cap viol.", "power_cap_violations", "int"),
    ("replay", "wall_s", "secs"),
)


def sweep_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    """One row per replay of a sweep, in the sweep's order; energy columns only when a replay metered power."""
    table = Table(title=title)
    for col in ("cluster", "GPUs", "policy", "power cap", "site"):
        table.add_column(col, justify="right" if col == "GPUs" else "left")
    columns = [c for c in _SWEEP_COLUMNS if any(row.get(c[1]) is not None for row in rows)]
    for label, _, _ in columns:
        table.add_column(label, justify="right")
    for row in rows:
        policy = f"{row['policy']} (oracle)" if row.get("oracle") else str(row["policy"])
        point = (
            str(row["cluster"]),
            _fmt(row.get("gpus"), "int"),
            policy,
            row["power_cap"] or "none",
            row["site"] or "none",
        )
        table.add_row(*point, *(_efmt(row.get(key), kind) for _, key, kind in columns))
    return table

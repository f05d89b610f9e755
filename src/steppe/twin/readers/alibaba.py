"""Alibaba 2023 "openb" GPU cluster trace (Weng et al., ATC'23), pods and nodes.

Pods: ``openb_pod_list_*.csv`` with the header
``name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time``
(times in seconds). A directory means its ``openb_pod_list_default.csv``. The ``multigpuNN``
variants carry no times and cannot be replayed. Rules applied, each counted in the trace:

* ``submit_s`` = ``creation_time`` from the first pod; ``runtime_s`` = ``deletion_time`` -
  ``scheduled_time`` (``creation_time`` when a pod was never scheduled). Pods still running at
  the end of the snapshot have their run time cut there.
* CPU-only pods (``num_gpu`` = 0) are dropped. A fractional GPU (``gpu_milli`` < 1000) is rounded
  up to a whole GPU: Steppe allocates whole GPUs and does not model sharing.
* ``gpu_spec`` lists the allowed models separated by ``|`` (empty = any). One model becomes
  ``gpu_type`` (``V100M16``/``V100M32`` -> ``V100``); several models, or the undisclosed internal
  types ``G1``-``G3`` that Steppe does not know, leave ``gpu_type`` unset.
* ``qos`` is kept as is; ``LS`` (latency-sensitive) pods are inference, the rest training, and
  ``BE`` (best-effort) pods are the preemptible ones. The trace names no tenants, so the QoS
  class is the tenant.
* The trace has no walltimes: they are derived by the Philly rule.

Nodes: ``openb_node_list_*.csv`` (``sn,cpu_milli,memory_mib,gpu,model``). ``openb_cluster_toml``
renders the GPU nodes as a cluster file for ``load_cluster``.

>>> normalise_gpu_spec("V100M16|V100M32"), normalise_gpu_spec("G2"), normalise_gpu_spec("T4|P100")
('V100', None, None)
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from steppe.core.errors import TraceError
from steppe.core.gpu import GPU_TYPES
from steppe.core.job import JobSpec, WorkloadClass
from steppe.twin.readers.philly import WALLTIME_DERIVED, check_walltime_rule, existing_file, walltime_rule_note
from steppe.twin.trace import Trace

POD_COLUMNS = (
    "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
    "creation_time", "deletion_time", "scheduled_time",
)  # fmt: skip
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
DEFAULT_PODS = "openb_pod_list_default.csv"
DEFAULT_NODES = "openb_node_list_gpu_node.csv"
MODEL_NAMES = {"V100M16": "V100", "V100M32": "V100"}

DROP_CPU_ONLY = "CPU-only pod (num_gpu = 0)"
FRACTIONAL = "fractional GPU rounded up to a whole GPU"
NEVER_SCHEDULED = "never scheduled: run time from creation_time"
SPEC_SEVERAL = "gpu_spec allows several models: constraint dropped"
SPEC_UNKNOWN = "gpu_spec names a model Steppe does not know: constraint dropped"


def normalise_gpu_spec(spec: str) -> str | None:
    """The one Steppe GPU type a ``gpu_spec`` pins a pod to, or None (any model will do)."""
    return _spec(spec)[0]


def _spec(spec: str) -> tuple[str | None, str | None]:
    """``(gpu_type, adjustment reason)``: the reason says why a non-empty spec was not kept."""
    models = {MODEL_NAMES.get(m.strip().upper(), m.strip().upper()) for m in spec.split("|") if m.strip()}
    if not models:
        return None, None
    if len(models) > 1:
        return None, SPEC_SEVERAL
    (model,) = models
    return (model, None) if model in GPU_TYPES else (None, SPEC_UNKNOWN)


def read_alibaba(
    path: str | Path,
    *,
    walltime_factor: float = 2.0,
    walltime_round_s: float = 3600.0,
    limit: int | None = None,
) -> Trace:
    """Read an openb pod list; see the module docstring for the rules."""
    check_walltime_rule(walltime_factor, walltime_round_s)
    p = _existing(path, DEFAULT_PODS)
    src = str(p)
    trace = Trace(source=f"alibaba:{p}", jobs=[])
    specs: dict[str, tuple[str | None, str | None]] = {}
    rows: list[tuple[float, int, float, str | None, str, str]] = []
    still_running = 0
    with p.open(newline="") as fh:
        reader = csv.reader(fh)
        col = _columns(reader, POD_COLUMNS, src, "the multigpuNN variants carry no times and cannot be replayed")
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != len(col):
                raise TraceError(src, line, f"expected {len(col)} columns, got {len(row)}")
            gpus = _int(row[col["num_gpu"]], "num_gpu", src, line, lowest=0)
            if gpus == 0:
                trace.dropped[DROP_CPU_ONLY] += 1
                continue
            if _int(row[col["gpu_milli"]], "gpu_milli", src, line, lowest=0) < 1000:
                trace.adjusted[FRACTIONAL] += 1
            created = _seconds(row[col["creation_time"]], "creation_time", src, line)
            deleted = _seconds(row[col["deletion_time"]], "deletion_time", src, line)
            if row[col["scheduled_time"]].strip():
                started = _seconds(row[col["scheduled_time"]], "scheduled_time", src, line)
                start_field = "scheduled_time"
            else:
                started, start_field = created, "creation_time"
                trace.adjusted[NEVER_SCHEDULED] += 1
            if deleted < started:
                raise TraceError(src, line, f"deletion_time: {deleted:g} is before {start_field} {started:g}")
            raw_spec = row[col["gpu_spec"]].strip()
            if raw_spec not in specs:
                specs[raw_spec] = _spec(raw_spec)
            gtype, reason = specs[raw_spec]
            if reason:
                trace.adjusted[reason] += 1
            qos = row[col["qos"]].strip()
            if not qos:
                raise TraceError(src, line, "qos: empty")
            still_running += row[col["pod_phase"]].strip() == "Running"
            rows.append((created, gpus, deleted - started, gtype, qos, row[col["name"]].strip()))
    rows.sort(key=lambda r: r[0])
    if limit is not None:
        rows = rows[: max(0, limit)]
    t0 = rows[0][0] if rows else 0.0
    for job_id, (created, gpus, runtime, gtype, qos, name) in enumerate(rows, start=1):
        walltime = max(1, math.ceil(runtime * walltime_factor / walltime_round_s)) * walltime_round_s
        workload = WorkloadClass.INFERENCE if qos == "LS" else WorkloadClass.TRAINING
        trace.jobs.append(
            JobSpec(
                job_id,
                created - t0,
                gpus,
                runtime,
                max(walltime, runtime),
                tenant=qos,
                gpu_type=gtype,
                qos=qos,
                preemptible=qos == "BE",
                workload=workload,
                name=name,
            )
        )
    if trace.jobs:
        trace.adjusted[WALLTIME_DERIVED] = len(trace.jobs)
    trace.notes += [
        walltime_rule_note(walltime_factor, walltime_round_s) + " (the trace logs none)",
        "tenant = QoS class (the trace names no tenants); LS pods are inference, BE pods preemptible",
        "fractional GPUs are rounded up to whole GPUs: Steppe does not model GPU sharing",
        "gpu_spec: one allowed model pins gpu_type (V100M16/V100M32 -> V100); several models or the "
        "undisclosed G1-G3 types leave it unset",
    ]
    if still_running:
        trace.notes.append(f"{still_running} pods were still running at the snapshot end; their run time stops there")
    return trace


def read_openb_nodes(path: str | Path) -> list[tuple[str, int, str]]:
    """GPU nodes of an openb node list as ``(name, gpus, model)``; nodes without GPUs are skipped."""
    p = _existing(path, DEFAULT_NODES)
    src = str(p)
    nodes: list[tuple[str, int, str]] = []
    with p.open(newline="") as fh:
        reader = csv.reader(fh)
        col = _columns(reader, NODE_COLUMNS, src, "")
        for row in reader:
            if not row:
                continue
            if len(row) != len(col):
                raise TraceError(src, reader.line_num, f"expected {len(col)} columns, got {len(row)}")
            gpus = _int(row[col["gpu"]], "gpu", src, reader.line_num, lowest=0)
            if gpus > 0:
                nodes.append((row[col["sn"]].strip(), gpus, row[col["model"]].strip()))
    return nodes


def openb_cluster_toml(path: str | Path, name: str = "alibaba-openb") -> str:
    """A cluster TOML (see ``steppe.core.cluster_config``) with one ``[[nodes]]`` block per (GPUs, model)."""
    p = _existing(path, DEFAULT_NODES)
    nodes = read_openb_nodes(p)
    groups = Counter((gpus, model) for _name, gpus, model in nodes)
    unknown = sorted({model or "(none)" for _g, model in groups if _steppe_type(model) == "GENERIC"})
    lines = [
        f"# Alibaba openb GPU nodes from {p.name}: {len(nodes)} nodes, {sum(g for _n, g, _m in nodes)} GPUs.",
        "# V100M16 and V100M32 map to V100.",
    ]
    if unknown:
        lines.append(f"# {', '.join(unknown)}: undisclosed or unknown GPU models, modelled as GENERIC.")
    lines += [f"name = {_quote(name)}", ""]
    for (gpus, model), count in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        prefix = f"{(model or 'none').lower()}-{gpus}g-"
        lines += [
            "[[nodes]]",
            f"prefix = {_quote(prefix)}",
            f"count = {count}",
            f"gpus = {gpus}",
            f"gpu_type = {_quote(_steppe_type(model))}",
            "",
        ]
    return "\n".join(lines)


def _steppe_type(model: str) -> str:
    name = MODEL_NAMES.get(model.upper(), model.upper())
    return name if name in GPU_TYPES else "GENERIC"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _columns(reader: Iterator[list[str]], required: tuple[str, ...], src: str, hint: str) -> dict[str, int]:
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise TraceError(src, 1, f"missing columns: {', '.join(missing)}" + (f" ({hint})" if hint else ""))
    return {c: header.index(c) for c in header}


def _int(text: str, field: str, src: str, line: int, lowest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TraceError(src, line, f"{field}: not an integer: {text!r}") from None
    if value < lowest:
        raise TraceError(src, line, f"{field}: must be >= {lowest}, got {value}")
    return value


def _seconds(text: str, field: str, src: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(src, line, f"{field}: not a number of seconds: {text!r}") from None
    if not 0.0 <= value < 1e12:
        raise TraceError(src, line, f"{field}: must be >= 0 seconds, got {text!r}")
    return value


def _existing(path: str | Path, default_name: str) -> Path:
    p = Path(path)
    return existing_file(p / default_name if p.is_dir() else p)

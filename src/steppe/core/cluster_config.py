"""Load a cluster from a TOML file or from the shorthand ``NODESxGPUS:TYPE``.

TOML layout (every key is validated; an error names the file, the key and the problem)::

    name = "astana-hub"

    [[nodes]]             # one block per group of identical nodes
    prefix = "h200-"      # names h200-001, h200-002, ...
    count = 80
    gpus = 8
    gpu_type = "H200"
    host_power_w = 1800   # optional: CPUs, memory, NICs, fans of one node
    # names = ["gpu-a", "gpu-b"]  # instead of prefix and count: the nodes' own names (an engine's)

    [tenants.kaznu]
    weight = 2.0          # fair-share weight (default 1)
    gpu_quota = 64        # concurrent-GPU limit (default none)

    [qos.interactive]
    priority = 1000
    latency_critical = true

A hub at several sites declares each site and says where each group of nodes is::

    [sites.astana]
    site_file = "astana"      # energy and network facts: a bundled site or a TOML path (default: the name)
    executor = "slurm"        # the engine that runs the site's jobs (default local)
    gpus = "engine"           # optional: no [[nodes]] here, the live hub reads them from the engine
    power_cap_kw = 40000      # optional: replaces the site file's base facility cap
    [sites.astana.executor_options]
    partition = "gpu"         # as --executor-opt partition=gpu

    [[nodes]]
    site = "astana"           # required once sites are declared; every declared site has nodes
    ...

Pools are then per site and GPU type (``astana/H200``); a job runs on one site.

>>> load_cluster("80x8:H100").total_gpus
640
>>> load_cluster("1x640:H100").nodes[0].gpus
640
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from steppe.core.cluster import DEFAULT_QOS, Cluster, Node, QosSpec, SiteSpec, TenantSpec
from steppe.core.errors import ConfigError, SteppeError
from steppe.core.gpu import gpu_type

_SHORTHAND = re.compile(r"^(\d+)x(\d+):([A-Za-z0-9]+)$")


def load_cluster(spec: str | Path) -> Cluster:
    """A cluster from ``NODESxGPUS:TYPE`` (e.g. ``80x8:H100``), a bundled name, or a TOML path."""
    text = str(spec)
    match = _SHORTHAND.match(text)
    if match:
        nodes, gpus = int(match.group(1)), int(match.group(2))
        if nodes < 1 or gpus < 1:
            raise ConfigError(text, "", "node and GPU counts must be at least 1")
        try:
            return Cluster.uniform(nodes, gpus, match.group(3))
        except SteppeError as exc:
            raise ConfigError(text, "gpu_type", str(exc)) from None
    path = Path(text)
    if not path.exists():
        bundled = Path(__file__).resolve().parent.parent / "data" / f"{text}.toml"
        if bundled.exists():
            path = bundled
        else:
            raise ConfigError(text, "", "no such file, and not a shorthand like 80x8:H100")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    return cluster_from_dict(data, str(path))


def cluster_from_dict(data: dict[str, Any], source: str) -> Cluster:
    """Validate a parsed TOML document and build the cluster."""
    _only_keys(data, {"name", "nodes", "tenants", "qos", "sites"}, source, "")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise ConfigError(source, "name", "must be a string")
    sites = _sites(data.get("sites", {}), source)
    from_engine = {s for s, spec in sites.items() if spec.gpus_from_engine}
    groups = data.get("nodes", [] if from_engine else None)
    if not isinstance(groups, list) or not (groups or from_engine):
        raise ConfigError(source, "nodes", "at least one [[nodes]] block is required")
    nodes: list[Node] = []
    seen: set[str] = set()
    for gi, group in enumerate(groups):
        key = f"nodes[{gi}]"
        if not isinstance(group, dict):
            raise ConfigError(source, key, "must be a table")
        _only_keys(group, {"prefix", "count", "names", "gpus", "gpu_type", "host_power_w", "site"}, source, key)
        site = group.get("site", "")
        if sites and not site:
            raise ConfigError(source, f"{key}.site", f"required once sites are declared; one of {', '.join(sites)}")
        if site and site not in sites:
            declared = ", ".join(sites) or "none"
            raise ConfigError(source, f"{key}.site", f"{site!r} is not a declared site (declared: {declared}); "
                              f"add a [sites.{site}] table")
        if site in from_engine:
            raise ConfigError(source, f"{key}.site", f"site {site!r} reads its nodes from its engine "
                              '(gpus = "engine"); declare them here or there, not both')
        count = _positive_int(group, "count", source, key, default=1) if "names" not in group else 0
        gpus = _positive_int(group, "gpus", source, key)
        type_name = group.get("gpu_type")
        if not isinstance(type_name, str):
            raise ConfigError(source, f"{key}.gpu_type", "required, a GPU type name such as H200")
        try:
            gtype = gpu_type(type_name)
        except SteppeError as exc:
            raise ConfigError(source, f"{key}.gpu_type", str(exc)) from None
        host_power = group.get("host_power_w", 0.0)
        if not isinstance(host_power, int | float) or isinstance(host_power, bool) or host_power < 0:
            raise ConfigError(source, f"{key}.host_power_w", "must be a non-negative number of watts")
        prefix = group.get("prefix", f"{gtype.name.lower()}-")
        if not isinstance(prefix, str):
            raise ConfigError(source, f"{key}.prefix", "must be a string")
        for node_name in _names(group, prefix, count, source, key):
            if node_name in seen:
                raise ConfigError(source, f"{key}.prefix", f"node name {node_name!r} repeats an earlier group")
            seen.add(node_name)
            nodes.append(Node(len(nodes), node_name, gtype, gpus, float(host_power), site))
    empty = [s for s in sites if s not in from_engine and not any(n.site == s for n in nodes)]
    if empty:
        raise ConfigError(source, f"sites.{empty[0]}", "has no nodes: give a [[nodes]] block site = " + repr(empty[0]))
    tenants = _tenants(data.get("tenants", {}), source)
    qos = _qos(data.get("qos", {}), source)
    return Cluster(name, tuple(nodes), tenants, qos, sites)


def _names(group: dict[str, Any], prefix: str, count: int, source: str, key: str) -> list[str]:
    """A group's node names: ``names`` as given (an engine's node names, e.g. Slurm's ``NodeName``),
    else ``prefix`` numbered from 001 (``h200-001``, ``h200-002``, ...)."""
    if "names" not in group:
        return [f"{prefix}{i + 1:03d}" for i in range(count)]
    names = group["names"]
    if "count" in group or "prefix" in group:
        raise ConfigError(source, f"{key}.names", "give either names, or prefix and count")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(source, f"{key}.names", 'must be a non-empty list of node names, e.g. ["gpu-a", "gpu-b"]')
    return list(names)


_SITE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def _sites(raw: Any, source: str) -> dict[str, SiteSpec]:
    """The ``[sites.NAME]`` tables (see the module docstring)."""
    if not isinstance(raw, dict):
        raise ConfigError(source, "sites", "must be a table of tables, e.g. [sites.astana]")
    out: dict[str, SiteSpec] = {}
    for sname, body in raw.items():
        key = f"sites.{sname}"
        if not _SITE_NAME.match(sname):
            raise ConfigError(source, key, "a site name is lower-case letters, digits and '-', e.g. astana")
        if not isinstance(body, dict):
            raise ConfigError(source, key, "must be a table")
        _only_keys(body, {"site_file", "executor", "executor_options", "power_cap_kw", "gpus"}, source, key)
        gpus = body.get("gpus", "declared")
        if gpus not in ("declared", "engine"):
            raise ConfigError(source, f"{key}.gpus", f'"declared" ([[nodes]]) or "engine" (read from it), got {gpus!r}')
        site_file = body.get("site_file", sname)
        if not isinstance(site_file, str) or not site_file:
            raise ConfigError(source, f"{key}.site_file", "must be a bundled site name or a path, e.g. astana")
        executor = body.get("executor", "local")
        if not isinstance(executor, str) or not executor:
            raise ConfigError(source, f"{key}.executor", "must be an engine name, e.g. slurm")
        options = body.get("executor_options", {})
        if not isinstance(options, dict) or not all(isinstance(v, str | int) for v in options.values()):
            raise ConfigError(source, f"{key}.executor_options", 'must be a table of strings, e.g. partition = "gpu"')
        cap = body.get("power_cap_kw")
        if cap is not None and (not isinstance(cap, int | float) or isinstance(cap, bool) or cap <= 0):
            raise ConfigError(source, f"{key}.power_cap_kw", f"must be a positive number of kW, got {cap!r}")
        pairs = tuple((str(k), str(v)) for k, v in options.items())
        cap_w = None if cap is None else float(cap) * 1000.0
        out[sname] = SiteSpec(sname, site_file, executor, pairs, cap_w, gpus_from_engine=gpus == "engine")
    return out


def _tenants(raw: Any, source: str) -> dict[str, TenantSpec]:
    if not isinstance(raw, dict):
        raise ConfigError(source, "tenants", "must be a table of tables")
    out: dict[str, TenantSpec] = {}
    for tname, body in raw.items():
        key = f"tenants.{tname}"
        if not isinstance(body, dict):
            raise ConfigError(source, key, "must be a table")
        _only_keys(body, {"weight", "gpu_quota"}, source, key)
        weight = body.get("weight", 1.0)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
            raise ConfigError(source, f"{key}.weight", f"must be a positive number, got {weight!r}")
        quota = body.get("gpu_quota")
        if quota is not None:
            quota = _positive_int(body, "gpu_quota", source, key)
        out[tname] = TenantSpec(tname, float(weight), quota)
    return out


def _qos(raw: Any, source: str) -> dict[str, QosSpec]:
    if not isinstance(raw, dict):
        raise ConfigError(source, "qos", "must be a table of tables")
    out = dict(DEFAULT_QOS)
    for qname, body in raw.items():
        key = f"qos.{qname}"
        if not isinstance(body, dict):
            raise ConfigError(source, key, "must be a table")
        _only_keys(body, {"priority", "latency_critical"}, source, key)
        prio = body.get("priority", 0.0)
        if not isinstance(prio, int | float) or isinstance(prio, bool):
            raise ConfigError(source, f"{key}.priority", "must be a number")
        critical = body.get("latency_critical", False)
        if not isinstance(critical, bool):
            raise ConfigError(source, f"{key}.latency_critical", "must be true or false")
        out[qname] = QosSpec(qname, float(prio), critical)
    return out


def _positive_int(table: dict[str, Any], name: str, source: str, key: str, default: int | None = None) -> int:
    value = table.get(name, default)
    if value is None:
        raise ConfigError(source, f"{key}.{name}" if key else name, "required, a positive integer")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(source, f"{key}.{name}" if key else name, f"must be a positive integer, got {value!r}")
    return value


def _only_keys(table: dict[str, Any], allowed: set[str], source: str, key: str) -> None:
    for k in table:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ConfigError(source, where, f"unknown key; allowed: {', '.join(sorted(allowed))}")

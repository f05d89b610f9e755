"""Data residency: where a dataset may be processed, over which route it may move, and how long that takes.

Each dataset is registered with the jurisdiction whose law governs it, a sensitivity, the site
that holds it and two policy fields:

* ``allowed_jurisdictions``: where it may be processed. When empty, personal and restricted
  data may be processed only in their own jurisdiction (for Kazakh personal data this is the
  localisation duty of Personal Data Law 94-V; hub-facts 0.5 kz.companion_laws), public and
  internal data anywhere. A site matches by its country or a bloc it belongs to (``EU``).
* ``forbidden_transit``: countries the data may not cross in transit. This is a per-dataset
  policy set by the data owner or the hub, not a rule read from a law.

``decide(dataset, site, topology)`` checks the site's jurisdiction, then, if the data is held
elsewhere, every route between the two sites; a route is allowed when its path crosses no
forbidden country, and the allowed route with the least staging time is chosen:

    staging_time_s = size_bytes x 8 / (bandwidth_gbps x 1e9 x efficiency) + handshake_rtts x rtt_max_s

with the topology's efficiency (0.7) and handshake round trips (3), both assumptions stated in
``topology.yaml``; the upper RTT bound is used. Example: 1 TB Astana -> Frankfurt over the
northern route (10 Gbit/s, 53 ms): 8e12 / 7e9 + 3 x 0.053 = 1,143 s; if the dataset forbids
transit through RU, the Trans-Caspian route (70 ms) is chosen at 1,143.1 s.

>>> topo = load_topology()
>>> ds = Dataset("census", "KZ", Sensitivity.PERSONAL, "astana", 10**12, frozenset({"KZ", "EU"}), frozenset({"RU"}))
>>> d = decide(ds, "frankfurt", topo)
>>> d.allowed, d.route, round(d.staging_time_s or 0, 1)
(True, 'astana-frankfurt-transcaspian', 1143.1)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from steppe.core.network import NetworkSite, Route, Topology
from steppe.governance.yamlfile import YamlReader, load_yaml

Site = NetworkSite  # the name residency has always used for a place in the topology

__all__ = ["Dataset", "ResidencyDecision", "Route", "Sensitivity", "Site", "Topology", "decide", "load_topology"]

DEFAULT_TOPOLOGY_FILE = "topology.yaml"


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class Dataset:
    """A registered dataset and its residency policy (see the module docstring)."""

    name: str
    jurisdiction: str
    sensitivity: Sensitivity
    location: str
    size_bytes: int
    allowed_jurisdictions: frozenset[str] = frozenset()
    forbidden_transit: frozenset[str] = frozenset()

    def processing_jurisdictions(self) -> frozenset[str]:
        """Where it may be processed; empty means anywhere."""
        if self.allowed_jurisdictions:
            return self.allowed_jurisdictions
        if self.sensitivity in (Sensitivity.PERSONAL, Sensitivity.RESTRICTED):
            return frozenset({self.jurisdiction})
        return frozenset()


@dataclass(frozen=True)
class ResidencyDecision:
    """Whether ``dataset`` may be used at ``site``; the route and staging time when it must move."""

    dataset: str
    site: str
    allowed: bool
    route: str | None
    reason: str
    staging_time_s: float | None


def decide(dataset: Dataset, site: str, topology: Topology) -> ResidencyDecision:
    """Decide residency for one dataset at one site (rules in the module docstring)."""
    target = topology.site(site)
    home = topology.site(dataset.location)
    allowed_js = dataset.processing_jurisdictions()

    def no(reason: str) -> ResidencyDecision:
        return ResidencyDecision(dataset.name, target.name, False, None, reason, None)

    if allowed_js and not target.within(allowed_js):
        where = "/".join([target.jurisdiction, *sorted(target.blocs)])
        basis = " (Personal Data Law 94-V localisation)" if (
            dataset.sensitivity is Sensitivity.PERSONAL and allowed_js == {"KZ"}) else ""
        return no(f"dataset {dataset.name} ({dataset.sensitivity}, {dataset.jurisdiction}) may be processed only in "
                  f"{', '.join(sorted(allowed_js))}{basis}; site {target.name} is in {where}")
    if home.name == target.name:
        return ResidencyDecision(dataset.name, target.name, True, None, f"held at {target.name}", 0.0)
    routes = topology.routes_between(home.name, target.name)
    if not routes:
        return no(f"no route from {home.name} to {target.name}")
    ok: list[tuple[float, Route]] = []
    refused: list[str] = []
    for r in routes:
        crossed = [c for c in r.path if c in dataset.forbidden_transit]
        if crossed:
            refused.append(f"{r.name} transits {', '.join(crossed)}")
        else:
            ok.append((topology.staging_time_s(dataset.size_bytes, r), r))
    if not ok:
        return no(f"dataset {dataset.name} may not transit {', '.join(sorted(dataset.forbidden_transit))}; "
                  f"every route from {home.name} to {target.name} does: {'; '.join(refused)}")
    staging, best = min(ok, key=lambda t: (t[0], t[1].name))
    note = f"; not {'; '.join(refused)}" if refused else ""
    return ResidencyDecision(dataset.name, target.name, True, best.name,
                             f"moves from {home.name} over {best.name} in ~{staging:,.0f} s{note}", staging)


def _known_zone(key: str) -> bool:
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def load_topology(path: str | Path | None = None) -> Topology:
    """Load sites, regions and routes (the packaged ``topology.yaml`` by default); ``ConfigError`` if malformed."""
    source, raw = load_yaml(path, DEFAULT_TOPOLOGY_FILE)
    r = YamlReader(source)
    top = r.mapping(raw, "", {"version", "staging", "regions", "sites", "routes"})
    staging = r.mapping(r.get(top, "staging", "", dict, {}), "staging", {"efficiency", "handshake_rtts"})
    efficiency = r.get(staging, "efficiency", "staging", float, 0.7)
    if not 0 < efficiency <= 1:
        raise r.fail("staging.efficiency", f"must be in (0, 1], got {efficiency}")
    rtts = r.get(staging, "handshake_rtts", "staging", int, 3)
    region_of: dict[str, str] = {}
    for name, reg in r.mapping(r.get(top, "regions", "", dict, {}), "regions").items():
        d = r.mapping(reg, f"regions.{name}", {"name", "sites"})
        for s in r.str_list(d, "sites", f"regions.{name}"):
            region_of[s] = str(name)
    sites: dict[str, Site] = {}
    for name, spec in r.mapping(r.get(top, "sites", "", dict), "sites").items():
        where = f"sites.{name}"
        d = r.mapping(spec, where, {"jurisdiction", "blocs", "note", "time_zone"})
        blocs = frozenset(r.str_list(d, "blocs", where, []))
        zone = r.get(d, "time_zone", where, str, "")
        if zone and not _known_zone(zone):
            raise r.fail(f"{where}.time_zone", f"unknown IANA time zone {zone!r} (e.g. Europe/Berlin)")
        sites[str(name).lower()] = Site(str(name).lower(), r.get(d, "jurisdiction", where, str), blocs,
                                        region_of.get(str(name), ""), zone)
    for s, reg in region_of.items():
        if s not in sites:
            raise r.fail(f"regions.{reg}.sites", f"unknown site {s!r}; sites: {', '.join(sorted(sites))}")
    routes: list[Route] = []
    for i, item in enumerate(r.get(top, "routes", "", list, [])):
        where = f"routes[{i}]"
        d = r.mapping(item, where, {"name", "between", "path", "rtt_ms", "bandwidth_gbps", "source"})
        between = r.str_list(d, "between", where)
        if len(between) != 2 or any(s not in sites for s in between):
            raise r.fail(f"{where}.between", f"must name two sites of: {', '.join(sorted(sites))}")
        rtt = r.get(d, "rtt_ms", where, list)
        if len(rtt) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in rtt):
            raise r.fail(f"{where}.rtt_ms", f"must be [min, max] in ms, got {rtt!r}")
        bandwidth = r.get(d, "bandwidth_gbps", where, float)
        if bandwidth <= 0:
            raise r.fail(f"{where}.bandwidth_gbps", f"must be > 0, got {bandwidth}")
        routes.append(Route(r.get(d, "name", where, str), (between[0], between[1]), tuple(r.str_list(d, "path", where)),
                            (float(min(rtt)), float(max(rtt))), bandwidth, str(d.get("source", ""))))
    return Topology(sites, tuple(routes), efficiency, rtts)

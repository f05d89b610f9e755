"""The network sites live in: places (jurisdiction, blocs, region), routes between them, staging.

Pure data shared by data residency (``steppe.governance.residency``, which loads it from
``topology.yaml`` and decides) and a hub's ``Site`` (``steppe.energy.site``, which carries the
network it is part of). A route is a country path with its RTT range and provisioned bandwidth;
staging a dataset over it takes ``size x 8 / (bandwidth x efficiency) + handshake_rtts x rtt_max``:

>>> kz = NetworkSite("astana", "KZ")
>>> eu = NetworkSite("frankfurt", "DE", frozenset({"EU"}))
>>> north = Route("astana-frankfurt-north", ("astana", "frankfurt"), ("KZ", "RU", "DE"), (43.0, 53.0), 10.0)
>>> topo = Topology({"astana": kz, "frankfurt": eu}, (north,))
>>> eu.within({"EU"}), [r.name for r in topo.routes_from("astana")], round(topo.staging_time_s(10**12, north), 1)
(True, ['astana-frankfurt-north'], 1143.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from steppe.core.errors import UnknownNameError


@dataclass(frozen=True)
class NetworkSite:
    """A place in the network: its country (jurisdiction), the blocs it belongs to, its region and
    its IANA time zone where the topology states one (a site without a site file)."""

    name: str
    jurisdiction: str
    blocs: frozenset[str] = frozenset()
    region: str = ""
    time_zone: str = ""

    def within(self, jurisdictions: Iterable[str]) -> bool:
        """True when the site's country or one of its blocs is among ``jurisdictions``."""
        js = set(jurisdictions)
        return self.jurisdiction in js or bool(self.blocs & js)


@dataclass(frozen=True)
class Route:
    """A network route between two sites (either direction) with its country path."""

    name: str
    between: tuple[str, str]
    path: tuple[str, ...]
    rtt_ms: tuple[float, float]
    bandwidth_gbps: float
    source: str = ""

    def connects(self, a: str, b: str) -> bool:
        return {a, b} == set(self.between)


@dataclass(frozen=True)
class Topology:
    sites: dict[str, NetworkSite]
    routes: tuple[Route, ...]
    efficiency: float = 0.7
    handshake_rtts: int = 3

    def site(self, name: str) -> NetworkSite:
        found = self.sites.get(name.lower())
        if found is None:
            raise UnknownNameError("site", name, list(self.sites))
        return found

    def routes_between(self, a: str, b: str) -> list[Route]:
        return [r for r in self.routes if r.connects(a, b)]

    def routes_from(self, name: str) -> list[Route]:
        """Every route with ``name`` at one end."""
        return [r for r in self.routes if name.lower() in r.between]

    def staging_time_s(self, size_bytes: int, route: Route) -> float:
        """Seconds to move ``size_bytes`` over ``route`` (formula in the module docstring)."""
        transfer = size_bytes * 8 / (route.bandwidth_gbps * 1e9 * self.efficiency)
        return transfer + self.handshake_rtts * route.rtt_ms[1] / 1000.0

"""A hub at several sites: one executor per site behind the one executor protocol.

Each site runs its jobs on its own engine (Astana's Slurm cluster, Almaty's Ray cluster, a
partner's local machines). ``SiteExecutors`` holds one executor per site and routes each call
to the site the job runs at, which its allocation says (every node of a gang is at one site:
``core/cluster.py``):

* ``start``, ``stop``, ``recap``: the executor of the site of ``rec.allocation``'s first node;
* handles are the site executor's own, with ``"site"`` added, so ``adopt`` and ``kill`` after a
  restart go back to the engine that launched the job; ``take_launched`` tags them so;
* ``find_launch``, ``outcome``, ``outputs``: every site in turn (they take a job id alone; a
  restart asks them before the job is adopted, and the logs endpoint rarely); a restart that
  knows where the job was placed asks ``find_launch_at`` instead: only that site's engine, since
  another engine's answer is not about this job (Ray takes a start as launched while its head is
  silent, so a Slurm job never launched would be adopted from Ray rather than requeued);
* ``inventory``: every engine's nodes together, each engine's only for its own site's nodes
  when the hub knows their names (two sites' engines may both see a host of the same name, e.g.
  a Slurm node and a Ray head on one machine: each site's ``busy`` stays its own);
  ``reachable``: at least one engine answers;
  ``reachable_sites``: the sites whose engine answers, which the ``EngineAvailable`` check turns
  into the sites a job may start at (a site whose engine is down takes no new jobs; the others
  go on).

Example: nodes 0-1 at ``astana`` (Slurm) and 2-3 at ``almaty`` (Ray); a job placed on node 3 is
started by the Ray executor, and its stored handle is ``{"site": "almaty", "submission_id": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from steppe.core.records import JobRecord
from steppe.executors.base import Executor, ExitInfo, Handle, Inventory, Launch, OnExit


class SiteExecutors:
    """One executor per site (module docstring); ``node_site[i]`` is node ``i``'s site."""

    def __init__(
        self, executors: Mapping[str, Executor], node_site: list[str], node_names: list[str] | None = None
    ) -> None:
        self.executors = dict(executors)
        self.node_site = node_site
        self._site_nodes: dict[str, frozenset[str]] = {}  # site -> its nodes' names (filters ``inventory``)
        for site, name in zip(node_site, node_names or (), strict=False):
            self._site_nodes[site] = self._site_nodes.get(site, frozenset()) | {name}

    # -- routing -------------------------------------------------------------------------------
    def _for(self, rec: JobRecord) -> Executor:
        """The executor of the site ``rec`` runs at (its allocation's; a running job has one)."""
        return self.executors[self.node_site[rec.allocation[0][0]]]

    @staticmethod
    def _tag(site: str, handle: Handle) -> Handle:
        return {**handle, "site": site}

    def _untag(self, handle: Handle) -> tuple[str, Handle] | None:
        site = handle.get("site")
        if not isinstance(site, str) or site not in self.executors:
            return None
        return site, {k: v for k, v in handle.items() if k != "site"}

    # -- the protocol --------------------------------------------------------------------------
    def bind(self, on_exit: OnExit, launch_of: Callable[[int], Launch]) -> None:
        for executor in self.executors.values():
            executor.bind(on_exit, launch_of)

    def start(self, rec: JobRecord, now: float) -> None:
        self._for(rec).start(rec, now)

    def stop(self, rec: JobRecord, now: float) -> None:
        self._for(rec).stop(rec, now)

    def recap(self, rec: JobRecord, now: float) -> None:
        self._for(rec).recap(rec, now)

    def adopt(self, rec: JobRecord, handle: Handle) -> bool:
        found = self._untag(handle)
        if found is None:
            return False
        site, inner = found
        return self.executors[site].adopt(rec, inner)

    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> Handle | None:
        for site, executor in self.executors.items():
            handle = executor.find_launch(job_id, start_s, wait_s)
            if handle is not None:
                return self._tag(site, handle)
        return None

    def find_launch_at(self, node: int, job_id: int, start_s: float, wait_s: float = 10.0) -> Handle | None:
        """``find_launch`` asked of the engine of node ``node``'s site only (where the job was placed)."""
        site = self.node_site[node]
        handle = self.executors[site].find_launch(job_id, start_s, wait_s)
        return None if handle is None else self._tag(site, handle)

    def outcome(self, job_id: int, start_s: float | None = None) -> ExitInfo | None:
        for executor in self.executors.values():
            got = executor.outcome(job_id, start_s)
            if got is not None:
                return got
        return None

    def outputs(self, job_id: int) -> dict[str, tuple[int, int]]:
        for executor in self.executors.values():
            got = executor.outputs(job_id)
            if got:
                return got
        return {}

    def kill(self, handle: Handle) -> None:
        found = self._untag(handle)
        if found is not None:
            self.executors[found[0]].kill(found[1])

    def take_launched(self) -> dict[int, Handle]:
        out: dict[int, Handle] = {}
        for site, executor in self.executors.items():
            for job_id, handle in executor.take_launched().items():
                out[job_id] = self._tag(site, handle)
        return out

    def inventory(self) -> Inventory:
        gpus: dict[str, tuple[int, ...]] = {}
        busy: dict[str, int] = {}
        for site, executor in self.executors.items():
            seen = executor.inventory()
            mine = self._site_nodes.get(site)
            gpus.update((n, ids) for n, ids in seen.gpus.items() if mine is None or n in mine)
            busy.update((n, held) for n, held in seen.busy.items() if mine is None or n in mine)
        return Inventory(gpus, busy)

    def reachable(self) -> bool:
        return any(executor.reachable() for executor in self.executors.values())

    def down_nodes(self, names: list[str]) -> frozenset[str]:
        """Of ``names``, the nodes their site's engine answers without (``sinfo``'s ``down``); a site
        whose engine does not answer, or lists none of its nodes (a Ray cluster whose hosts are
        named otherwise), makes none of its nodes down."""
        down: set[str] = set()
        for site, executor in self.executors.items():
            mine = self._site_nodes.get(site)
            if mine is None or not executor.reachable():
                continue
            offered = {n for n in executor.inventory().gpus if n in mine}
            if offered:
                down |= mine - offered
        return frozenset(n for n in names if n in down)

    def reachable_sites(self) -> frozenset[str]:
        """The sites whose engine answered its last contact (never blocks)."""
        return frozenset(site for site, executor in self.executors.items() if executor.reachable())

    def close(self) -> None:
        for executor in self.executors.values():
            executor.close()

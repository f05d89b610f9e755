"""A thin client of a Ray head's HTTP APIs (the Job Submission API and the state API), over ``httpx``.

The hub talks to Ray only through these REST endpoints of the head's dashboard, so its process
never imports ``ray`` (no Ray version coupling, no Ray threads or GCS connection in the hub):

* ``POST /api/jobs/`` submit, ``GET /api/jobs/`` list, ``GET /api/jobs/{id}`` one job,
  ``POST /api/jobs/{id}/stop`` stop, ``GET /api/jobs/{id}/logs`` the driver's log;
* ``GET /api/v0/nodes`` the nodes and their resources, ``GET /nodes?view=summary`` their host
  names, ``GET /api/v0/actors`` the live actors and the resources they hold (for ``busy``).

Every call has a short timeout; a head that does not answer raises ``RayUnreachable`` (one line),
a refusal ``RayRefused`` with Ray's own message. The address must be loopback or a private
network unless ``allow_public`` (``check_address``): Ray's Job API has no authentication, and
whoever reaches it runs code on the cluster as its workers' account.

>>> check_address("http://10.1.2.3:8265", allow_public=False)
'http://10.1.2.3:8265'
>>> check_address("http://8.8.8.8:8265", allow_public=False)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
steppe.executors.rayapi.RayAddressRefused: Ray address http://8.8.8.8:8265 is public (8.8.8.8); ...
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

from steppe.core.errors import SteppeError

SUPERVISOR_PREFIX = "_ray_internal_job_actor_"
"""Ray names the actor that runs a submitted job's entrypoint ``_ray_internal_job_actor_<submission id>``."""


class RayUnreachable(RuntimeError):
    """The Ray head did not answer."""


class RayRefused(RuntimeError):
    """The Ray head answered with an error."""


class RayAddressRefused(SteppeError):
    """An address outside loopback and private networks without ``allow_public=yes``."""


def check_address(address: str, allow_public: bool) -> str:
    """``address`` (``http://HOST:PORT``) if it is loopback or private, or public and allowed; else refused."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RayAddressRefused(f"Ray address {address!r} is not a URL like http://127.0.0.1:8265")
    if allow_public:
        return address.rstrip("/")
    try:
        infos = socket.getaddrinfo(parts.hostname, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise RayAddressRefused(f"Ray address {address}: cannot resolve {parts.hostname} ({exc})") from None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip.is_global or ip.is_unspecified:  # loopback, private, link-local, documentation: not public
            raise RayAddressRefused(
                f"Ray address {address} is public ({ip}); Ray's Job API has no authentication, so anyone who "
                "reaches it runs code on the cluster: use a loopback or private address, or pass "
                "--executor-opt allow_public=yes if the network in between is yours"
            )
    return address.rstrip("/")


class RayJobApi:
    """The head's REST endpoints; every method raises ``RayUnreachable`` or ``RayRefused``."""

    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        self.address = address
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per poll in the hub's log
        self._http = httpx.Client(base_url=address, timeout=timeout_s, trust_env=False)

    def version(self) -> dict[str, Any]:
        """Ray's version; a cheap check that the head answers."""
        return dict(self._get("/api/version"))

    def submit(self, body: dict[str, Any]) -> bool:
        """Submit a job; False if a job with its ``submission_id`` already exists (it was submitted before)."""
        try:
            resp = self._http.post("/api/jobs/", json=body)
        except httpx.HTTPError as exc:
            raise RayUnreachable(f"Ray head {self.address} did not answer: {exc}") from None
        if resp.status_code == 400 and "already exists" in resp.text:
            return False
        self._check(resp, "submit")
        return True

    def job(self, submission_id: str) -> dict[str, Any] | None:
        """One job's details, or None if Ray does not know it."""
        resp = self._known("GET", f"/api/jobs/{submission_id}", "job details")
        return None if resp is None else dict(resp.json())

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the head's job table holds (all submitters, all states)."""
        return list(self._get("/api/jobs/"))

    def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop a job (SIGTERM, SIGKILL after its ``RAY_JOB_STOP_WAIT_TIME_S``); False if it had ended."""
        resp = self._known("POST", f"/api/jobs/{submission_id}/stop", "stop")
        return resp is not None and bool(resp.json().get("stopped", False))

    def logs(self, submission_id: str) -> str:
        """The driver's log so far (stdout and stderr together, as Ray records them)."""
        return str(self._get(f"/api/jobs/{submission_id}/logs").get("logs", ""))

    def nodes(self) -> list[dict[str, Any]]:
        """Live nodes: ``node_id``, ``node_ip``, ``hostname``, ``resources_total``."""
        listed = self._get("/api/v0/nodes", params={"detail": "1", "limit": "10000"})["data"]["result"]["result"]
        summary = self._get("/nodes", params={"view": "summary"})["data"]["summary"]
        hosts = {s["raylet"]["nodeId"]: s.get("hostname", "") for s in summary if "raylet" in s}
        return [{**n, "hostname": hosts.get(n["node_id"], "")} for n in listed if n.get("state") == "ALIVE"]

    def alive_actors(self) -> list[dict[str, Any]]:
        """Live actors with their ``name``, ``job_id``, ``node_id`` and ``required_resources``."""
        params = {"detail": "1", "limit": "10000", "filter_keys": "state", "filter_predicates": "=",
                  "filter_values": "ALIVE"}  # fmt: skip
        return list(self._get("/api/v0/actors", params=params)["data"]["result"]["result"])

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            resp = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise RayUnreachable(f"Ray head {self.address} did not answer: {exc}") from None
        self._check(resp, path)
        try:
            return resp.json()
        except ValueError:
            raise RayRefused(f"Ray head {self.address}{path}: not JSON: {resp.text[:200]!r}") from None

    def _known(self, method: str, path: str, what: str) -> httpx.Response | None:
        """The answer about one job; None when Ray does not know the job (HTTP 404)."""
        try:
            resp = self._http.request(method, path)
        except httpx.HTTPError as exc:
            raise RayUnreachable(f"Ray head {self.address} did not answer: {exc}") from None
        if resp.status_code == 404:
            return None
        self._check(resp, what)
        return resp

    def _check(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code in (502, 503, 504):
            raise RayUnreachable(f"Ray head {self.address} is not ready ({what}: HTTP {resp.status_code})")
        if resp.status_code >= 400:
            text = " ".join(resp.text.split())[:300]
            raise RayRefused(f"Ray refused {what} (HTTP {resp.status_code}): {text}")

"""The Ray executor: each Steppe job is a Ray job, submitted to an existing Ray cluster's head.

The hub drives Ray through the Job Submission API's REST endpoints (``steppe.executors.rayapi``,
plain ``httpx``): the hub's process never imports ``ray``. The pipeline decides; this executor
runs, stops and reports, and never blocks the loop on Ray: ``start`` and ``stop`` only queue
work; submitter threads submit, and one poller thread lists the cluster's jobs every
``poll_s`` seconds, reports the ends, mirrors logs and refreshes the inventory. ``reachable()``
is the poller's last answer, cached.

Options (``steppe serve --executor ray --executor-opt KEY=VALUE``):

* ``address`` (required): the head's Job API, ``http://HOST:8265``. Loopback or a private
  network only, unless ``allow_public=yes``: the Job API has no authentication (anyone who
  reaches it runs code on the cluster), so a public address is refused with one line;
* ``poll_s`` (0.5): seconds between job listings; ``log_s`` (2): between log mirrors of a
  running job; ``inventory_s`` (2): between inventory refreshes; ``timeout_s`` (5): per HTTP call;
* ``gpu_resource`` (``gpu_type:{type}``): the custom resource that counts a node's GPUs of a
  type (``ray start --resources '{"gpu_type:H100": 8}'``); each job asks for one per GPU. An
  empty value asks for plain ``GPU`` only;
* ``hub_id``: the hub's name in submission ids (default: a random id kept in
  ``<data-dir>/ray-hub-id``); ``submit_timeout_s`` (60): how long a submission is retried
  while the head does not answer before the start is reported ``LaunchFailed``.

A start is the Ray job ``steppe-<hub id>-<job id>-<start µs>`` (``steppe.executors.raylaunch``),
with ``entrypoint_num_gpus`` its GPUs on the node it was given (pinned there with Ray's
``node:<ip>`` resource when the hub's node name is a Ray node's host name), the GPU-type
resource, and a ``runtime_env`` holding only the job's variables and Steppe's ``STEPPE_*``/
``SLURM_*`` names. The handle (stored with the job) is ``{"submission_id", "engine_id" (the same), "job_id", "start_s",
"hub_id"}``; after a crash ``find_launch`` asks Ray for that id, and claims an unknown one with
a no-op job so that a submission still in flight can never run a requeued job twice.

**Accounts and secrets.** Jobs run as the account of the Ray cluster's workers, not as the
hub user's own Unix account (the local executor's rule does not hold under Ray): isolation
between users is the cluster's. Nothing of the hub's environment, tokens or database reaches
a job; only what the job was submitted with and Steppe's names.

**Stops.** ``stop`` asks Ray to stop the job: SIGTERM, then, ``grace_s`` later, SIGKILL by
Ray itself (``RAY_JOB_STOP_WAIT_TIME_S`` in the job's runtime env, whole seconds). A job still
running ``grace_s + 10`` s after the stop is asked again (logged). The end is ``0:15``, or
``0:9`` when Ray had to kill it.

**Logs.** Ray records a job's stdout and stderr together in one driver log. The poller copies
the job's part of it (without Ray's own lines) into the job's ``stdout`` path on the hub, when
that path lies in the job's own directory ``<data-dir>/spool/<id>/`` (the default), every
``log_s`` seconds and once more, complete, before the end is reported; the file is opened
with no symlink followed and its identity recorded, so ``outputs()`` lets the hub's logs
endpoint serve it as a local job's. ``stderr`` stays empty. An output path elsewhere (a home
directory, which lives on the Ray nodes) is not written by the hub; ``ray job logs`` shows it.

**GPU caps.** ``recap`` writes the new cap to ``<data-dir>/spool/<id>/gpu-cap.json``
(``{"cap_fraction": f, "since_s": t}``), whose path the job gets in ``STEPPE_GPU_CAP_FILE``
(the first cap in ``STEPPE_GPU_CAP``). A job or a node agent with NVML rights applies it to the
job's ``CUDA_VISIBLE_DEVICES`` (``nvmlDeviceSetPowerManagementLimit``: the fraction of the
default limit); without GPUs nothing applies it, it is only observable.

**Inventory.** Ray's live nodes by host name with their ``GPU`` resource as device indices;
``busy`` per node: GPUs held by live actors that are not Steppe's (another user's Ray job's
entrypoint or its actors). GPUs of plain tasks are not counted (the state API lists them per
task, too costly to poll).

**Head down.** While the head does not answer, ``reachable()`` is False and nothing is lost:
queued submissions wait (up to ``submit_timeout_s``), and the jobs being watched stay watched.
Ray keeps its job table in the GCS: a head restarted with GCS fault tolerance (Redis) still
knows every job, and the ends that happened meanwhile are reported once it answers; a head
restarted without it has forgotten them, and their jobs died with it, so each is reported
once, ``0:9`` with ``lost: ...``. Nothing is resubmitted by the executor: only the pipeline
starts jobs.

Example::

    ex = RayExecutor(Path("/srv/steppe"), ["gpu01"], {"address": "http://10.0.0.5:8265"})
    ex.bind(on_exit, launch_of)
    ex.start(rec, now)      # queued; submitted by a submitter thread
    ex.reachable()          # the poller's last answer
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steppe.core.errors import ConfigError
from steppe.executors.base import ExitInfo, Handle, Inventory, Launch, OnExit
from steppe.executors.rayapi import SUPERVISOR_PREFIX, RayJobApi, RayRefused, RayUnreachable, check_address
from steppe.executors.raylaunch import (
    TERMINAL,
    driver_output,
    entrypoint,
    exit_of,
    job_env,
    stop_wait_s,
    submission_id,
)
from steppe.executors.safefile import identity, open_no_symlinks
from steppe.executors.wrapper import LAUNCH_FAILED, write_json

if TYPE_CHECKING:
    from steppe.core.records import JobRecord

log = logging.getLogger("steppe.executor.ray")
OPTIONS = {
    "address": "", "poll_s": "0.5", "log_s": "2", "inventory_s": "2", "timeout_s": "5",
    "allow_public": "no", "gpu_resource": "gpu_type:{type}", "hub_id": "", "submit_timeout_s": "60",
}  # fmt: skip
HARD_STOP_AFTER_S = 10.0


@dataclass
class _Tracked:
    """A start this executor watches."""

    job_id: int
    epoch: int
    handle: Handle
    out_path: str | None
    confirmed_at: float | None = None  # monotonic time Ray confirmed the submission
    stop_wanted_s: float | None = None
    stop_sent_s: float | None = None
    restopped: bool = False
    ray_job_id: str | None = None
    mirrored: bool = False  # its stdout file was made (truncated) by this executor
    log_written: int = 0
    log_due: float = 0.0

    @property
    def sid(self) -> str:
        return str(self.handle["submission_id"])


def parse_options(options: Mapping[str, str]) -> dict[str, str]:
    """The executor's options with defaults; an unknown key or a missing address is one ``ConfigError``."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError("--executor-opt", unknown[0], f"unknown Ray option; valid: {', '.join(sorted(OPTIONS))}")
    merged = {**OPTIONS, **options}
    if not merged["address"]:
        raise ConfigError("--executor-opt", "address", "the Ray executor needs address=http://HEAD:8265")
    for key in ("poll_s", "log_s", "inventory_s", "timeout_s", "submit_timeout_s"):
        try:
            if float(merged[key]) <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError("--executor-opt", key, f"must be a positive number, got {merged[key]!r}") from None
    if merged["allow_public"] not in ("yes", "no"):
        raise ConfigError("--executor-opt", "allow_public", f"must be yes or no, got {merged['allow_public']!r}")
    return merged


def resource_type(pattern: str, resources: Mapping[str, Any]) -> str:
    """The GPU type a node's resources name through ``pattern`` (``gpu_type:{type}``), ``""`` if none.

    >>> resource_type("gpu_type:{type}", {"GPU": 8.0, "gpu_type:H200": 8.0, "CPU": 4.0})
    'H200'
    >>> resource_type("", {"GPU": 8.0}), resource_type("gpu_type:{type}", {"GPU": 8.0})
    ('', '')
    """
    head, mark, tail = pattern.partition("{type}")
    if not mark:
        return ""
    for key, amount in sorted(resources.items()):
        if key.startswith(head) and key.endswith(tail) and len(key) > len(head) + len(tail) and amount:
            return key[len(head) : len(key) - len(tail)]
    return ""


def hub_id_of(data_dir: Path) -> str:
    """This hub's id in submission ids: kept in ``<data-dir>/ray-hub-id`` (made on first use)."""
    path = Path(data_dir) / "ray-hub-id"
    with contextlib.suppress(OSError):
        text = path.read_text().strip()
        if text:
            return text
    made = secrets.token_hex(4)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(made + "\n")
    return made


class RayExecutor:
    """Runs jobs as Ray jobs on an existing cluster; see the module docstring."""

    def __init__(
        self, data_dir: Path, node_names: list[str], options: Mapping[str, str], grace_s: float = 10.0
    ) -> None:
        opts = parse_options(options)
        self.address = check_address(opts["address"], allow_public=opts["allow_public"] == "yes")
        self.poll_s, self.log_s = float(opts["poll_s"]), float(opts["log_s"])
        self.inventory_s, self.submit_timeout_s = float(opts["inventory_s"]), float(opts["submit_timeout_s"])
        self.gpu_resource = opts["gpu_resource"]
        self.grace_s = grace_s
        self.hard_stop_s = grace_s + HARD_STOP_AFTER_S
        self.data_dir = Path(data_dir)
        self.jobs_dir, self.spool_dir = self.data_dir / "jobs", self.data_dir / "spool"
        self.jobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.hub_id = opts["hub_id"] or hub_id_of(self.data_dir)
        self.node_names = node_names
        self.api = RayJobApi(self.address, float(opts["timeout_s"]))
        self._lock = threading.Lock()
        self._tracked: dict[int, _Tracked] = {}
        self._launched: dict[int, Handle] = {}
        self._ended: dict[int, tuple[float, ExitInfo]] = {}
        self._inventory = Inventory({})
        self._node_ips: dict[str, str] = {}
        self._resources: set[str] = set()
        self._reachable = False
        self._on_exit: OnExit = lambda job_id, epoch, info: None
        self._launch_of: Callable[[int], Launch] | None = None
        self._submissions: queue.Queue[tuple[_Tracked, dict[str, Any]] | None] = queue.Queue()
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._threads = [threading.Thread(target=self._poll, name="ray-poller", daemon=True)]
        self._threads += [threading.Thread(target=self._submit_loop, name=f"ray-submit-{i}", daemon=True)
                          for i in range(4)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    # -- executor protocol ---------------------------------------------------------------------------
    def bind(self, on_exit: OnExit, launch_of: Callable[[int], Launch]) -> None:
        """Where to report ends, and where to read how to run a job."""
        self._on_exit, self._launch_of = on_exit, launch_of

    def start(self, rec: JobRecord, now: float) -> None:
        """Queue a committed start for submission; a job Ray cannot be asked to run fails ``LaunchFailed``."""
        try:
            if self._launch_of is None:
                raise RuntimeError("RayExecutor.bind() was not called")
            launch = self._launch_of(rec.job_id)
            body, run = self._submission(rec, launch)
        except Exception as exc:  # a job this engine cannot run: it fails, the hub goes on
            log.warning("job %s: launch failed: %s", rec.job_id, exc)
            self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, time.time(), f"{LAUNCH_FAILED}{exc}"))
            return
        with self._lock:
            self._tracked[rec.job_id] = run
            self._ended.pop(rec.job_id, None)
        self._submissions.put((run, body))

    def stop(self, rec: JobRecord, now: float) -> None:
        """Ask Ray to stop the job (SIGTERM, SIGKILL after the grace period); sent by the poller at once."""
        with self._lock:
            run = self._tracked.get(rec.job_id)
            if run is None or run.stop_wanted_s is not None:
                return
            run.stop_wanted_s = time.time()
        self._wake.set()

    def recap(self, rec: JobRecord, now: float) -> None:
        """Write the job's new GPU cap where the job sees it (``STEPPE_GPU_CAP_FILE``); see the module docstring."""
        with contextlib.suppress(OSError):
            self._write_cap(rec.job_id, rec.cap_fraction, now)

    def adopt(self, rec: JobRecord, handle: Handle) -> bool:
        """Watch a job launched before a restart; False if Ray says it has ended or never knew it."""
        try:
            job = self.api.job(str(handle["submission_id"]))
        except (RayUnreachable, RayRefused):
            job = {"status": "UNKNOWN"}  # the poller finds out once the head answers
        if job is None or job.get("status") in TERMINAL:
            return False
        launch = self._launch_of(rec.job_id) if self._launch_of is not None else None
        run = _Tracked(rec.job_id, rec.epoch, dict(handle), self._mirror_path(rec.job_id, launch),
                       confirmed_at=time.monotonic())  # fmt: skip
        with self._lock:
            self._tracked[rec.job_id] = run
        return True

    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> Handle | None:
        """The handle of that start if Ray knows it; an unknown one is claimed (a no-op job takes its id) -> None.

        If the head does not answer within ``wait_s``, the start is taken as launched (its handle):
        the poller then reports it lost or ended once the head answers, and it never runs twice.
        """
        sid = submission_id(self.hub_id, job_id, start_s)
        handle = self._handle(job_id, start_s, sid)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                job = self.api.job(sid)
                if job is not None:
                    return None if (job.get("metadata") or {}).get("steppe_claim") else handle
                claim = {"entrypoint": "true", "submission_id": sid, "metadata": {"steppe_claim": "never launched"}}
                if self.api.submit(claim):
                    return None
            except (RayUnreachable, RayRefused) as exc:
                if time.monotonic() > deadline:
                    log.warning("job %s: Ray did not say whether %s was launched (%s); taken as launched",
                                job_id, sid, exc)  # fmt: skip
                    return handle
                time.sleep(0.5)

    def outcome(self, job_id: int, start_s: float | None = None) -> ExitInfo | None:
        """How the start at ``start_s`` ended, from Ray's job table (or this executor's record)."""
        with self._lock:
            ended = self._ended.get(job_id)
        if ended is not None and (start_s is None or ended[0] == start_s):
            return ended[1]
        if start_s is None:
            return None
        try:
            job = self.api.job(submission_id(self.hub_id, job_id, start_s))
        except (RayUnreachable, RayRefused):
            return None
        if job is None or job.get("status") not in TERMINAL or (job.get("metadata") or {}).get("steppe_claim"):
            return None
        return exit_of(job, grace_s=self.grace_s)

    def outputs(self, job_id: int) -> dict[str, tuple[int, int]]:
        """The identity of the stdout file the executor mirrored the job's log into (``{"stdout": (dev, inode)}``)."""
        try:
            data = json.loads((self.jobs_dir / str(job_id) / "outputs.json").read_text())
        except (OSError, ValueError):
            return {}
        return {k: (int(v[0]), int(v[1])) for k, v in data.items() if k == "stdout"}

    def kill(self, handle: Handle) -> None:
        """Stop a launched job now (Ray's SIGTERM, then its SIGKILL after the job's wait)."""
        with contextlib.suppress(RayUnreachable, RayRefused):
            self.api.stop(str(handle["submission_id"]))

    def take_launched(self) -> dict[int, Handle]:
        """Handles of the starts Ray confirmed since the last call."""
        with self._lock:
            out, self._launched = self._launched, {}
        return out

    def inventory(self) -> Inventory:
        """Ray's live nodes and their GPUs, with the GPUs others' actors hold as ``busy`` (as of the last refresh)."""
        return self._inventory

    def reachable(self) -> bool:
        """Whether the head answered the poller's last contact (cached; never blocks)."""
        return self._reachable

    def close(self) -> None:
        """Stop the threads; Ray jobs go on and are adopted by the next start of the hub."""
        self._closed.set()
        self._wake.set()
        for _ in range(4):
            self._submissions.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self.api.close()

    # -- submissions ---------------------------------------------------------------------------------
    def _handle(self, job_id: int, start_s: float, sid: str) -> Handle:
        return {"submission_id": sid, "engine_id": sid, "job_id": job_id, "start_s": start_s, "hub_id": self.hub_id}

    def _submission(self, rec: JobRecord, launch: Launch) -> tuple[dict[str, Any], _Tracked]:
        """The Ray submission of a start and what the executor tracks of it."""
        sid = submission_id(self.hub_id, rec.job_id, rec.last_start_s)
        nodes = [self.node_names[n] if n < len(self.node_names) else str(n) for n, _ in rec.allocation]
        share = rec.allocation[0][1] if rec.allocation else rec.gpus
        env = job_env(rec, launch, nodes)
        env["RAY_JOB_STOP_WAIT_TIME_S"] = stop_wait_s(self.grace_s)
        cap_file = self._cap_path(rec.job_id)
        env.update(STEPPE_GPU_CAP=f"{rec.cap_fraction:g}", STEPPE_GPU_CAP_FILE=str(cap_file))
        resources: dict[str, float] = {}
        if self.gpu_resource and share:
            name = self.gpu_resource.format(type=rec.gpu_type)
            if self._resources and name not in self._resources:
                raise ValueError(f"no Ray node offers the resource {name!r}: ray start --resources '{{\"{name}\": N}}'")
            resources[name] = float(share)
        ip = self._node_ips.get(nodes[0]) if nodes else None
        if ip is not None:
            resources[f"node:{ip}"] = 0.001
        body: dict[str, Any] = {
            "entrypoint": entrypoint(launch.argv, launch.script, launch.workdir),
            "submission_id": sid, "entrypoint_num_gpus": share, "entrypoint_resources": resources,
            "runtime_env": {"env_vars": env},
            "metadata": {"steppe_hub": self.hub_id, "steppe_job": str(rec.job_id), "steppe_epoch": str(rec.epoch),
                         "steppe_user": launch.user, "steppe_project": launch.project},
        }  # fmt: skip
        self._write_cap(rec.job_id, rec.cap_fraction, time.time())
        run = _Tracked(rec.job_id, rec.epoch, self._handle(rec.job_id, rec.last_start_s, sid),
                       self._mirror_path(rec.job_id, launch))  # fmt: skip
        return body, run

    def _submit_loop(self) -> None:
        while True:
            item = self._submissions.get()
            if item is None or self._closed.is_set():
                return
            run, body = item
            try:
                self._submit(run, body)
            except Exception as exc:  # never lose a start silently
                log.exception("job %s: submission", run.job_id)
                self._finish(run, ExitInfo(1, 0, time.time(), f"{LAUNCH_FAILED}{exc}"))

    def _submit(self, run: _Tracked, body: dict[str, Any]) -> None:
        deadline = time.monotonic() + self.submit_timeout_s
        while not self._closed.is_set():
            if run.stop_wanted_s is not None:  # stopped before Ray was asked: nothing to run
                self._finish(run, ExitInfo(0, 15, time.time()))
                return
            try:
                self.api.submit(body)  # False: it was submitted before (a retry after a lost answer)
            except RayRefused as exc:
                self._finish(run, ExitInfo(1, 0, time.time(), f"{LAUNCH_FAILED}{exc}"))
                return
            except RayUnreachable as exc:
                self._reachable = False
                if time.monotonic() > deadline:
                    self._finish(run, ExitInfo(1, 0, time.time(), f"{LAUNCH_FAILED}{exc}"))
                    return
                self._closed.wait(min(1.0, self.poll_s))
                continue
            with self._lock:
                run.confirmed_at = time.monotonic()
                if self._tracked.get(run.job_id) is run:
                    self._launched[run.job_id] = run.handle
            self._wake.set()
            return

    # -- the poller ----------------------------------------------------------------------------------
    def _poll(self) -> None:
        next_inventory = 0.0
        while not self._closed.is_set():
            began = time.monotonic()
            try:
                self._poll_jobs(began)
                if self._reachable and began >= next_inventory:
                    next_inventory = began + self.inventory_s
                    self._refresh_inventory()
            except Exception:  # a bug must not stop the watching: log it, try again at the next poll
                log.exception("Ray poller")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _poll_jobs(self, began: float) -> None:
        try:
            listed = self.api.jobs()
        except (RayUnreachable, RayRefused) as exc:
            if self._reachable:
                log.warning("Ray head %s stopped answering: %s", self.address, exc)
            self._reachable = False
            return
        if not self._reachable:
            log.info("Ray head %s answers", self.address)
        self._reachable = True
        by_sid = {j.get("submission_id"): j for j in listed}
        with self._lock:
            watched = [r for r in self._tracked.values() if r.confirmed_at is not None]
        for run in watched:
            job = by_sid.get(run.sid)
            if job is None:
                if run.confirmed_at is not None and run.confirmed_at < began:
                    detail = "lost: the Ray cluster no longer knows this job (its head restarted without its job table)"
                    self._finish(run, ExitInfo(0, 9, time.time(), detail))
                continue
            run.ray_job_id = job.get("job_id") or run.ray_job_id
            try:
                self._follow(run, job)
            except (RayUnreachable, RayRefused) as exc:
                log.warning("job %s: %s", run.job_id, exc)

    def _follow(self, run: _Tracked, job: dict[str, Any]) -> None:
        now = time.time()
        status = job.get("status")
        if status in TERMINAL:
            self._mirror(run, str(job.get("entrypoint", "")))
            self._finish(run, exit_of(job, run.stop_sent_s, self.grace_s))
            return
        if run.stop_wanted_s is not None and run.stop_sent_s is None:
            self.api.stop(run.sid)
            run.stop_sent_s = now
        elif run.stop_sent_s is not None and not run.restopped and now > run.stop_sent_s + self.hard_stop_s:
            log.warning("job %s: still running %.0f s after its stop; asking Ray again", run.job_id,
                        now - run.stop_sent_s)  # fmt: skip
            self.api.stop(run.sid)
            run.restopped = True
        if status == "RUNNING" and time.monotonic() >= run.log_due:
            run.log_due = time.monotonic() + self.log_s
            self._mirror(run, str(job.get("entrypoint", "")))

    def _finish(self, run: _Tracked, info: ExitInfo) -> None:
        """Report a start's end once."""
        with self._lock:
            if self._tracked.get(run.job_id) is not run:
                return
            del self._tracked[run.job_id]
            self._ended[run.job_id] = (float(run.handle["start_s"]), info)
        self._on_exit(run.job_id, run.epoch, info)

    # -- logs, caps, inventory -----------------------------------------------------------------------
    def _mirror_path(self, job_id: int, launch: Launch | None) -> str | None:
        """The job's stdout path if it lies in the job's own directory (the hub writes nowhere else)."""
        if launch is None:
            return None
        own = f"{self.spool_dir / str(job_id)}/"
        path = os.path.normpath(launch.stdout_path)
        return path if path.startswith(own) and ".." not in path.split("/") else None

    def _mirror(self, run: _Tracked, command: str) -> None:
        """Copy what the job printed since the last copy into its stdout file."""
        if run.out_path is None:
            return
        data = driver_output(self.api.logs(run.sid), run.sid, command).encode()
        if run.mirrored and len(data) <= run.log_written:
            return
        try:
            Path(run.out_path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if run.mirrored else os.O_TRUNC)
            fd = open_no_symlinks(run.out_path, flags, 0o600)
            try:
                if not run.mirrored:
                    job_dir = self.jobs_dir / str(run.job_id)
                    job_dir.mkdir(exist_ok=True, mode=0o700)
                    write_json(job_dir / "outputs.json", {"stdout": list(identity(fd))})
                os.write(fd, data[run.log_written :])
            finally:
                os.close(fd)
            run.mirrored, run.log_written = True, len(data)
        except OSError as exc:
            log.warning("job %s: cannot write its output %s: %s", run.job_id, run.out_path, exc)
            run.out_path = None

    def _cap_path(self, job_id: int) -> Path:
        return self.spool_dir / str(job_id) / "gpu-cap.json"

    def _write_cap(self, job_id: int, cap_fraction: float, now: float) -> None:
        path = self._cap_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cap_fraction": cap_fraction, "since_s": now}) + "\n")
        tmp.chmod(0o644)
        tmp.replace(path)

    def _refresh_inventory(self) -> None:
        try:
            nodes = self.api.nodes()
            actors = self.api.alive_actors()
        except (RayUnreachable, RayRefused) as exc:
            log.warning("Ray inventory: %s", exc)
            return
        names: dict[str, str] = {}
        gpus: dict[str, tuple[int, ...]] = {}
        types: dict[str, str] = {}
        ips: dict[str, str] = {}
        resources: set[str] = set()
        for info in sorted(nodes, key=lambda n: str(n.get("node_id"))):
            total = info.get("resources_total") or {}
            resources.update(total)
            name = (str(info.get("hostname") or "").split(".")[0]) or str(info.get("node_ip"))
            if name in gpus:
                name = f"{name}-{info.get('node_ip')}"
            names[str(info["node_id"])] = name
            ips[name] = str(info.get("node_ip"))
            gpus[name] = tuple(range(int(total.get("GPU", 0))))
            types[name] = resource_type(self.gpu_resource, total)
        mine = f"{SUPERVISOR_PREFIX}steppe-{self.hub_id}-"
        with self._lock:
            my_jobs = {r.ray_job_id for r in self._tracked.values() if r.ray_job_id}
        busy: dict[str, float] = {}
        for actor in actors:
            held = float((actor.get("required_resources") or {}).get("GPU", 0))
            node = names.get(str(actor.get("node_id")))
            if not held or node is None or str(actor.get("name") or "").startswith(mine):
                continue
            if actor.get("job_id") in my_jobs:
                continue
            busy[node] = busy.get(node, 0.0) + held
        self._node_ips, self._resources = ips, resources
        self._inventory = Inventory(gpus, {n: math.ceil(v) for n, v in busy.items()}, types)

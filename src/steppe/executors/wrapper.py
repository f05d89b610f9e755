"""The job wrapper: ``python -m steppe.executors.wrapper --job-dir DIR``, one per running job.

The local executor starts it as the leader of a new session (so the job and everything it
spawns form one process group) with the hub's account, and it:

1. reads ``DIR/run.json`` (written by the hub, mode 0600: the command or script, environment,
   working directory, output paths, the account to run as, the start being launched);
2. writes ``DIR/handle.json`` (its pid, process group, start time in clock ticks, the GPUs and
   the start it belongs to) *before* the job can run, so a hub that crashes at any moment can
   tell a launched job from one never launched;
3. forks the job: the child drops to the job's account (no supplementary groups, then gid, then
   uid), sets umask 077, enters its working directory (creating it when it lies in the job's
   own directory), opens stdout and stderr with no symlink on their path
   (``steppe.executors.safefile``), refuses them unless they are regular files of its own,
   reports their identity (device, inode) to the wrapper over a pipe, and execs the command;
4. records the outputs' identity in ``DIR/outputs.json`` (the logs endpoint serves only those
   files), waits for the job, ignoring the group's SIGTERM itself (the job gets it), and writes
   how it ended to ``DIR/exit.json``: exit code, signal, end time and, when the job could not
   be started at all, ``detail`` beginning with ``launch failed:``.

``DIR`` lives in the hub's private ``jobs/`` directory; the job's account can read none of it.
Exit codes follow Slurm's ``exit:signal``: ``1:0`` for ``exit 1``, ``0:9`` for SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

from steppe.executors.safefile import identity, open_no_symlinks

LAUNCH_FAILED = "launch failed: "


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (mode 0600)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data))
    os.replace(tmp, path)


def process_start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), or None if it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _open_output(path: str) -> int:
    fd = open_no_symlinks(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise OSError(0, "not a regular file owned by the job's account", path)
    return fd


def _child(run: dict[str, Any], report: int) -> None:
    """In the forked child: become the job's account, open the outputs, exec. Never returns."""
    try:
        step = "switch to the job's account"
        if run.get("uid") is not None:
            os.setgroups([])
            os.setgid(int(run["gid"]))
            os.setuid(int(run["uid"]))
        os.umask(0o077)
        step = f"enter working directory {run['workdir']}"
        if run.get("create_workdir"):
            os.makedirs(run["workdir"], mode=0o700, exist_ok=True)
        os.chdir(run["workdir"])
        step = f"open output {run['stdout']}"
        out = _open_output(run["stdout"])
        step = f"open output {run['stderr']}"
        err = out if run["stderr"] == run["stdout"] else _open_output(run["stderr"])
        argv = list(run["argv"] or [])
        if run.get("script") is not None:
            step = "write the job's script"
            path = run["script_path"]
            fd = open_no_symlinks(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
            with os.fdopen(fd, "w") as f:
                f.write(run["script"])
            argv = [path] if run["script"].startswith("#!") else ["/bin/sh", path]
        outputs = {"stdout": identity(out), "stderr": identity(err)}
        os.write(report, (json.dumps({"outputs": outputs}) + "\n").encode())
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        step = f"run {argv[0]!r}"
        os.execvpe(argv[0], argv, run["env"])
    except Exception as exc:  # any failure before exec is a launch failure, reported to the wrapper
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        try:
            os.write(report, (json.dumps({"error": f"cannot {step}: {why}"}) + "\n").encode())
        finally:
            os._exit(127)


def run_wrapper(job_dir: Path) -> int:
    """Steps 1-4 of the module docstring; returns the wrapper's own exit status."""
    run = json.loads((job_dir / "run.json").read_text())
    pid = os.getpid()
    handle = {"pid": pid, "pgid": os.getpgid(0), "start_ticks": process_start_ticks(pid),
              "devices": run["devices"], "start_s": run["start_s"]}  # fmt: skip
    write_json(job_dir / "handle.json", handle)
    read_end, write_end = os.pipe()  # both close on exec
    child = os.fork()
    if child == 0:
        os.close(read_end)
        _child(run, write_end)
    os.close(write_end)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the job gets the group's SIGTERM; we stay to record
    with os.fdopen(read_end, "rb") as reports:
        lines = [json.loads(line) for line in reports.read().splitlines() if line.strip()]
    detail = ""
    for line in lines:
        if "outputs" in line:
            write_json(job_dir / "outputs.json", {**line["outputs"], "start_s": run["start_s"]})
        if "error" in line:
            detail = LAUNCH_FAILED + line["error"]
            print(f"steppe: job {run.get('job_id')}: {line['error']}", file=sys.stderr)
    _, status = os.waitpid(child, 0)
    rc = os.waitstatus_to_exitcode(status)
    code, sig = (0, -rc) if rc < 0 else (rc, 0)
    write_json(
        job_dir / "exit.json",
        {"exit_code": code, "signal": sig, "end_s": time.time(), "detail": detail, "start_s": run["start_s"]},
    )
    return code if sig == 0 else 128 + sig


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--job-dir":
        print("usage: python -m steppe.executors.wrapper --job-dir DIR", file=sys.stderr)
        return 2
    return run_wrapper(Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

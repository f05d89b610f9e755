"""Install (if missing) and run a throwaway PostgreSQL server for tests and benchmarks.

``throwaway_postgres()`` is a context manager yielding a URL such as
``postgresql://steppe@127.0.0.1:54329/steppe``: it finds Debian's PostgreSQL binaries
(``/usr/lib/postgresql/<version>/bin``), installs the ``postgresql`` package with apt-get when
they are missing and the process runs as root, initialises a cluster in a temporary directory
(owned by the ``postgres`` user when running as root, since PostgreSQL refuses to run as
root), starts it on a free loopback port with its socket in that directory, creates the
database, and on exit stops the server and deletes the directory. Nothing else on the
machine is touched (the package's own cluster is not started).

Run it directly to keep one running until Ctrl-C::

    python scripts/pg_throwaway.py            # prints the URL
    python scripts/pg_throwaway.py --install  # only make sure the binaries are there

``make test`` installs the binaries before the tests run; the tests only start a server.
Any failure raises ``PostgresUnavailable`` with what went wrong (tests fail with it rather
than skip: CI must really run the PostgreSQL tests).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be installed or started."""


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def ensure_installed() -> Path:
    """The directory of ``initdb``/``pg_ctl``, installing Debian's package if needed."""
    found = _bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable("PostgreSQL is not installed; install the 'postgresql' package (apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()[-800:]}")
    found = _bin_dir()
    if found is None:
        raise PostgresUnavailable("apt-get installed 'postgresql' but no initdb was found under /usr/lib/postgresql")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    """Run as ``postgres`` when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{what} failed: {(done.stderr or done.stdout).strip()[-800:]}")


@contextlib.contextmanager
def throwaway_postgres(fast: bool = True, install: bool = True) -> Iterator[str]:
    """A running throwaway server; yields its URL. ``fast`` turns fsync off (fine for tests).

    With ``install`` False (the tests), missing binaries are an error: the repository's set-up
    (``make test`` runs ``pg_throwaway.py --install`` first) installs them, never a test.
    """
    bindir = ensure_installed() if install else _bin_dir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL is not installed: run 'python scripts/pg_throwaway.py --install' as root")
    base = Path(tempfile.mkdtemp(prefix="steppe-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "steppe", "--auth=trust", "-E", "UTF8", "--no-sync"],
             "initdb")  # fmt: skip
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
        if fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", opts, "-w", "-t", "60", "start"],
             "pg_ctl start")  # fmt: skip
        try:
            _run([str(bindir / "createdb"), "-h", str(base), "-p", str(port), "-U", "steppe", "steppe"], "createdb")
            yield f"postgresql://steppe@127.0.0.1:{port}/steppe"
        finally:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], "pg_ctl stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="Run a throwaway PostgreSQL server until Ctrl-C.")
    ap.add_argument("--install", action="store_true", help="only install the binaries if missing")
    args = ap.parse_args()
    t0 = time.monotonic()
    bindir = ensure_installed()
    if args.install:
        print(f"PostgreSQL binaries in {bindir} ({time.monotonic() - t0:.1f} s)")
        return
    with throwaway_postgres() as url:
        print(f"{url}  (ready in {time.monotonic() - t0:.1f} s; Ctrl-C stops and deletes it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()

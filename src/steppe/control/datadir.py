"""The hub's data directory: one hub at a time, private files, and a spool its jobs can reach.

Layout (the hub runs as root and jobs as their users' accounts)::

    <data-dir>/          0711  searchable, not listable: job accounts pass through to spool/
      hub.lock           0600  held (flock) by the one hub using this directory: "pid host"
      steppe.db (+wal)   0600  the store (SQLite)
      admin-token        0600  the first hub-admin's token
      jobs/              0700  the hub's records of each job (launch intent, handle, exit)
      spool/             0711  one private directory per job, 0700, owned by the job's account

A hub with ``--single-user`` makes the data directory 0700 (nothing but the hub's account
needs to reach it). ``DataDirLock`` takes an exclusive ``flock`` before the hub opens its store
or recovers anything; a second hub on the same directory is refused with the holder's pid and
host. ``unreachable_ancestor`` finds a directory above the spool that job accounts cannot
search (e.g. a 0700 home), which would make every launch fail.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
from pathlib import Path

from steppe.core.errors import SteppeError

PRIVATE_FILES = ("steppe.db", "steppe.db-wal", "steppe.db-shm", "admin-token", "hub.lock")


class DataDirLocked(SteppeError):
    """Another hub holds the data directory."""


class DataDirLock:
    """An exclusive lock on ``<data-dir>/hub.lock``, held for the life of the hub process."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "hub.lock"
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            pid, _, host = holder.partition(" ")
            raise DataDirLocked(
                f"{self.path.parent}: another hub already uses this data directory (pid {pid} on host "
                f"{host or 'unknown'}); stop it first, or give this hub its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def secure(data_dir: Path, shared_spool: bool) -> None:
    """Create the data directory with its modes, and tighten files an older hub left readable."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o711 if shared_spool else 0o700)
    for name in PRIVATE_FILES:
        path = data_dir / name
        if path.exists() and not path.is_symlink():
            path.chmod(0o600)


def unreachable_ancestor(path: Path) -> Path | None:
    """The first directory from ``/`` down to ``path`` that others may not search (no o+x), or None."""
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        try:
            mode = directory.stat().st_mode
        except OSError:
            return directory
        if not mode & stat.S_IXOTH:
            return directory
    return None

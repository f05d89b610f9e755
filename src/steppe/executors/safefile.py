"""Opening job files without following symbolic links, and telling whether a file is the one a job wrote.

A job's output paths are chosen by its submitter. The hub must never be tricked into reading
or writing another file through them (``output: /etc/shadow``, or a directory on the path
replaced by a symlink to ``/``). So:

* ``open_no_symlinks`` walks the path one component at a time from ``/`` with
  ``O_NOFOLLOW`` (and ``O_DIRECTORY`` for the directories), so no component may be a symlink;
* the job's wrapper opens the outputs *as the job's user* this way and records each file's
  identity (device, inode); ``read_identity_checked`` opens a recorded output for the logs
  endpoint the same way and refuses it unless it is still that regular file.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> fd = open_no_symlinks(os.path.join(d, "out"), os.O_WRONLY | os.O_CREAT, 0o600)
>>> ident = identity(fd); os.close(fd)
>>> os.symlink("/etc/passwd", os.path.join(d, "link"))
>>> try:
...     open_no_symlinks(os.path.join(d, "link"), os.O_RDONLY)
... except OSError as exc:
...     print("refused:", exc.strerror)
refused: Too many levels of symbolic links
"""

from __future__ import annotations

import errno
import os
import stat


def open_no_symlinks(path: str, flags: int, mode: int = 0o600) -> int:
    """Open an absolute ``path`` with no symlink in any of its components; returns a file descriptor."""
    if not os.path.isabs(path):
        raise OSError(errno.EINVAL, "not an absolute path", path)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OSError(errno.EINVAL, "'..' is not allowed in a job path", path)
    walk = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC  # O_PATH: passing through needs search (x), not read
    dir_fd = os.open("/", walk)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, walk | os.O_NOFOLLOW, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = nxt
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def identity(fd: int) -> tuple[int, int]:
    """(device, inode) of an open file."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def open_recorded(path: str, recorded: tuple[int, int]) -> int | None:
    """Open a job's output for reading if it is still the regular file the job wrote, else None."""
    try:
        fd = open_no_symlinks(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != tuple(recorded):
        os.close(fd)
        return None
    return fd

"""A folder's write lock: one writer at a time, and a lock left by a dead process is taken over.

Sweeps lock their store folder and runs their run folder with it, so two commands given the
same ``--out`` cannot both write there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock."""


@contextmanager
def folder_lock(
    folder: Path, name: str, busy: str, error: type[Exception] = FolderLockedError
) -> Iterator[None]:
    """Hold ``folder/name`` as a lock for the block.

    The lock file appears with its holder ("host pid") already in it: it is written to a
    temporary file first and hard-linked into place, which fails if the lock exists (atomic,
    like ``O_CREAT | O_EXCL``). So a lock is never seen empty; one that is (or holds anything
    but "host pid") is treated as alive. Taking over a dead process's lock happens under an
    ``flock`` on ``<name>.guard`` (POSIX), so two processes cannot both take it over.

    Raises:
        error: the lock is held by a live process; the message is ``busy`` with ``{holder}``
            and ``{path}`` filled in.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    me = f"{socket.gethostname()} {os.getpid()}"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(me)
            fh.flush()
            os.fsync(fh.fileno())
        with _guard(folder / f"{name}.guard"):
            try:
                os.link(tmp, path)
            except FileExistsError:
                try:
                    holder = path.read_text().strip()
                except FileNotFoundError:
                    holder = ""  # released meanwhile
                if path.exists() and _holder_alive(holder):
                    text = busy.replace("{holder}", holder or "unknown process")
                    raise error(text.replace("{path}", str(path))) from None
                path.unlink(missing_ok=True)
                os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == me:
                path.unlink()


@contextmanager
def _guard(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (POSIX; elsewhere nothing), released on exit or
    when the process dies."""
    try:
        import fcntl
    except ImportError:  # Windows: the hard link alone
        yield
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _holder_alive(holder: str) -> bool:
    host, _, pid = holder.partition(" ")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's lock, or not ours to judge: assume it is alive
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["FolderLockedError", "folder_lock"]

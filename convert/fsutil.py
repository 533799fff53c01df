"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from convert.errors import ConvertError

# A temporary file is `.NAME.XXXXXXXX.tmp` beside its target (mkstemp's 8 random
# characters). One left by a killed run is removed by the next write into its folder
# once it is this old: a live writer, here or in another process, is done long before.
STALE_TEMP_SECONDS = 600.0
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
_swept: set[tuple[int, str]] = set()  # (process, folder): each folder once per process


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to a temporary file beside `path`, then move it into place."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private; outputs get the usual mode (feeds are served).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sweep_stale_temps(folder: Path) -> None:
    """Remove the temporary files a killed run left in `folder` (once per process)."""
    key = (os.getpid(), os.path.abspath(folder))  # a forked child sweeps again
    if key in _swept:
        return
    _swept.add(key)
    cutoff = time.time() - STALE_TEMP_SECONDS
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not _TEMP_NAME.fullmatch(entry.name):
                    continue
                try:
                    stale = entry.stat(follow_symlinks=False).st_mtime < cutoff
                    if stale and entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)
                except OSError:
                    pass  # gone meanwhile, or not ours to remove: leave it
    except OSError:
        pass  # an unreadable folder: the write itself will say what is wrong


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(mask)
    return mask


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """Write `data` atomically unless `path` already holds it; True when written.

    An unchanged file keeps its bytes and its modification time, so that a rerun
    on the same input says so and sync tools see nothing new.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.stat().st_size == len(payload) and path.read_bytes() == payload:
            return False
    except OSError:
        pass  # missing or unreadable: write it
    write_atomic(path, payload)
    return True


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) or fail at once.

    The lock is the operating system's (flock): it goes away with the process, so
    a killed run never leaves a stale lock behind.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as error:
        # mkdir's error names a folder on the way: say which.
        culprit = f"{error.filename}: " if error.filename and error.filename != str(path) else ""
        reason = f"cannot create the lock: {culprit}{error.strerror}"
        raise ConvertError(str(path), reason) from None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConvertError(str(path), f"another run holds this lock ({holder})") from None
        # The holder's pid only helps the message above; a full disk must not stop a
        # run for it. Written unbuffered, so that closing has nothing left to fail on.
        try:
            os.ftruncate(handle.fileno(), 0)
            os.write(handle.fileno(), f"pid {os.getpid()}\n".encode())
        except OSError:
            pass
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

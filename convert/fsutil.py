"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from convert.errors import ConvertError

# A temporary file is `.NAME.feedx-convert-XXXXXXXX.tmp` beside its target (mkstemp's 8
# random characters after our name: no user names a file so). One left by a killed run
# is removed at the start of every run that writes into its folder, and by the next
# write there, once it is this old: a live writer, here or in another process, is
# done long before.
STALE_TEMP_SECONDS = 600.0
TEMP_MARK = "feedx-convert-"
_TEMP_NAME = re.compile(rf"\..+\.{TEMP_MARK}[a-z0-9_]{{8}}\.tmp")
_swept: set[tuple[int, str]] = set()  # (process, folder): each folder once per process


STDOUT_NAME = "<stdout>"
"""How standard output is named in messages."""


def write_stdout(text: str) -> None:
    """`text` to standard output, flushed: a full or closed one is our one-line error."""
    if sys.stdout is None:  # started with descriptor 1 closed (`>&-`)
        raise ConvertError(STDOUT_NAME, "cannot write: standard output is closed")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # a reader that stopped reading (`| head`): not a failure
    except OSError as error:
        _discard_stdout()
        raise ConvertError(STDOUT_NAME, f"cannot write: {error.strerror or error}") from None


def stdout_is_terminal() -> bool:
    """True when standard output is a terminal (and not closed)."""
    return sys.stdout is not None and sys.stdout.isatty()


def _discard_stdout() -> None:
    # What is still buffered would fail again when Python flushes at exit, with a
    # message of its own and exit code 120: it goes to /dev/null instead.
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's capture)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


def write_atomic(path: Path, data: bytes | str, batch: FileBatch | None = None) -> None:
    """Write `data` to a temporary file beside `path`, then move it into place.

    With `batch`, the move waits for the batch's commit (one flush for many files).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = _write_temp(path, payload, sync=batch is None)
    if batch is not None:
        batch.add(tmp, path)
        return
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_temp(path: Path, payload: bytes, *, sync: bool) -> str:
    """A temporary file beside `path` holding `payload` (on disk when `sync`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{TEMP_MARK}", suffix=".tmp")
    try:
        # mkstemp makes the file private; outputs get the usual mode (feeds are served).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


class FileBatch:
    """Many files written atomically with one flush to disk instead of one per file.

    Each file is written to its temporary name at once; `commit` flushes the file
    system once (syncfs), then moves every file into place. A file is thus only ever
    seen whole, as with `write_atomic`, and is on disk before it is seen; a thousand
    small files no longer wait for a thousand flushes. As a context manager, what was
    not committed when it ends (an error) is thrown away.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, Path]] = []

    def add(self, tmp: str, path: Path) -> None:
        """Move `tmp` to `path` at the next commit."""
        self._pending.append((tmp, path))

    def __len__(self) -> int:
        return len(self._pending)

    def commit(self) -> list[tuple[Path, OSError]]:
        """Flush the written files to disk, then move each into place.

        Returns the files that could not be moved, with why; their temporary files
        are gone, the other files are in place.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return []
        failed: list[tuple[Path, OSError]] = []
        try:
            _flush_file_system(pending[0][0])
        except OSError as error:
            failed = [(path, error) for _tmp, path in pending]
        for tmp, path in pending if not failed else ():
            try:
                os.replace(tmp, path)
            except OSError as error:
                failed.append((path, error))
        for tmp, _path in pending if failed else ():
            Path(tmp).unlink(missing_ok=True)
        return failed

    def discard(self) -> None:
        """Throw the files not yet committed away."""
        for tmp, _path in self._pending:
            Path(tmp).unlink(missing_ok=True)
        self._pending = []

    def __enter__(self) -> FileBatch:
        return self

    def __exit__(self, *_exception: object) -> None:
        """Whatever was not committed is thrown away."""
        self.discard()


def _flush_file_system(member: str) -> None:
    """Flush the file system that holds `member` (Linux syncfs; else every one)."""
    fd = os.open(member, os.O_RDONLY)
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _find_syncfs() -> Callable[[int], int] | None:
    try:
        return cast("Callable[[int], int]", ctypes.CDLL(None, use_errno=True).syncfs)
    except (OSError, AttributeError):
        return None


_syncfs = _find_syncfs()


def _sweep_once(folder: Path) -> None:
    """`sweep_stale_temps`, the first time this process writes into `folder`."""
    key = (os.getpid(), os.path.abspath(folder))  # a forked child sweeps again
    if key not in _swept:
        _swept.add(key)
        sweep_stale_temps(folder)


def sweep_stale_temps(folder: Path) -> None:
    """Remove the temporary files a killed run left in `folder` (ours, and stale)."""
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


def write_if_changed(path: Path, data: bytes | str, batch: FileBatch | None = None) -> bool:
    """Write `data` atomically unless `path` already holds it; True when written.

    An unchanged file keeps its bytes and its modification time, so that a rerun
    on the same input says so and sync tools see nothing new. With `batch`, the file
    appears at the batch's commit.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if holds(path, payload):
        return False
    write_atomic(path, payload, batch)
    return True


def holds(path: Path, payload: bytes) -> bool:
    """True when the plain file at `path` holds `payload`; a symbolic link there (not
    followed: what it names is not ours), a missing or unreadable file holds nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size != len(payload):
        os.close(fd)
        return False  # a folder or a FIFO is not read; a size that differs says it all
    with open(fd, "rb") as handle:
        try:
            return handle.read(len(payload) + 1) == payload
        except OSError:
            return False


@contextmanager
def folder_lock(folder: Path, wait: float, what: str) -> Iterator[None]:
    """Hold the lock on `folder` (flock on the folder itself: no lock file among what is
    published), waiting up to `wait` seconds while another process holds it; a
    ConvertError naming `what` when it does not come. Where folders cannot be locked
    (some network file systems), go on without."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield  # the write itself will say what is wrong with the folder
        return
    try:
        if not _lock_within(fd, wait):
            reason = f"another process is writing into its folder; waited {wait:g} s"
            raise ConvertError(what, reason)
        yield
    finally:
        os.close(fd)  # and the lock with it


def _lock_within(fd: int, wait: float) -> bool:
    """Lock `fd` exclusively within `wait` seconds (True also when locks are unsupported)."""
    give_up = time.monotonic() + wait
    pause = 0.01
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= give_up:
                return False
            time.sleep(min(pause, max(0.0, give_up - time.monotonic())))
            pause = min(pause * 2, 0.2)
        except OSError:
            return True  # not lockable here: as before locks, no worse


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) or fail at once.

    The lock is the operating system's (flock): it goes away with the process, so
    a killed run never leaves a stale lock behind.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Never through a link planted in its place (a root cron run would truncate
        # whatever it names), and only a plain file of our own making or a past run's.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConvertError(str(path), "the lock is a symbolic link; not followed") from None
        # mkdir's error names a folder on the way: say which.
        culprit = f"{error.filename}: " if error.filename and error.filename != str(path) else ""
        reason = f"cannot create the lock: {culprit}{error.strerror}"
        raise ConvertError(str(path), reason) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConvertError(str(path), "the lock is not a plain file; not used")
    with open(fd, "r+", encoding="utf-8") as handle:
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

"""How much memory pictures may take: the config's `memory_mb`, shared by every thread.

A picture's compressed bytes say nothing of what decoding it takes: a 3 KB WebP can
be 80 megapixels, a gigabyte once decoded the way Pillow decodes WebP. So each
decode first reserves what it will take (`prepare` estimates it from the header) from
one process-wide `MemoryBudget`: decodes wait until their reservation fits beside
those running, and one that could never fit is refused. No Pillow here: the plan
computes the budget at start-up.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator

PROCESS_MB = 150
"""What the process holds besides pictures (interpreter, libraries, a week's articles,
the book being zipped): `epub` of 1,000 articles without pictures peaks at about 140 MB."""

PICTURE_WORKERS = 8
"""Pictures downloaded at the same time; each holds at most `download.max_bytes`."""

_MB = 1_000_000

# glibc's mallopt: allocations from this size up are mapped on their own, and so given
# back to the system when freed.
_M_MMAP_THRESHOLD = -3
_OWN_MAPPING_FROM = 1 << 20


class OverBudget(Exception):
    """A reservation larger than the whole budget: it would never fit."""


def picture_memory(memory_mb: float, max_download_bytes: int) -> int:
    """Bytes the pictures being decoded may hold at once: `memory_mb` less the rest of
    the process and the downloads in flight (negative when nothing is left)."""
    return int(memory_mb * _MB) - PROCESS_MB * _MB - PICTURE_WORKERS * max_download_bytes


class MemoryBudget:
    """A number of bytes that threads reserve and give back, waiting while too few are free."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._freed = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        """Hold `size` bytes of the budget for the block; OverBudget when it never could."""
        if size > self.capacity:
            raise OverBudget(f"needs about {size / _MB:.0f} MB")
        with self._freed:
            self._freed.wait_for(lambda: self._used + size <= self.capacity)
            self._used += size
        try:
            yield
        finally:
            with self._freed:
                self._used -= size
                self._freed.notify_all()


_BUDGETS: dict[int, MemoryBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(capacity: int) -> MemoryBudget:
    """The process's one budget of `capacity` bytes (one per value: normally one)."""
    # Under a lock: picture threads ask for it at the same moment, and two budgets
    # would each let their threads take the whole of it (functools.cache would).
    with _BUDGETS_LOCK:
        if capacity not in _BUDGETS:
            _give_back_freed_pictures()
            _BUDGETS[capacity] = MemoryBudget(capacity)
        return _BUDGETS[capacity]


def _give_back_freed_pictures() -> None:
    """Have large freed blocks returned to the system at once (glibc; elsewhere nothing).

    Otherwise glibc raises its threshold for mapping blocks on their own to the size of
    the first one freed, and Pillow's 16 MB blocks then come from per-thread heaps that
    keep what is freed: measured, eight picture threads decoding one 80-megapixel PNG at
    a time grew the process to 2.3 GB, within the budget's 0.4 GB with this.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: macOS, Windows
        return
    mallopt(_M_MMAP_THRESHOLD, _OWN_MAPPING_FROM)

"""Worker processes that end with this one: the pipeline's readers and the EPUB's pages."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor


def worker_pool(jobs: int, *, fork: bool = False) -> ProcessPoolExecutor:
    """`jobs` worker processes that end with this one, even when it is killed.

    With `fork`, each worker starts as a copy of this process as it is at the first
    task, so that tasks can name what is already here instead of pickling it over.
    """
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("fork") if fork else None,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )


def can_fork() -> bool:
    """True where worker processes can start as copies of this one (not on Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def _die_with_parent(parent: int) -> None:
    # A killed parent never tells its pool to stop: its workers would wait for work
    # forever, holding the run's stdout and stderr open. Linux ends them with it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # gone already, before the line above
        os._exit(1)


_PR_SET_PDEATHSIG = 1

"""Worker processes that end with this one: the run's readers and the EPUB's pages.

`parallel_map` spreads a task over them, results in input order; what the workers log
is told by the parent (`with_logs`, `replay_logs`), so that it reaches the parent's
stderr in order and never cuts through its progress bar.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar


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


# Below this many inputs, starting worker processes costs more than it saves.
POOL_THRESHOLD = 8


_T = TypeVar("_T")
_I = TypeVar("_I")


def parallel_map(task: Callable[[_I], _T], inputs: Iterable[_I], jobs: int) -> Iterator[_T]:
    """`task(input)` for every input over `jobs` processes, results in input order.

    Inputs go out in small batches, a few per worker ahead of the results taken, so
    that an input iterable with a progress bar advances as the work does. With one
    job or few inputs the work is done here: starting workers would cost more.
    """
    items = iter(inputs)
    first = list(itertools.islice(items, POOL_THRESHOLD))
    if jobs <= 1 or len(first) < POOL_THRESHOLD:
        yield from map(task, itertools.chain(first, items))
        return
    with worker_pool(jobs) as pool:
        pending: deque[Future[tuple[list[_T], list[logging.LogRecord]]]] = deque(
            [pool.submit(_each, task, first)]
        )
        for batch in _batches(items, _BATCH):
            pending.append(pool.submit(_each, task, batch))
            if len(pending) > 2 * jobs:
                yield from _told(pending.popleft().result())
        while pending:
            yield from _told(pending.popleft().result())


def _told(done: tuple[list[_T], list[logging.LogRecord]]) -> list[_T]:
    results, records = done
    replay_logs(records)
    return results


# Inputs per task sent to a worker: enough to amortize the round trip, few enough to
# keep both workers busy to the end.
_BATCH = 8


def _batches(items: Iterator[_I], size: int) -> Iterator[list[_I]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _each(task: Callable[[_I], _T], items: list[_I]) -> tuple[list[_T], list[logging.LogRecord]]:
    return with_logs(lambda: [task(item) for item in items])


def with_logs(work: Callable[[], _T]) -> tuple[_T, list[logging.LogRecord]]:
    """`work()` in a worker process, with what it logged kept to be told by the parent.

    A worker's own stderr is not the parent's when that was redirected, and its lines
    would cut through the parent's progress bar; `replay_logs` tells them in order.
    """
    records: list[logging.LogRecord] = []
    handler = _KeepRecords(records)
    logger = logging.getLogger("convert")
    saved = logger.handlers[:], logger.propagate
    logger.handlers[:], logger.propagate = [handler], False
    try:
        return work(), records
    finally:
        logger.handlers[:], logger.propagate = saved


def replay_logs(records: Iterable[logging.LogRecord]) -> None:
    """Tell what a worker logged, through this process's handlers."""
    for record in records:
        logging.getLogger(record.name).handle(record)


class _KeepRecords(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        # Formatted here: the arguments may not survive pickling back to the parent.
        record.msg, record.args, record.exc_info, record.exc_text = (
            record.getMessage(),
            None,
            None,
            None,
        )
        self.records.append(record)

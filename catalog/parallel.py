"""Where in-process pools may run: the one rule every ``workers=`` argument goes through. Pure (stdlib only).

A Celery prefork child is a daemonic process, and Python refuses to let a daemonic process start children
("daemonic processes are not allowed to have children"). Work that runs inside a Celery task therefore spreads through
the task queue (``discovery.services.generation`` fans a round's generation out as chunk tasks) and runs each piece in
one process; pools are for command-line and notebook use, where the process may fork.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def may_start_processes() -> bool:
    """False inside a daemonic process (a Celery prefork child, a multiprocessing pool worker)."""
    return not multiprocessing.current_process().daemon


def pool_size(requested: int | None, n_items: int | None = None) -> int:
    """How many processes to use for ``requested`` (None: every core), never more than there are items or cores,
    and 1 wherever this process may not start children."""
    if not may_start_processes():
        return 1
    size = requested if requested else (os.cpu_count() or 1)
    size = min(size, os.cpu_count() or 1)
    if n_items is not None:
        size = min(size, n_items)
    return max(1, size)


def map_in_processes(fn: Callable[[T], R], items: Iterable[T], workers: int | None) -> list[R]:
    """``[fn(x) for x in items]``, in a process pool when ``pool_size`` allows more than one process.

    ``fn`` and the items must pickle (a module-level function and plain data)."""
    items = list(items)
    size = pool_size(workers, len(items))
    if size == 1:
        return [fn(x) for x in items]
    with ProcessPoolExecutor(max_workers=size) as pool:
        return list(pool.map(fn, items))

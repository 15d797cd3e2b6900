"""The one rule for in-process pools: never inside a daemonic process (a Celery prefork pool process)."""

from __future__ import annotations

import multiprocessing

from catalog.parallel import map_in_processes, may_start_processes, pool_size


def _square(x: int) -> int:
    return x * x


def _inside_a_daemon(queue) -> None:
    # what generation does inside a prefork pool process: asks for two workers and must get one, not a crash
    queue.put((may_start_processes(), pool_size(2, 10), map_in_processes(_square, range(5), workers=2)))


def test_a_daemonic_process_runs_the_work_itself():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_inside_a_daemon, args=(queue,), daemon=True)
    process.start()
    result = queue.get(timeout=30)
    process.join(timeout=30)
    assert result == (False, 1, [0, 1, 4, 9, 16])


def test_pool_size_is_bounded_by_items_and_cores():
    assert may_start_processes()
    assert pool_size(8, 1) == 1
    assert pool_size(1, 100) == 1
    assert pool_size(None, 0) == 1
    assert map_in_processes(_square, [3, 4], workers=2) == [9, 16]

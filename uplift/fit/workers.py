"""Fold fits side by side: how many models train at once, and how many threads each one gets.

Cross-fitting fits the same model on K training sets that do not depend on each other. One LightGBM fit uses
its threads poorly on few cores: on the 2-core benchmark machine a fold's outcome model (324k rows, 100 rounds)
took 3.29 s on one thread and 2.55 s on two (1.29x), while two fits on one thread each, side by side, took
3.55 s for both (1.43x the throughput of one 2-thread fit after the other). So the study runs the folds of
each model in a small thread pool, every LightGBM fit and prediction inside it on its share of the cores.
LightGBM's C code releases the GIL, so threads suffice; each fit keeps its own seed, and its trees do not depend
on the thread count (``uplift.fit.models._histogram_layout``: row-wise histograms on one thread, column-wise on
more), so the study's numbers are the same however many folds run at once.

Each concurrent fit holds its own training state (~65 bytes a training row), so studies of more than
:data:`CONCURRENT_MAX_ROWS` rows fit one model at a time and keep to the memory bound documented in
:data:`uplift.fit.models.MAX_TRAIN_ROWS`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from uplift.fit.progress import PhaseTimes

T = TypeVar("T")

#: Studies with more rows than this fit one model at a time (each concurrent fit holds its own training state).
CONCURRENT_MAX_ROWS = 2_000_000

_local = threading.local()


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def fit_workers(n_rows: int, n_tasks: int, cpus: int | None = None) -> int:
    """How many of ``n_tasks`` independent fits on a study of ``n_rows`` rows run at once.

    One per CPU, at most one per task; one at a time beyond :data:`CONCURRENT_MAX_ROWS` rows or on one CPU.

    Examples
    --------
    >>> fit_workers(1_000_000, 5, cpus=2), fit_workers(1_000_000, 5, cpus=8), fit_workers(14_000_000, 5, cpus=8)
    (2, 5, 1)
    """
    cpus = available_cpus() if cpus is None else cpus
    if n_rows > CONCURRENT_MAX_ROWS:
        return 1
    return max(1, min(cpus, n_tasks))


def model_threads() -> int:
    """LightGBM ``num_threads`` for a fit or prediction on the calling thread: 0 (every core) outside
    :func:`run_concurrently`, else that pool's share of the CPUs."""
    return getattr(_local, "threads", 0)


def run_concurrently(tasks: Sequence[Callable[[], T]], workers: int,
                     done: Callable[[int], None] | None = None) -> list[T]:
    """Run ``tasks`` (callables without arguments) on ``workers`` threads and return their results in order.

    ``done(i)`` runs on the calling thread once task ``i`` and every task before it have finished (progress
    displays need not be thread-safe). The first task to fail, in order, raises its error once the running ones
    ended; tasks not started by then are not run.
    With one worker the tasks simply run one after the other on the calling thread.

    Examples
    --------
    >>> run_concurrently([lambda: 1, lambda: model_threads()], workers=2, done=None)[0]
    1
    >>> model_threads()  # outside the pool: every core
    0
    """
    if workers <= 1 or len(tasks) <= 1:
        results = []
        for i, task in enumerate(tasks):
            results.append(task())
            if done is not None:
                done(i)
        return results
    share = max(1, available_cpus() // workers)

    def call(task: Callable[[], T]) -> T:
        _local.threads = share
        try:
            return task()
        finally:
            _local.threads = 0

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="uplift-fit") as pool:
        futures = [pool.submit(call, task) for task in tasks]
        results = []
        try:
            for i, future in enumerate(futures):
                results.append(future.result())
                if done is not None:
                    done(i)
        except BaseException:
            # A failed fold (or Ctrl-C) ends the pass: tasks not yet started never start, running ones finish.
            for future in futures:
                future.cancel()
            raise
    return results


def run_phases(phases: dict[str, Sequence[Callable[[], T]]], workers: int, times: PhaseTimes | None = None,
               done: Callable[[str, int], None] | None = None) -> dict[str, list[T]]:
    """Run the tasks of several phases (e.g. the folds of each arm's outcome model) in one pool, phase after
    phase in submission order, so a worker freed at the end of one phase starts the next phase's tasks instead
    of waiting for the last fold of the first (5 folds on 2 workers: 2.5 rounds per phase instead of 3).

    Phases then overlap at their edges, so ``times`` receives for each phase its share of the pool's wall time
    in proportion to the summed durations of its tasks: the phases' times add up to the wall time, and a phase
    whose fits take longer gets more of it. ``done(phase, i)`` runs on the calling thread as in
    :func:`run_concurrently`. Returns each phase's results in task order.

    Examples
    --------
    >>> run_phases({"a": [lambda: 1, lambda: 2], "b": [lambda: 3]}, workers=2)
    {'a': [1, 2], 'b': [3]}
    """
    labelled = [(name, i, task) for name, tasks in phases.items() for i, task in enumerate(tasks)]
    spent = dict.fromkeys(phases, 0.0)

    def timed(task: Callable[[], T]) -> tuple[T, float]:
        start = time.perf_counter()
        return task(), time.perf_counter() - start

    started = time.perf_counter()
    results = run_concurrently([lambda task=task: timed(task) for _, _, task in labelled], workers,
                               None if done is None else lambda j: done(labelled[j][0], labelled[j][1]))
    wall = time.perf_counter() - started
    out: dict[str, list[T]] = {name: [] for name in phases}
    for (name, _, _), (result, seconds) in zip(labelled, results, strict=True):
        out[name].append(result)
        spent[name] += seconds
    if times is not None:
        total = sum(spent.values())
        for name, seconds in spent.items():
            times.add(name, wall * seconds / total if total > 0 else wall / len(spent))
    return out

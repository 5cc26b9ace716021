"""Worker processes for sweeps, ``--vary`` draws and simulated paths.

The three commands share one rule: an interrupt (Ctrl-C), a termination request
(SIGTERM, which the command line turns into an exit) or an error stops the work
at once and leaves no worker process behind. The standard executor's ``with``
block waits for every queued task instead, which for a long ``--vary`` run means
minutes after the user asked it to stop.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from typing import Any

# Ctrl-C and a termination request from a batch system or `timeout`.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Workers allowed per processor. Past one per processor a worker only adds its
# start-up time and memory (an interpreter with numpy each), so this bounds a
# mistyped count rather than a useful one.
WORKERS_PER_PROCESSOR = 4


def available_processors() -> int:
    """Return the processors this process may run on, which `taskset` or a batch system can limit."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count_problem(workers: int) -> str | None:
    """Return why ``workers`` is not an allowed ``--workers`` value, or None if it is."""
    processors = available_processors()
    maximum = WORKERS_PER_PROCESSOR * processors
    if workers < 1:
        return f"--workers must be at least 1, got {workers}"
    if workers > maximum:
        return (f"--workers must be at most {maximum} ({WORKERS_PER_PROCESSOR} per processor, and this "
                f"process may use {processors}), got {workers}; more workers than processors add "
                "start-up time and memory, not speed")
    return None


class WorkerPool:
    """A process pool that ends its workers without waiting when its block fails.

    Use it as a context manager. On a normal exit it waits for the workers, as the
    standard executor does. On any exception, ``KeyboardInterrupt`` and
    ``SystemExit`` included, it cancels the queued tasks and terminates the workers.

    Parameters
    ----------
    workers : int
        Number of worker processes.
    initializer : callable
        Run once in each worker with ``initargs``, to set the state its tasks read.
        It must be a module-level function, because workers are spawned.
    initargs : tuple
        Arguments of ``initializer``. They are pickled once into a temporary
        file, which every worker reads and which is removed when the block ends
        (a parent killed with SIGKILL leaves it in the temporary folder).
    """

    def __init__(self, workers: int, initializer: Callable[..., None], initargs: tuple = ()) -> None:
        # The start-up data goes through a file rather than the pipe that starts
        # each worker. Past the pipe's buffer, a start waits until the new worker
        # has finished its imports and reads the rest. With a large model (a
        # simulation's), the workers would then start one after another, and a
        # stop request would wait seconds per worker.
        self._startup = _write_startup(initializer, initargs)

        # Spawn starts clean interpreters on every platform, so workers never
        # inherit locks or state from a forked parent.
        context = multiprocessing.get_context("spawn")
        try:
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(self._startup,),
            )
        except BaseException:
            _remove(self._startup)
            raise

    def map(self, function: Callable[[Any], Any], items: Iterable, chunksize: int = 1) -> Iterator:
        """Return the results of ``function`` on ``items``, in order, as they arrive.

        Each task runs ``function`` on ``chunksize`` items in a row.
        """
        # Submitting the tasks starts the worker processes. A stop request in the
        # middle of starting one would leave a worker that the pool does not track,
        # and that worker outlives the command. So the request waits until the
        # tasks are submitted. That is quick, because a start does not wait for
        # the new worker (see ``__init__``).
        with _stop_requests_held():
            futures = [self._pool.submit(_run_chunk, function, chunk)
                       for chunk in _chunks(items, max(1, chunksize))]
        return _results_in_order(futures)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self._pool.shutdown()
            else:
                stop_workers(self._pool)
        finally:
            # Every worker has ended, so none will read the file again.
            _remove(self._startup)


def _chunks(items: Iterable, size: int) -> list[list]:
    """Split ``items`` into lists of ``size``, the last one possibly shorter."""
    items = list(items)
    return [items[start:start + size] for start in range(0, len(items), size)]


def _run_chunk(function: Callable[[Any], Any], chunk: list) -> list:
    return [function(item) for item in chunk]


def _results_in_order(futures: list) -> Iterator:
    """Yield the results of each future's chunk, in order.

    Unlike the executor's own ``map``, this leaves the queued tasks alone when
    it is interrupted. The executor's map cancels them from this thread while
    ``stop_workers`` has its manager thread fail the same tasks as the workers
    end. In Python 3.11 the manager then meets a cancelled task and prints an
    ``InvalidStateError`` traceback. With ``shutdown(cancel_futures=True)``
    only the manager thread cancels, so the two never overlap.
    """
    for future in futures:
        yield from future.result()


def _write_startup(initializer: Callable[..., None], initargs: tuple) -> str:
    """Pickle ``initializer`` and ``initargs`` into a new temporary file; return its path."""
    handle, path = tempfile.mkstemp(prefix="treaty-workers-", suffix=".pickle")
    try:
        with os.fdopen(handle, "wb") as file:
            pickle.dump((initializer, initargs), file, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        _remove(path)
        raise
    return path


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


@contextmanager
def _stop_requests_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block, then raise the ones that came.

    Worker processes started in the block begin with both signals blocked, so
    that one sent to the whole process group cannot end a worker before it has
    set itself up (``_start_worker`` unblocks them). A Ctrl-C at that point
    would print the worker's own traceback and break the pool.
    """
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may set handlers, and Python runs them only there.
        yield
        return

    pending: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: pending.append(number))
                for number in _STOP_SIGNALS}
    masked = _block(_STOP_SIGNALS)
    try:
        yield
    finally:
        # Unblocked first, so that a signal that came meanwhile reaches the
        # recording handler and is raised below.
        _unblock(masked)
        for number, handler in previous.items():
            signal.signal(number, handler)

        # Raised again with the command's own handlers in place, so that SIGINT
        # still ends in KeyboardInterrupt and SIGTERM in the exit code 143.
        for number in dict.fromkeys(pending):
            signal.raise_signal(number)


def _block(numbers: tuple[int, ...]) -> tuple[int, ...]:
    """Block ``numbers`` in this thread where the platform can; return those blocked."""
    if not hasattr(signal, "pthread_sigmask"):
        return ()
    already = signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    return tuple(number for number in numbers if number not in already)


def _unblock(numbers: tuple[int, ...]) -> None:
    if numbers and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, numbers)


def _start_worker(startup: str) -> None:
    # Ctrl-C in a terminal sends SIGINT to the whole process group. The parent
    # handles it and stops the workers, so a worker ignores it rather than print
    # its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # The worker began with both signals blocked (see _stop_requests_held). From
    # here a SIGTERM ends it, as stop_workers expects.
    _unblock(_STOP_SIGNALS)

    # The file was written by the parent for this pool (see ``_write_startup``).
    with open(startup, "rb") as file:
        initializer, initargs = pickle.load(file)
    initializer(*initargs)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and terminate the worker processes without waiting."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return

    # NOTE: before Python 3.14 the executor has no public way to end its
    # workers, so this reads its private process table, result queue and
    # manager thread.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)

    # A worker ended while sending a large result leaves part of a message in the
    # result pipe, and the manager thread waits for the rest for ever. The exit
    # hook waits for that thread, so the command would never end. With the
    # workers gone, this process has the last write end, and closing it lets
    # the manager thread read end-of-file and finish.
    if results is not None:
        results._writer.close()

    # The manager thread closes its wake-up pipe once it detects the workers gone.
    # In Python 3.11 the executor's exit hook writes to that pipe without a lock,
    # so an exit that overlaps the close prints an OSError traceback. Waiting for
    # the thread here leaves the hook nothing to race with.
    if manager is not None:
        manager.join(timeout=5)

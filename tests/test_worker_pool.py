"""The worker pool behind sweeps, ``--vary`` draws and simulated paths."""

import multiprocessing
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor

import numpy
import pytest

from engine.worker_pool import WorkerPool, _results_in_order, stop_workers


def test_results_in_order():
    with WorkerPool(2, int) as pool:
        assert list(pool.map(abs, range(-5, 0), chunksize=2)) == [5, 4, 3, 2, 1]


def test_error_stops_workers_at_once():
    # Leaving the block normally would wait for four minute-long tasks.
    started = time.monotonic()
    with pytest.raises(ValueError, match="in the caller"):
        with WorkerPool(2, int) as pool:
            pool.map(time.sleep, [60] * 4)
            raise ValueError("in the caller")

    assert time.monotonic() - started < 30
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to one's own process there")
def test_stop_request_while_submitting():
    # Submitting tasks starts the workers. A request to stop that arrives then is
    # held until every task is submitted, so that no worker is half started, and
    # is raised afterwards with the command's own handler.
    submitted = []

    def items():
        for item in range(4):
            if item == 1:
                os.kill(os.getpid(), signal.SIGINT)
            submitted.append(item)
            yield item

    with pytest.raises(KeyboardInterrupt):
        with WorkerPool(2, int) as pool:
            pool.map(abs, items())

    assert submitted == [0, 1, 2, 3]
    assert multiprocessing.active_children() == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 ends the workers through the executor itself")
def test_stop_while_sending_large_results():
    # Each result (32 MB) is far larger than a pipe's buffer, so a worker spends
    # much of its time sending, and ending it then leaves part of a message in
    # the pipe. The pool's manager thread, which reads that pipe, must still
    # finish: the executor's exit hook waits for it. Eight tasks bound the memory
    # that finished results take.
    pool = WorkerPool(2, int)
    results = pool.map(numpy.ones, [4_000_000] * 8)
    next(results)
    manager = pool._pool._executor_manager_thread
    queue = pool._pool._result_queue

    try:
        stop_workers(pool._pool)

        # Whether a worker was caught sending depends on timing, but the write
        # end that this process keeps must be closed either way.
        assert queue._writer.closed
        assert not manager.is_alive()
    finally:
        # Should the thread still wait, end its wait, so that a failure here
        # does not also hang the test run at exit.
        queue._writer.close()


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 ends the workers through the executor itself")
def test_stop_leaves_no_manager_thread():
    # Python 3.11's exit hook writes to the executor's wake-up pipe without a
    # lock. If the manager thread is still running when the command exits, it can
    # close that pipe under the hook, which then prints an OSError traceback. So
    # the thread must be gone, and its pipe closed, once the workers are stopped.
    # Whether the thread happens to finish in time varies, hence three pools.
    for _ in range(3):
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        for _ in range(6):
            pool.submit(time.sleep, 30)
        time.sleep(0.5)
        manager = pool._executor_manager_thread
        wakeup = pool._executor_manager_thread_wakeup

        stop_workers(pool)

        assert not manager.is_alive()
        assert wakeup._closed


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signal masks are POSIX")
def test_ctrl_c_during_worker_start_up():
    # Ctrl-C reaches workers that are still starting, because it goes to the
    # whole process group. A worker ended then would print its own traceback
    # and break the pool. The signal is sent while the workers import their modules.
    with WorkerPool(2, int) as pool:
        results = pool.map(abs, range(-4, 0))
        for process in pool._pool._processes.values():
            os.kill(process.pid, signal.SIGINT)

        assert list(results) == [4, 3, 2, 1]


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signal masks are POSIX")
def test_workers_start_with_stop_signals_blocked():
    # A started process inherits the signal mask of the thread that starts it, so
    # SIGTERM to the group, like Ctrl-C, cannot end a worker before it has read
    # its start-up data. The mask is restored once the tasks are submitted.
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    blocked_while_starting = []

    def record_mask():
        blocked_while_starting.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        yield -1

    with WorkerPool(1, int) as pool:
        assert list(pool.map(abs, record_mask())) == [1]

    assert {signal.SIGINT, signal.SIGTERM} <= blocked_while_starting[0]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


SLOW_MODULE = """
import time

time.sleep({seconds})


def keep(data):
    global KEPT
    KEPT = len(data)


def kept(_):
    return KEPT
"""


def test_start_does_not_wait_for_imports(tmp_path, monkeypatch):
    # The initializer is in a module that takes 5 s to import, and the start-up
    # data (4 MB) is far larger than a pipe's buffer. If the data went through
    # the pipe that starts a worker, each start would wait until that worker had
    # imported the module. Submitting the tasks would then take at least 5 s per
    # worker, and a stop request would be held that long.
    (tmp_path / "slow_start.py").write_text(SLOW_MODULE.format(seconds=5))
    monkeypatch.syspath_prepend(str(tmp_path))
    import slow_start

    with WorkerPool(2, slow_start.keep, (b"x" * 4_000_000,)) as pool:
        started = time.monotonic()
        results = pool.map(slow_start.kept, range(4))
        submitting = time.monotonic() - started

        assert list(results) == [4_000_000] * 4
    assert submitting < 5


@pytest.mark.parametrize("fail", [False, True])
def test_start_up_file_is_removed(tmp_path, monkeypatch, fail):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def run():
        with WorkerPool(2, int, ("7",)) as pool:
            assert len(list(tmp_path.iterdir())) == 1
            assert list(pool.map(abs, [-1, -2])) == [1, 2]
            if fail:
                raise ValueError("in the caller")

    if fail:
        with pytest.raises(ValueError, match="in the caller"):
            run()
    else:
        run()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_results_leave_tasks_queued():
    # Closing the results early, as an interrupt does, must not cancel the tasks
    # still queued: only the executor's manager thread cancels them, in
    # ``stop_workers``. Cancelling them from this thread as well races with that
    # thread, which then fails on a cancelled task and prints a traceback.
    done, queued = Future(), Future()
    done.set_result([1])
    results = _results_in_order([done, queued])

    assert next(results) == 1
    results.close()

    assert not queued.cancelled()

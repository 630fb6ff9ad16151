"""Many pictures at once: work on them in parallel worker processes, get the results back in input order.

:func:`ordered_batches` runs a picklable function on each item, in worker processes or in this one, and yields
the results as lists in input order, as soon as each one and all before it are done. At most ``window`` items are
in flight, so memory stays flat for a folder of any size. The caller groups nothing itself: each list holds what
was ready together (up to ``max_batch``), so a model can classify it in one forward pass.

Starting a worker costs seconds (it imports torch and loads its models), so a :class:`WorkerPool` is started as
early as possible (its processes get ready while the caller goes on, e.g. loading its own model) and kept for
many calls; :func:`worker_count` keeps folders too small to repay the start in this process.

Workers are started with the 'spawn' method on every platform (torch and a plain fork do not mix; 'forkserver'
would leave its server process behind for a moment and hide the workers' CPU time from the parent). Each worker
runs torch on one thread and ignores Ctrl-C from its very start: the parent alone stops the pool, so an
interrupted run prints no traceback per worker and leaves no process behind.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

from digitnet.utils import DigitnetError

T = TypeVar("T")
R = TypeVar("R")

# Fewer items than this and no pool running yet: work in this process. Starting workers costs ~1.5-3 CPU-s each
# (torch's import, the model) against ~7-12 CPU ms a picture, so on two cores a folder must hold some hundreds
# of photos before two workers finish it sooner than this process alone (benchmarks/README.md, "Fast folders").
MIN_PARALLEL = 200
IN_PROCESS_BATCH = 16  # in-process, results are handed on in groups this large (one forward pass each)
WAIT_STEP = 0.05  # seconds: how often a wait for workers looks whether Ctrl-C came (see _ctrl_c_held)


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(workers: int | None, items: int) -> int:
    """How many worker processes to start for ``items`` items: 0 means work in this process.

    ``workers`` None (automatic) means one per CPU for :data:`MIN_PARALLEL` items or more, else this process;
    a number asked for is used (at most one per item); 0 or 1 mean in-process. A :class:`WorkerPool` already
    running is worth using for any number of items: its start is paid.
    """
    if workers is None:
        workers = default_workers() if items >= MIN_PARALLEL else 0
    if workers <= 1 or items < 2:
        return 0
    return min(workers, items)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core already: more threads would only fight over it
    if initializer is not None:
        initializer(*initargs)


def _run_chunk(function: Callable[[T], R], chunk: list[T]) -> list[R]:
    return [function(item) for item in chunk]


def _ready() -> None:
    """A no-op task: submitting one per worker starts every process now."""


@contextmanager
def _ctrl_c_held() -> Iterator[list[int]]:
    """Ctrl-C that arrives in here takes effect on leaving (the list it gives says whether one came).

    The executor's futures and queues take Python-level locks (a ``Condition``'s ``__enter__`` is Python code),
    and a KeyboardInterrupt raised between a lock's acquire and the start of its ``with`` block leaves the lock
    held for good: the pool's manager thread, and then the shutdown that waits for it, would wait forever. So
    :func:`ordered_batches` submits, waits and cancels only in here, and the signal is raised again, with the
    handler that was there before, once it is done.
    """
    arrived: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (None, signal.SIG_IGN):
        # Only the main thread runs signal handlers; an ignored Ctrl-C stays ignored; None: a handler not set
        # from Python, left alone.
        yield arrived
        return
    signal.signal(signal.SIGINT, lambda signum, frame: arrived.append(signum))
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGINT, previous)
        if arrived:
            signal.raise_signal(signal.SIGINT)


def _result(future: Future[R]) -> R:
    """The future's result, waited for in short steps so that Ctrl-C stops the wait (see :func:`_ctrl_c_held`)."""
    while True:
        with _ctrl_c_held() as arrived:
            while not arrived and not wait([future], timeout=WAIT_STEP).done:
                pass
            if not arrived:
                return future.result()
        # Ctrl-C came, and its own handler (run on leaving) did not raise: go on waiting


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """Processes started in here ignore Ctrl-C for good (Python keeps an ignored SIGINT ignored at start-up)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers; Ctrl-C goes to it anyway
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class WorkerPool:
    """``workers`` worker processes, started at once and kept for any number of :func:`ordered_batches` calls.

    Each process runs ``initializer(*initargs)`` once (a module-level function: it is pickled by name), then
    the chunks it is sent. The constructor returns at once: the processes start meanwhile. Close the pool
    (:meth:`close`, or ``with``) to stop them; after a worker died, :attr:`broken` is True and the pool is
    of no more use.
    """

    def __init__(self, workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> None:
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, not {workers}")
        self.workers = workers
        self.broken = False
        self._executor: ProcessPoolExecutor | None = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(initializer, initargs))
        # The executor spawns a process per task submitted while none is idle: one no-op each starts them all
        # now (in the background) instead of one by one as work arrives.
        with _ctrl_c_ignored():
            for _ in range(workers):
                self._executor.submit(_ready)
        # A pool dropped unclosed (a Recognizer that goes away) is shut down, not left for the executor's own
        # garbage collection, which on Python 3.11 can race its wake-up pipe at exit (an OSError traceback).
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=True, cancel_futures=True)

    @property
    def executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            raise DigitnetError("the worker pool was closed")
        return self._executor

    def close(self) -> None:
        """Drop what is queued, let the running chunks end (milliseconds), and wait for the workers to exit."""
        if self._executor is not None:
            self._finalizer()  # the executor's shutdown, once
            self._executor = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def ordered_batches(
    function: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    max_batch: int = 256,
    window: int | None = None,
    chunk: int = 16,  # per task sent to a worker: 4 cost ~1 CPU ms more per picture in queueing (folder_speed)
    pool: WorkerPool | None = None,
) -> Iterator[list[R]]:
    """``function(item)`` for every item, yielded in input order as lists of consecutive results.

    With ``pool``, its workers run ``function`` on chunks of ``chunk`` items and the pool stays open afterwards.
    Without, ``workers`` processes are started for this call (each runs ``initializer(*initargs)`` once) and
    stopped at its end; ``workers`` 0 runs ``function`` here and no initializer (the caller holds that state
    already), in lists of at most :data:`IN_PROCESS_BATCH`. ``function`` and ``initializer`` must be
    module-level functions (they are pickled by name).
    An exception raised by ``function`` is raised here; a worker that dies raises :class:`DigitnetError`.
    Closing the iterator early (or Ctrl-C) cancels what this call queued.
    While workers run, torch in this process uses one thread (a process-wide setting, restored at the end).
    """
    if pool is None:
        if workers <= 0:
            yield from _in_process(function, items, min(max_batch, IN_PROCESS_BATCH))
            return
        with WorkerPool(workers, initializer, initargs) as own:
            yield from ordered_batches(function, items, workers, max_batch=max_batch, window=window, chunk=chunk,
                                       pool=own)
        return
    window = window or max(64, 16 * pool.workers * chunk)
    pending: deque[tuple[Future[list[R]], list[T]]] = deque()
    source = iter(items)
    import torch

    # The workers have the cores. This process only classifies a batch now and then: with several torch threads,
    # their idle spinning between batches takes a core from the workers (measured: 45 → 26 CPU ms a picture).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        in_flight = 0

        def refill() -> None:
            nonlocal in_flight
            while in_flight < window:
                part = [item for _, item in zip(range(chunk), source, strict=False)]
                if not part:
                    return
                with _ctrl_c_held():
                    pending.append((pool.executor.submit(_run_chunk, function, part), part))
                in_flight += len(part)

        ready: list[R] = []
        waiting: list[T] = []  # the chunk whose result is awaited, for the error message
        try:
            refill()
            while pending:
                future, part = pending[0]
                with _ctrl_c_held():
                    done = future.done()
                if not done and ready:
                    yield ready  # hand on what is done before waiting for the next
                    ready = []
                pending.popleft()
                in_flight -= len(part)
                waiting = part
                ready.extend(_result(future))  # waits for this chunk, the next in input order
                waiting = []
                refill()
                if len(ready) >= max_batch:
                    yield ready
                    ready = []
        except BrokenProcessPool:  # a worker died: its chunk, or a later submit, finds the pool broken
            pool.broken = True
            reading = f" while reading {', '.join(str(item) for item in waiting)}" if waiting else ""
            raise DigitnetError(f"a worker process died (out of memory?){reading}") from None
        if ready:
            yield ready
    finally:
        # Normal end, an error, Ctrl-C or the caller stopped early: drop what this call still has queued.
        torch.set_num_threads(threads)
        with _ctrl_c_held():
            for future, _ in pending:
                future.cancel()


def _in_process(function: Callable[[T], R], items: Iterable[T], size: int) -> Iterator[list[R]]:
    batch: list[Any] = []
    for item in items:
        batch.append(function(item))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

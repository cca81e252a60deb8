"""Where the tasks of a sweep run: this process, a local process pool, or Dask.

:func:`mtl.sweep.run_sweep` turns cells into tasks (:func:`plan_tasks`:
every source model once, first; each cell after its source) and hands them
to one scheduler:

* :func:`run_inline` runs them one after the other in this process, with its
  threads as they are, and lets errors propagate like a function call (a
  notebook or a script computing a few cells);
* :func:`run_pool`: a local process pool, at most ``workers`` tasks in flight,
  a lost worker's task retried up to ``allowed_failures`` times;
* :func:`run_dask`: a Dask ``LocalCluster`` or an existing scheduler.

In a worker, :func:`run_task` (a cell) and :func:`run_source_task` (a source
model) set the worker up (:func:`prepare_worker`: the caller's ``MTL_*``
folders, :func:`limit_threads`) and never raise: a failure becomes an outcome
with its error. Every scheduler reports each outcome to a :class:`Sink` (the
sweep's report and progress bar).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import socket
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mtl.corpora import CARDS_ENV
from mtl.io import check_main_guard, exit_with_parent, file_lock
from mtl.paths import cache_dir, data_root, results_dir
from mtl.records import usable_record
from mtl.runner import run, source_model

if TYPE_CHECKING:
    from mtl.cells import CellKind

log = logging.getLogger(__name__)

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class Sink(Protocol):
    """Where a scheduler reports: each finished task's outcome, and how many cells are running."""

    def deliver(self, task: "Task", outcome: dict[str, Any]) -> None: ...

    def show(self, running: int) -> None: ...


# ---------------------------------------------------------------------------
# one task, in a worker
# ---------------------------------------------------------------------------
def limit_threads(n_threads: int) -> None:
    """Make torch, BLAS and OpenMP use ``n_threads`` threads in this process."""
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(n_threads)  # for thread pools started from now on
    import torch
    from threadpoolctl import threadpool_limits

    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    with contextlib.suppress(RuntimeError):  # allowed once, before any parallel work: the first call wins
        torch.set_num_interop_threads(1)
    threadpool_limits(n_threads)  # BLAS and OpenMP pools already loaded (numpy's, torch's)


def _key_lock(name: str):
    """An exclusive lock between processes, released by the system if the holder dies."""
    return file_lock(cache_dir() / "locks" / f"{name}.lock")


def blank_outcome(cell: CellKind, task: str = "cell") -> dict[str, Any]:
    return {"task": task, "cell": cell.key, "experiment": cell.experiment, "describe": cell.describe(),
            "source_key": cell.source_key}


def _failed(outcome: dict[str, Any], error: BaseException | str, trace: str | None = None) -> dict[str, Any]:
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {**outcome, "status": "failed", "error": message, "traceback": trace, "seconds": 0.0}


def prepare_worker(n_threads: int = 1, environ: dict[str, str] | None = None, parent: int | None = None) -> None:
    """Set a worker process up for tasks: ``environ`` (see :func:`shared_environ`), then :func:`limit_threads`.

    With ``parent`` (a pid) the worker also exits when that process ends
    (:func:`mtl.io.exit_with_parent`). The corpus loaders' warnings (files
    missing from a corpus ...) are silenced in a worker: the sweep loaded every
    corpus in the parent first (:func:`mtl.sweep.prepare_features`), which said
    them once, and each worker would repeat them for every corpus it loads.
    """
    if parent is not None:
        exit_with_parent(parent)
    logging.getLogger("mtl.corpora").setLevel(logging.ERROR)
    for name, value in (environ or {}).items():
        os.environ[name] = value
    limit_threads(n_threads)


def _finish(outcome: dict[str, Any], start: tuple[float, float]) -> dict[str, Any]:
    outcome["seconds"] = time.perf_counter() - start[0]
    outcome["cpu_seconds"] = time.process_time() - start[1]  # below `seconds` when the cores are contended
    outcome["pid"] = os.getpid()
    outcome["host"] = socket.gethostname()
    outcome["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    return outcome


def run_task(cell: CellKind, n_threads: int = 1, environ: dict[str, str] | None = None,
             source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one cell in a worker and return its outcome (never raises).

    Parameters
    ----------
    cell : Cell, or a cell of another registered kind
        The cell; the runner of its kind (:func:`mtl.runner.run`) writes its
        record to ``cell.record_path``.
    n_threads : int, default 1
        Threads for torch + BLAS + OpenMP in this worker.
    environ : dict or None
        Environment variables to set first (the caller's ``MTL_*`` folders).
    source : dict or None
        Outcome of the task that trained the cell's source model; a failed
        one fails this cell without running it.

    Returns
    -------
    dict
        ``task``, ``cell`` (key), ``experiment``, ``describe``, ``status``
        (``"done"`` computed here, ``"reused"`` copied from another
        experiment's identical cell, ``"skipped"`` record already there,
        ``"failed"``), ``error`` and ``traceback`` when failed, ``seconds``,
        ``cpu_seconds`` (this process's CPU time), ``pid``, ``host`` and
        ``peak_rss_mb`` (the worker process's peak RSS).
        The record itself is on disk.
    """
    outcome = blank_outcome(cell)
    if source is not None and source["status"] == "failed":
        return _failed(outcome, f"its source model failed: {source['error']}")
    prepare_worker(n_threads, environ)
    start = time.perf_counter(), time.process_time()
    try:
        outcome["status"] = _execute(cell)
    except Exception as error:  # a failed cell is reported; the sweep goes on
        outcome = _failed(outcome, error, traceback.format_exc(limit=-8))
    return _finish(outcome, start)


def _execute(cell: CellKind, progress: bool = False) -> str:
    """Compute ``cell`` under its lock (errors propagate); its status: ``done``, ``reused`` or ``skipped``."""
    with _key_lock(f"cell-{cell.key}"):
        existed = usable_record(cell.record_path, discard=True) is not None  # a damaged one is recomputed
        record = run(cell, progress=progress)
    return "skipped" if existed else "reused" if record.get("reused_from") else "done"


def _train_source(cell: CellKind, progress: bool = False) -> str:
    """Train (or find cached) ``cell``'s source model (errors propagate); its status: ``done`` or ``skipped``."""
    _, info = source_model(cell, progress=progress)  # locks and caches the model itself
    return "skipped" if info["cached"] else "done"


def run_source_task(cell: CellKind, n_threads: int = 1, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Train (or find cached) the source model of ``cell``; the outcome as in :func:`run_task` (never raises)."""
    outcome = blank_outcome(cell, task="source")
    prepare_worker(n_threads, environ)
    start = time.perf_counter(), time.process_time()
    try:
        outcome["status"] = _train_source(cell)
    except Exception as error:
        outcome = _failed(outcome, error, traceback.format_exc(limit=-8))
    return _finish(outcome, start)


def shared_environ() -> dict[str, str]:
    """The caller's ``MTL_CACHE_DIR``, ``MTL_RESULTS_DIR``, ``MTL_DATA_ROOT`` and its corpus cards
    (:data:`mtl.corpora.CARDS_ENV`), which workers must share."""
    return {"MTL_CACHE_DIR": str(cache_dir()), "MTL_RESULTS_DIR": str(results_dir()),
            "MTL_DATA_ROOT": str(data_root()), CARDS_ENV: os.environ.get(CARDS_ENV, "")}


# ---------------------------------------------------------------------------
# the plan: source tasks first, each cell after its source
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One unit a scheduler runs: a cell, or the training of the source model that cells share."""

    name: str
    """Unique task name (also the Dask key)."""
    cell: CellKind
    after: str | None = None
    """Name of the source task this cell waits for."""

    @property
    def is_source(self) -> bool:
        return self.name.startswith("source-")

    @property
    def kind(self) -> str:
        return "source" if self.is_source else "cell"


def plan_tasks(cells: Sequence[CellKind]) -> list[Task]:
    sources: dict[str, Task] = {}
    tasks = []
    for cell in cells:
        after = None
        if cell.source_key is not None:
            after = f"source-{cell.source_key}"
            sources.setdefault(after, Task(after, cell))
        tasks.append(Task(f"cell-{cell.experiment}-{cell.key}", cell, after))
    return [*sources.values(), *tasks]


# ---------------------------------------------------------------------------
# the schedulers
# ---------------------------------------------------------------------------
def run_inline(tasks: Sequence[Task], sink: Sink, threads: int = 0, progress: bool = False) -> None:
    """Run ``tasks`` in order in this process; an error propagates (nothing after it runs).

    ``threads`` > 0 limits torch, BLAS and OpenMP to that many threads while
    the tasks run (restored afterwards); 0 leaves them as they are.
    """
    with _threads_while(threads):
        for task in tasks:
            _run_here(task, sink, progress)


def _run_here(task: Task, sink: Sink, progress: bool) -> None:
    start = time.perf_counter(), time.process_time()
    outcome = blank_outcome(task.cell, task.kind)
    sink.show(0 if task.is_source else 1)
    run_task_here = _train_source if task.is_source else _execute
    outcome["status"] = run_task_here(task.cell, progress=progress)
    sink.deliver(task, _finish(outcome, start))


@contextlib.contextmanager
def _threads_while(threads: int) -> Any:
    """torch and BLAS/OpenMP limited to ``threads`` inside the block (0: unchanged), as before after it."""
    if not threads:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    saved = torch.get_num_threads()
    try:
        with threadpool_limits(threads):
            torch.set_num_threads(threads)
            yield
    finally:
        torch.set_num_threads(saved)


def run_pool(tasks: Sequence[Task], workers: int, threads: int, allowed_failures: int, sink: Sink) -> None:
    """At most ``workers`` tasks in flight, so "running" is exact; a dead worker restarts the pool."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    check_main_guard()  # a worker importing an unguarded script would start pools of its own
    # forkserver: workers are forked from a fresh server that has run nothing,
    # never from the caller (whose torch/OpenMP threads and locks do not
    # survive a fork). The server imports torch and mtl once, so every worker
    # starts warm -- also after a lost worker, or in a later sweep. (The first
    # torch optimizer imports torch._dynamo: 2-3 s per process otherwise.)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch._dynamo", "mtl.runner", "mtl.pathnet"])
    environ = shared_environ()
    ready = deque(t for t in tasks if t.after is None)
    waiting: dict[str, list[Task]] = {}
    for task in tasks:
        if task.after is not None:
            waiting.setdefault(task.after, []).append(task)
    source_outcomes: dict[str, dict[str, Any]] = {}
    deaths: Counter = Counter()
    in_flight: dict[Future, Task] = {}
    pool: ProcessPoolExecutor | None = None

    def deliver(task: Task, outcome: dict[str, Any]) -> None:
        sink.deliver(task, outcome)
        if task.is_source:
            source_outcomes[task.name] = outcome
            ready.extend(waiting.pop(task.name, []))

    completed = False
    restore_sigterm = _exit_on_sigterm()
    try:
        while ready or in_flight:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=prepare_worker,
                                           initargs=(threads, environ, os.getpid()))
            while ready and len(in_flight) < workers:
                task = ready.popleft()
                source = source_outcomes.get(task.after) if task.after else None
                if task.is_source:
                    future = pool.submit(run_source_task, task.cell, threads, environ)
                elif source is not None and source["status"] == "failed":
                    deliver(task, run_task(task.cell, source=source))  # fails at once, runs nothing
                    continue
                else:
                    future = pool.submit(run_task, task.cell, threads, environ, source)
                in_flight[future] = task
            sink.show(sum(not t.is_source for t in in_flight.values()))
            if not in_flight:
                continue
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    broken = True
                    continue
                task = in_flight.pop(future)
                deliver(task, future.result() if error is None else _failed(blank_outcome(task.cell, task.kind), error))
            if not broken:
                continue
            # A worker died (killed, out of memory): the pool is broken and every
            # task still in flight is lost; results that came back before are kept.
            lost = []
            for future, task in in_flight.items():
                if future.done() and future.exception() is None:
                    deliver(task, future.result())
                else:
                    lost.append(task)
            in_flight.clear()
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
            for task in lost:
                deaths[task.name] += 1
                if deaths[task.name] >= allowed_failures:
                    message = f"its worker died {deaths[task.name]} times while running it"
                    deliver(task, _failed(blank_outcome(task.cell, task.kind), message))
                else:
                    log.warning("a worker died; %s goes back in the queue", task.cell.describe())
                    ready.appendleft(task)
        completed = True
    finally:
        restore_sigterm()
        if pool is not None:
            if not completed:  # interrupted: stop the workers' tasks too (they resume from checkpoints)
                # The pool's processes: no public way to reach them before Python 3.14's terminate_workers().
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
            pool.shutdown(wait=completed, cancel_futures=True)


def _exit_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise SystemExit in this process until the returned function is called.

    Python's default for SIGTERM ends the process at once, without running
    ``finally`` blocks, so a sweep killed by ``kill`` or a batch system would
    leave its pool's workers computing. Only the main thread may set a
    handler; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def local_cluster(workers: int = 2, threads_per_task: int = 1, environ: dict[str, str] | None = None) -> Any:
    """A Dask ``LocalCluster`` of ``workers`` processes on loopback, one task at a time each, no dashboard.

    Every worker process starts with ``threads_per_task`` in the OpenMP/BLAS
    thread variables and with ``environ`` set. Use as a context manager; its
    ``scheduler_address`` is a ``scheduler`` for :func:`run_sweep`.
    """
    from distributed import LocalCluster

    thread_variables = {name: str(threads_per_task) for name in _THREAD_VARIABLES}
    # No dashboard; the scheduler's small HTTP server (health, metrics) on a
    # free loopback port instead of 8787 on every interface.
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR,
                        env={**thread_variables, **(environ or {})})


def run_dask(tasks: Sequence[Task], scheduler: str, workers: int, threads: int, sink: Sink) -> int:
    """Run ``tasks`` on a Dask ``LocalCluster`` (``"dask-local"``) or the scheduler at an address.

    Returns the number of worker threads that ran them (``workers`` for a
    local cluster, the remote scheduler's own count otherwise).
    """
    from distributed import Client, as_completed

    environ = shared_environ()
    with contextlib.ExitStack() as stack:
        if scheduler == "dask-local":
            client = stack.enter_context(Client(stack.enter_context(local_cluster(workers, threads, environ))))
        else:
            client = stack.enter_context(Client(scheduler))
            workers = sum(client.nthreads().values())
        futures = {}
        by_name = {}
        for task in tasks:
            if task.is_source:
                future = client.submit(run_source_task, task.cell, threads, environ, key=task.name, pure=False)
            else:
                future = client.submit(run_task, task.cell, threads, environ, by_name.get(task.after),
                                       key=task.name, pure=False)
            by_name[task.name] = future
            futures[future.key] = task
        for future in as_completed(list(by_name.values())):
            task = futures[future.key]
            try:
                outcome = future.result()
            except Exception as error:  # the task itself died: its worker was lost too often, or its source's
                outcome = _failed(blank_outcome(task.cell, task.kind), error)
            sink.deliver(task, outcome)
            sink.show(sum(str(key).startswith("cell-")
                                 for keys in client.processing().values() for key in keys))
        return workers

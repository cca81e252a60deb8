"""Run an experiment grid on all local cores, or on a Dask cluster, resumably.

The paper's protocol is a grid: experiments x corpora x protocols x seeds x
folds, each cell an evolution of G generations.
:func:`mtl.experiments.grid_cells` expands a grid into
:class:`~mtl.cells.Cell` objects (the command is ``mtl sweep``, in
:mod:`mtl.cli`) and :func:`run_sweep` runs
them as independent tasks -- cells of any kind (:class:`mtl.cells.CellKind`:
the ablation's inner-fold runs are another), each computed by the runner of
its kind (:func:`mtl.runner.run`), on one of the schedulers of
:mod:`mtl.schedulers`:

* ``scheduler="inline"``: one cell after the other in this process (what a
  notebook or :func:`mtl.experiments.run_experiment` uses for a chapter's
  few cells);
* ``scheduler=None`` or ``"pool"`` (default): a local process pool over all cores;
* ``scheduler="dask-local"``: a Dask ``LocalCluster`` on loopback (no
  dashboard), the same code path as a real cluster;
* ``scheduler="tcp://host:8786"``: an existing Dask distributed scheduler. Its
  workers must see the same folders as the caller (a shared file system):
  tasks receive the caller's ``MTL_CACHE_DIR``, ``MTL_RESULTS_DIR`` and
  ``MTL_DATA_ROOT``.

Records land in ``results_dir()/runs/<experiment>/<cell key>.json``, where
:func:`mtl.results.load_records`, the notebooks and the book read them.

Why a sweep is safe to kill at any point:

* A task is pure: all its inputs are in the cell, its only output is the
  cell's record, written atomically by :func:`mtl.runner.run`.
* Cells whose record exists and passes its checks are not submitted; a task
  checks again once it holds the cell's lock. A damaged record (truncated,
  edited: :mod:`mtl.records`) is reported, set aside and recomputed. A cell interrupted mid-evolution resumes from its
  checkpoint. So a rerun finishes the grid with nothing lost and nothing run
  twice.
* A lock file per cell key (``cache_dir()/locks``) stops two workers computing
  the same cell at once -- a lost worker's task that Dask resubmits while the
  original still runs, or two sweeps over overlapping grids. The operating
  system releases the lock when its holder dies.
* A worker that dies takes its task with it: Dask resubmits it elsewhere, the
  pool restarts; a cell that was on a dying worker ``allowed_failures`` times
  is reported as failed instead of retried forever.

Source models: cells of a transfer or fine-tuning run share one source model
per source key. Each is trained by its own task first; the cells that need it
are released when it is ready, so workers never queue on the same training.

Progress: a bar over the cells left to run shows how many are done, running
and failed, and the time left; a failed cell prints its error and the others
go on. :class:`SweepReport` keeps every outcome (status, error, timings,
worker, peak memory).

Threads: every task runs with ``threads_per_task`` threads for torch, BLAS and
OpenMP together (default 1, so records do not depend on the worker count), and
at most ``workers`` tasks run at once: ``workers x threads_per_task`` never
exceeds the cores unless asked for.

Features: before any task starts, :func:`prepare_features` builds the
feature cache of every corpus copy the grid reads, in the calling process
with all cores (tasks would otherwise each start an extraction pool of their
own). Tasks then open the cache memory-mapped (:mod:`mtl.features.cache`), so
the operating system shares its pages between workers; the per-task copies
are the selected classes (when not one contiguous run) and the standardised
folds. Each outcome carries its worker's peak resident set size.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from mtl import schedulers
from mtl.datasets import load_dataset
from mtl.errors import ConfigError, MtlError
from mtl.features.cache import feature_params
from mtl.io import stable_hash
from mtl.records import read_record, reuse_stored, usable_record
from mtl.schedulers import Task

if TYPE_CHECKING:
    from mtl.cells import CellKind

log = logging.getLogger(__name__)

__all__ = ["prepare_features", "plan_workers", "run_sweep", "computed_records", "SweepReport", "SCHEDULERS"]

ALLOWED_FAILURES = 3
"""Times a task may be on a worker that dies before it is reported as failed (Dask's default too)."""

SCHEDULERS = ("inline", "pool", "dask-local")
"""Named schedulers (:mod:`mtl.schedulers`); a Dask address (``tcp://host:8786``) is the other choice."""


def prepare_features(cells: Sequence[CellKind], n_jobs: int | None = None, progress: bool = False) -> None:
    """Generate (synthetic) corpora and build the feature caches the cells read (their ``datasets``), once each.

    Parameters
    ----------
    cells : sequence of cells (any :class:`~mtl.cells.CellKind`)
    n_jobs : int or None, default None
        Extraction processes (None: every core).
    progress : bool, default False
        Show the extraction progress bar of each corpus.

    A corpus that cannot be loaded is logged and left to its cells, which
    then fail with the same error while the others go on.
    """
    seen = set()
    for cell in cells:
        for corpus, modality, kind, config in cell.datasets:
            wanted = (corpus, modality, kind, config.synthetic_size, stable_hash(feature_params(config, [modality])))
            if wanted in seen:
                continue
            seen.add(wanted)
            try:
                load_dataset(corpus, modality, config, data=kind, progress=progress, n_jobs=n_jobs)
            except Exception as error:  # reported by every cell that needs this corpus
                log.warning("features of %s (%s, %s) could not be prepared: %s", corpus, modality, kind, error)


# ---------------------------------------------------------------------------
# the report and the progress view
# ---------------------------------------------------------------------------
@dataclass
class SweepReport:
    """What a sweep did: one outcome per cell (in the order they finished) and per source model."""

    outcomes: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    threads_per_task: int = 1
    scheduler: str = "pool"

    @property
    def counts(self) -> Counter:
        """Cells per status (``done``, ``reused``, ``skipped``, ``failed``)."""
        return Counter(o["status"] for o in self.outcomes)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [o for o in self.outcomes if o["status"] == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def peak_rss_mb(self) -> dict[int, float]:
        """Peak resident set size of every worker process that ran a task, MB (by pid)."""
        peaks: dict[int, float] = {}
        for outcome in (*self.outcomes, *self.sources):
            if "pid" in outcome:
                peaks[outcome["pid"]] = max(peaks.get(outcome["pid"], 0.0), outcome["peak_rss_mb"])
        return peaks

    def to_frame(self) -> pd.DataFrame:
        columns = ["task", "describe", "status", "seconds", "cpu_seconds", "error", "pid", "peak_rss_mb", "cell",
                   "experiment"]
        return pd.DataFrame([{c: o.get(c) for c in columns} for o in (*self.sources, *self.outcomes)],
                            columns=columns)

    def summary(self) -> str:
        counts = self.counts
        peaks = self.peak_rss_mb
        lines = [f"sweep on {self.scheduler}: {len(self.outcomes)} cells in {self.seconds:.1f} s "
                 f"({self.workers} workers x {self.threads_per_task} threads): {counts['done']} run, "
                 f"{counts['reused']} reused, {counts['skipped']} already done, {counts['failed']} failed"]
        if peaks:
            lines.append(f"  peak RSS per worker: {max(peaks.values()):.0f} MB at most ({len(peaks)} processes)")
        for outcome in self.failed:
            lines.append(f"  FAILED {outcome['describe']}: {outcome['error']}")
        return "\n".join(lines)


class _Progress:
    """A bar over the cells left to run: done, running, failed, and time left (tqdm's estimate)."""

    def __init__(self, total: int, already: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=f"sweep ({already} already done)" if already else "sweep", unit="cell",
                        disable=not enabled, dynamic_ncols=True)
        self.counts: Counter = Counter()
        self.running = 0

    def finished(self, outcome: dict[str, Any]) -> None:
        self.counts[outcome["status"]] += 1
        self.bar.update(1)
        if outcome["status"] == "failed" and not self.bar.disable:
            self.bar.write(f"FAILED {outcome['describe']}: {outcome['error']}")
        self.show()

    def show(self, running: int | None = None) -> None:
        self.running = self.running if running is None else running
        self.bar.set_postfix(done=self.counts["done"] + self.counts["reused"] + self.counts["skipped"],
                             running=self.running, failed=self.counts["failed"])

    def close(self) -> None:
        self.bar.close()


# ---------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _threads(threads_per_task: int | None) -> int:
    if threads_per_task is not None and threads_per_task < 1:
        raise ConfigError(f"threads_per_task must be >= 1, got {threads_per_task}")
    return threads_per_task or 1


def plan_workers(workers: int | None, threads_per_task: int | None, cores: int | None = None) -> tuple[int, int]:
    """``(workers, threads_per_task)``: threads default 1, workers default ``cores // threads``."""
    cores = cores or _cores()
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    threads = _threads(threads_per_task)
    workers = workers or max(1, cores // threads)
    if workers * threads > cores:
        warnings.warn(f"{workers} workers x {threads} threads per task oversubscribe the {cores} cores",
                      RuntimeWarning, stacklevel=3)
    return workers, threads


def run_sweep(cells: Sequence[CellKind], scheduler: str | None = None, workers: int | None = None,
              threads_per_task: int | None = None, progress: bool = True,
              allowed_failures: int = ALLOWED_FAILURES) -> SweepReport:
    """Run every cell whose record is missing or unusable; return a :class:`SweepReport`.

    A record counts when it reads and passes :func:`mtl.records.validate_record`
    (its fields, its digest); an unusable one is reported naming the file, set
    aside as ``<key>.json.invalid`` and its cell computed again.

    Parameters
    ----------
    cells : sequence of cells of any registered kind (:class:`mtl.cells.CellKind`)
        From :func:`grid_cells` or :func:`mtl.experiments.experiment_cells`, or
        of another kind (the ablation's inner-fold runs).
    scheduler : None, "inline", "pool", "dask-local" or a Dask scheduler address, default None
        Where tasks run (see the module docstring); None is the local process
        pool. ``"inline"`` computes the cells one after the other in this
        process, with its threads as they are unless ``threads_per_task`` is
        given, and an error propagates instead of becoming a failed outcome.
    workers : int or None, default None
        Worker processes for the pool and ``dask-local`` (never more than the
        cells to run); default ``cores // threads_per_task``. Ignored for a
        remote scheduler, whose workers are its own.
    threads_per_task : int or None, default None
        Threads per task for torch + BLAS + OpenMP together; default 1.
    progress : bool, default True
        Show a progress bar: cells done, running, failed, and time left.
    allowed_failures : int, default 3
        Times a task may be on a worker that dies before it counts as failed
        (the pool's setting; a Dask scheduler uses its own
        ``distributed.scheduler.allowed-failures``).
    """
    scheduler = scheduler or "pool"
    if scheduler not in SCHEDULERS and "://" not in scheduler:
        raise ConfigError(f"scheduler must be one of {', '.join(SCHEDULERS)} or a Dask address such as "
                          f"tcp://host:8786, got {scheduler!r}")
    if scheduler == "inline":
        workers, threads = 1, threads_per_task or 0  # 0: this process's threads, left as they are
    elif scheduler in SCHEDULERS:
        workers, threads = plan_workers(workers, threads_per_task)
    else:
        workers, threads = 1, _threads(threads_per_task)
    start = time.perf_counter()
    # Done: a record that reads and passes its checks; a damaged one is set aside and its cell run again.
    done = {c.key for c in cells if usable_record(c.record_path, discard=True) is not None}
    # The same computation stored for another experiment or committed to the repository is copied, not run.
    reused = {c.key for c in cells if c.key not in done and reuse_stored(c) is not None}
    todo = [c for c in cells if c.key not in done | reused]
    workers = max(1, min(workers, len(todo)))
    if scheduler != "inline":  # inline, each cell loads its own features (fewer files, no process pool)
        prepare_features(todo, progress=progress)
    report = SweepReport(workers=workers, threads_per_task=threads, scheduler=scheduler)
    report.outcomes.extend({**schedulers.blank_outcome(c), "status": "skipped" if c.key in done else "reused",
                            "seconds": 0.0} for c in cells if c.key in done | reused)
    bar = _Progress(len(todo), len(cells) - len(todo), progress)
    sink, tasks = _ReportSink(report, bar), schedulers.plan_tasks(todo)
    try:
        if not tasks:
            pass
        elif scheduler == "inline":
            schedulers.run_inline(tasks, sink, threads)
        elif scheduler == "pool":
            schedulers.run_pool(tasks, workers, threads, allowed_failures, sink)
        else:
            report.workers = schedulers.run_dask(tasks, scheduler, workers, threads, sink)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report


def computed_records(cells: Sequence[CellKind], scheduler: str | None = None, progress: bool = False,
                     workers: int = 1, **options: Any) -> list[dict[str, Any]]:
    """The records of ``cells``, in cell order: computed by :func:`run_sweep` where missing.

    The way a notebook or :func:`mtl.experiments.run_experiment` computes a
    few cells. ``scheduler=None`` picks by ``workers`` (a chapter passes its
    ``Config.workers``), capped at the machine's cores: one worker is
    ``"inline"`` (this process; an error propagates), more a process pool.
    With a scheduler other than inline a failed cell raises
    :class:`~mtl.errors.MtlError` listing every failure once the others are
    done. ``options`` go to :func:`run_sweep` (``threads_per_task``).
    """
    workers = max(1, min(workers, _cores()))
    scheduler = scheduler or ("inline" if workers == 1 else "pool")
    options["workers"] = workers
    report = run_sweep(cells, scheduler=scheduler, progress=progress, **options)
    if not report.ok:
        raise MtlError(f"{len(report.failed)} of {len(report.outcomes)} cells failed:\n"
                       + "\n".join(f"  {o['describe']}: {o['error']}" for o in report.failed))
    return [read_record(cell.record_path) for cell in cells]


@dataclass
class _ReportSink:
    """The sweep's side of a scheduler (:class:`mtl.schedulers.Sink`): outcomes to the report and the bar."""

    report: SweepReport
    bar: _Progress

    def deliver(self, task: Task, outcome: dict[str, Any]) -> None:
        if task.is_source:
            self.report.sources.append(outcome)
            if outcome["status"] == "failed" and not self.bar.bar.disable:
                self.bar.bar.write(f"FAILED source model of {task.cell.describe()}: {outcome['error']}")
        else:
            self.report.outcomes.append(outcome)
            self.bar.finished(outcome)

    def show(self, running: int) -> None:
        self.bar.show(running=running)

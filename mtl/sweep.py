"""Run an experiment grid on all local cores, or on a Dask cluster, resumably.

The paper's protocol is a grid: experiments x corpora x protocols x seeds x
folds, each cell an evolution of G generations. :func:`grid_cells` expands a
grid into :class:`~mtl.cells.Cell` objects and :func:`run_sweep` runs
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
* Cells whose record exists are not submitted; a task checks again once it
  holds the cell's lock. A cell interrupted mid-evolution resumes from its
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

import argparse
import logging
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mtl.config import (DATA_MODES, METHODS, MODALITIES, PROFILES, PROTOCOLS, Config, canonical_names, get_profile,
                        parse_value)
from mtl.errors import ConfigError, MtlError
from mtl.paths import results_dir

# The cells, the runner and the experiments (and with them pandas, torch and
# scikit-learn) are imported where they are used, so that building the `mtl`
# command line stays fast.
if TYPE_CHECKING:
    import pandas as pd

    from mtl.cells import Cell, CellKind, RunSpec
    from mtl.schedulers import Task

log = logging.getLogger(__name__)

__all__ = ["grid_cells", "cells_table", "prepare_features", "plan_workers", "run_sweep", "computed_records",
           "SweepReport",
           "SCHEDULERS", "add_sweep_parser", "cli_sweep", "main"]

ALLOWED_FAILURES = 3
"""Times a task may be on a worker that dies before it is reported as failed (Dask's default too)."""

SCHEDULERS = ("inline", "pool", "dask-local")
"""Named schedulers (:mod:`mtl.schedulers`); a Dask address (``tcp://host:8786``) is the other choice."""


# ---------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------
def grid_cells(experiments: Sequence[str], profile: str = "default", protocols: Sequence[str] | None = None,
               seeds: Iterable[int] = (0,), folds: Iterable[int] | None = None, data: str | None = None,
               overrides: dict[str, Any] | None = None, config: Config | None = None,
               corpora: Sequence[str | RunSpec] | None = None, methods: Sequence[str] | None = None,
               modality: str | None = None) -> list[Cell]:
    """Every cell of a grid, validated before anything runs; duplicates removed.

    Parameters
    ----------
    experiments : sequence of str
        Experiment ids from :data:`mtl.experiments.EXPERIMENTS`, or custom ids
        (letters, digits, ``_-.``) that then need ``methods`` and ``corpora``.
    profile : str, default "default"
        Configuration profile (``smoke``, ``default``, ``paper``).
    protocols : sequence of str or None, default None
        Evaluation protocols; None uses each experiment's own.
    seeds : iterable of int, default (0,)
        Seeds; each seed is a complete repetition (folds, weights, genotypes).
    folds : iterable of int or None, default None
        Fold indices to run; None runs every fold.
    data : {"auto", "real", "synthetic"} or None, default None
        Which copy of each corpus; None uses each experiment's own.
    overrides : dict or None
        Config fields replaced on top of the profile (e.g. ``{"generations": 50}``).
    config : Config or None
        A ready configuration; replaces ``profile`` and ``overrides``.
    corpora : sequence of str or RunSpec, optional
        Keep only runs on these targets (``"savee"``) or source->target pairs
        (``"enterface->savee"``); for a custom experiment, the runs to make.
    methods : sequence of str, optional
        Keep only these methods (``scratch``, ``finetune``, ``transfer``); for
        a custom experiment, the methods to run on every corpus spec.
    modality : {"audio", "video"} or None
        Modality of a custom experiment (default audio); registered
        experiments keep their own unless this is given.
    """
    from mtl.cells import RunSpec, parse_run_spec
    from mtl.experiments import EXPERIMENTS, experiment_cells

    if not experiments:
        raise ConfigError("the grid names no experiment; choose from " + ", ".join(EXPERIMENTS))
    specs = [s if isinstance(s, RunSpec) else parse_run_spec(s) for s in corpora or ()]
    config = config or get_profile(profile, **(overrides or {}))
    seeds = [int(s) for s in seeds]
    folds = None if folds is None else [int(f) for f in folds]
    common = dict(modality=modality, config=config, protocols=protocols, seeds=seeds, folds=folds, data=data)
    cells: dict[tuple[str, str], Cell] = {}
    for experiment in experiments:
        if experiment in EXPERIMENTS:
            found = [c for c in experiment_cells(experiment, **common)
                     if (not methods or c.method in methods) and (not specs or any(s.matches(c) for s in specs))]
            if not found:
                runs = "; ".join(map(str, EXPERIMENTS[experiment].runs))
                wanted = [f"method in {list(methods)}"] if methods else []
                wanted += [f"corpora {', '.join(map(str, specs))}"] if specs else []
                raise ConfigError(f"experiment {experiment!r} has no run with {' and '.join(wanted)}; its runs: {runs}")
        else:
            if not methods or not specs:
                raise ConfigError(f"{experiment!r} is not a registered experiment ({', '.join(EXPERIMENTS)}); "
                                  "a custom one needs methods and corpora (e.g. 'enterface->savee')")
            found = [c for method in methods for spec in specs
                     for c in experiment_cells(experiment, method, spec.target, spec.sources, **common)]
        for cell in found:
            cells.setdefault((cell.experiment, cell.key), cell)
    return list(cells.values())


def cells_table(cells: Sequence[Cell]) -> pd.DataFrame:
    """A grid as a table, one row per cell, with whether its record exists."""
    import pandas as pd

    return pd.DataFrame([{"experiment": c.experiment, "method": c.method,
                          "sources": "+".join(c.sources) or "-", "target": c.target, "modality": c.modality,
                          "protocol": c.protocol, "seed": c.seed, "fold": c.fold,
                          "data": ",".join(sorted({kind for _, kind in c.data})), "done": c.record_path.is_file(),
                          "key": c.key} for c in cells])


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
    from mtl.datasets import load_dataset
    from mtl.features.cache import feature_params
    from mtl.io import stable_hash

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
# tasks (run in a worker process)
# ---------------------------------------------------------------------------
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
        import pandas as pd

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
    """Run every cell whose record is missing; return a :class:`SweepReport`.

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
    from mtl import schedulers

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
    todo = [c for c in cells if not c.record_path.is_file()]
    workers = max(1, min(workers, len(todo)))
    if scheduler != "inline":  # inline, each cell loads its own features (fewer files, no process pool)
        prepare_features(todo, progress=progress)
    report = SweepReport(workers=workers, threads_per_task=threads, scheduler=scheduler)
    report.outcomes.extend({**schedulers.blank_outcome(c), "status": "skipped", "seconds": 0.0}
                           for c in cells if c.record_path.is_file())
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


def computed_records(cells: Sequence[CellKind], scheduler: str = "inline", progress: bool = False,
                     **options: Any) -> list[dict[str, Any]]:
    """The records of ``cells``, in cell order: computed by :func:`run_sweep` where missing.

    The way a notebook or :func:`mtl.experiments.run_experiment` computes a
    few cells: ``scheduler="inline"`` by default (this process; an error
    propagates). With another scheduler a failed cell raises
    :class:`~mtl.errors.MtlError` listing every failure once the others are done.
    ``options`` go to :func:`run_sweep` (``workers``, ``threads_per_task``).
    """
    from mtl.records import read_record

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


# ---------------------------------------------------------------------------
# command line: `mtl sweep`
# ---------------------------------------------------------------------------
def add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` command to an ``argparse`` sub-parser set; its handler is :func:`cli_sweep`."""
    sweep = subparsers.add_parser(
        "sweep", help="run an experiment grid in parallel (all cores, or a Dask cluster), resumably",
        description="Run every cell of a grid (experiments x corpora x protocols x seeds x folds) as an "
                    "independent task, writing one record per cell to results_dir()/runs. Cells already done "
                    "are skipped, so rerunning after an interruption finishes the grid.",
        epilog="Example: mtl sweep --experiments table4_speech_baselines --profile smoke --data synthetic "
               "--seeds 0 1 2 --scheduler dask-local")
    sweep.add_argument("--experiments", nargs="+", required=True, metavar="ID",
                       help="experiment ids (`mtl list`), or custom ids with --methods and --corpora")
    sweep.add_argument("--corpora", nargs="+", metavar="SPEC",
                       help="only these targets ('savee') or runs ('enterface+savee->emodb')")
    sweep.add_argument("--methods", nargs="+", choices=METHODS,
                       help="only these methods")
    sweep.add_argument("--modality", choices=MODALITIES, help="modality of a custom experiment")
    sweep.add_argument("--profile", choices=PROFILES, default="default",
                       help="configuration profile (default: %(default)s)")
    sweep.add_argument("--protocols", nargs="+", choices=PROTOCOLS, help="default: each experiment's own")
    sweep.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED", help="default: 0")
    sweep.add_argument("--folds", nargs="+", type=int, metavar="FOLD", help="fold indices (default: every fold)")
    sweep.add_argument("--data", choices=DATA_MODES, help="which copy of the corpora (default: each experiment's)")
    sweep.add_argument("--scheduler", default="pool", metavar="WHERE",
                       help="'pool' (local processes, default), 'inline' (this process, one cell after the other), "
                            "'dask-local' (a Dask LocalCluster) or a Dask scheduler address such as "
                            "tcp://10.0.0.1:8786")
    sweep.add_argument("--workers", type=int, help="worker processes (default: cores // threads per task)")
    sweep.add_argument("--threads-per-task", type=int, help="torch + BLAS + OpenMP threads per task (default: 1)")
    sweep.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="a Config field and its value (YAML: 50, 0.01, None), on top of the profile; repeatable")
    sweep.add_argument("--dry-run", action="store_true", help="list the cells and whether each is done; run nothing")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=cli_sweep)
    return sweep


def cli_sweep(args: argparse.Namespace) -> int:
    """``mtl sweep``: 0 when every cell has its record, 1 when some failed (bad input raises ConfigError)."""
    overrides = canonical_names({name: parse_value(value) for name, value in args.parameter or []})
    cells = grid_cells(args.experiments, profile=args.profile, protocols=args.protocols, seeds=args.seeds,
                       folds=args.folds, data=args.data, overrides=overrides, corpora=args.corpora,
                       methods=args.methods, modality=args.modality)
    if args.dry_run:
        table = cells_table(cells)
        print(table.drop(columns="key").to_string(index=False))
        print(f"{len(table)} cells, {int(table['done'].sum())} done; records in {results_dir() / 'runs'}")
        return 0
    report = run_sweep(cells, scheduler=args.scheduler, workers=args.workers,
                       threads_per_task=args.threads_per_task, progress=not args.no_progress)
    print(report.summary())
    print(f"records in {results_dir() / 'runs'}")
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mtl.sweep ...``: the ``mtl sweep`` command on its own."""
    parser = argparse.ArgumentParser(prog="mtl")
    add_sweep_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sweep", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.handler(args)
    except MtlError as error:
        parser.exit(2, f"mtl sweep: error: {error}\n")


if __name__ == "__main__":
    raise SystemExit(main())

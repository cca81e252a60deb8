"""Inner-validation runs of the nested selection, and the ablation's own way to run cells.

An :class:`InnerCell` is an outer ablation cell trained on part of its
training fold and scored on another part; :func:`run_inner_cell` computes one
and writes its record. :func:`run_cells` runs a list of ablation cells and
inner cells in a process pool, a source model trained once under a lock.

This module is self-contained on purpose: the next step moves inner runs onto
the common runner (:mod:`mtl.sweep`) and the common record builder, and this
module then goes.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl.ablation.grid import NESTED
from mtl.ablation.sizes import feature_key_config, where
from mtl.config import Config
from mtl.errors import ConfigError
from mtl.io import file_lock, read_json, stable_hash, write_json
from mtl.paths import cache_dir, results_dir

__all__ = ["InnerCell", "run_inner_cell", "run_cells"]


@dataclass(frozen=True)
class InnerCell:
    """One inner-validation run: an outer :class:`~mtl.experiments.Cell` trained on part of its training fold.

    The outer cell's training part is split again into ``n_inner`` folds by
    the outer cell's protocol (random over segments, grouped by utterance, or
    by speaker) with the outer cell's seed; this run trains on the other inner
    folds and scores inner fold ``inner_fold``. Nothing of the outer test fold
    is read. The record, written atomically to
    ``results_dir()/runs/ablation-nested/<key>.json``, has the layout of
    :func:`mtl.experiments.run_cell`'s with ``stage="inner"``, ``inner_fold``,
    ``n_inner_folds`` and ``outer_cell_key``; its ``fold`` is the outer fold and
    its metrics are on the inner validation fold.
    """

    outer: Any
    inner_fold: int
    n_inner: int
    experiment = NESTED  # a class attribute, not a field: every inner run belongs to this experiment

    def __post_init__(self) -> None:
        if self.n_inner < 2:
            raise ConfigError(f"n_inner (inner folds) must be >= 2, got {self.n_inner}")
        if not 0 <= self.inner_fold < self.n_inner:
            raise ConfigError(f"inner_fold must be in [0, {self.n_inner - 1}], got {self.inner_fold}")

    @property
    def key(self) -> str:
        return stable_hash({"stage": "inner", "outer": self.outer.key, "inner_fold": self.inner_fold,
                            "n_inner": self.n_inner})

    @property
    def record_path(self) -> Path:
        return results_dir() / "runs" / NESTED / f"{self.key}.json"

    def describe(self) -> str:
        outer = self.outer.describe().split(": ", 1)[-1]
        config = self.outer.config
        return (f"{NESTED}: {outer}, inner fold {self.inner_fold} of {self.n_inner} [{config.module_type}, "
                f"{config.training_budget}, G={config.generations}, lr={config.lr}]")

    def split(self) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray]:
        """``(inner train, inner validation, samples, y)``: positions into the target's samples."""
        return _inner_split(self.outer.target, self.outer.modality, self.outer.classes,
                            dict(self.outer.data)[self.outer.target], feature_key_config(self.outer.config),
                            self.outer.protocol, self.outer.seed, self.outer.fold, self.n_inner, self.inner_fold,
                            where())

    def run(self, progress: bool = False) -> dict[str, Any]:
        """Compute this run and write its record (return the stored record when it exists)."""
        return run_inner_cell(self, progress=progress)


def _delegate(name: str) -> property:
    return property(lambda self: getattr(self.outer, name), doc=f"The outer cell's ``{name}``.")


# What sweeps, cost estimates and tables read from a cell, taken from the outer cell.
for _name in ("method", "target", "sources", "modality", "classes", "source_classes", "protocol", "seed", "fold",
              "config", "data", "source_key", "source_training_config"):
    setattr(InnerCell, _name, _delegate(_name))


@functools.lru_cache(maxsize=16)
def _inner_split(target: str, modality: str, classes: tuple[str, ...], kind: str, config: Config, protocol: str,
                 seed: int, fold: int, n_inner: int, inner_fold: int, where: str
                 ) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray]:
    from mtl.evaluation import make_folds
    from mtl.experiments import class_indices, load_dataset

    features, _ = load_dataset(target, modality, config, classes, data=kind)
    samples = features.samples.reset_index(drop=True)
    y = class_indices(samples, classes)
    outer = make_folds(samples, y, protocol, config.folds, seed)
    if fold >= len(outer):
        raise ConfigError(f"fold {fold} does not exist: the {protocol} protocol gives {len(outer)} folds")
    outer_train = outer[fold][0]
    try:
        inner = make_folds(samples.iloc[outer_train].reset_index(drop=True), y[outer_train], protocol, n_inner, seed)
    except ConfigError as error:
        raise ConfigError(f"outer fold {fold} ({protocol} protocol): cannot build {n_inner} inner folds from its "
                          f"training part: {error}") from error
    if inner_fold >= len(inner):
        raise ConfigError(f"inner fold {inner_fold} does not exist: the training part of outer fold {fold} gives "
                          f"{len(inner)} inner folds ({protocol} protocol)")
    train, held_out = inner[inner_fold]
    return outer_train[train], outer_train[held_out], samples, y


def _lock(name: str):
    """An exclusive lock between processes (``cache_dir()/locks``), released by the system if the holder dies."""
    return file_lock(cache_dir() / "locks" / f"{name}.lock")


def run_inner_cell(cell: InnerCell, progress: bool = False) -> dict[str, Any]:
    """Compute an :class:`InnerCell` and write its record; return the stored record if it exists.

    As :func:`mtl.experiments.run_cell` but on the inner split: standardise on
    the inner training part, train (on top of the outer cell's cached source
    model for transfer), score the inner validation part at segment and
    utterance level. Resumes an interrupted evolution from its checkpoint
    under ``cache_dir()/checkpoints/<key>/``.
    """
    from mtl.evaluation import evaluate, recording_keys
    from mtl.experiments import SCHEMA_VERSION, _now, _remove_checkpoint, code_version, load_dataset, train_target

    if cell.record_path.is_file():
        return read_json(cell.record_path)
    outer = cell.outer
    train, held_out, samples, y = cell.split()
    features, provenance = load_dataset(outer.target, outer.modality, feature_key_config(outer.config),
                                        outer.classes, data=dict(outer.data)[outer.target])
    checkpoint = cache_dir() / "checkpoints" / cell.key / "target.pt"
    classifier, proba, seconds, source_info = train_target(outer, features, y, train, held_out, checkpoint, progress)
    metrics = evaluate(y[held_out], proba, recording_keys(samples.iloc[held_out]), outer.classes)
    curve = classifier.history_.to_frame()[["generation", "best_fitness", "val_accuracy", "elapsed"]]
    all_provenance = {outer.target: provenance, **(source_info["provenance"] if source_info else {})}
    record = {
        "schema": SCHEMA_VERSION, "cell_key": cell.key, "outer_cell_key": outer.key, "stage": "inner",
        "experiment": NESTED, "method": outer.method, "sources": list(outer.sources), "target": outer.target,
        "modality": outer.modality, "classes": list(outer.classes), "source_classes": list(outer.source_classes),
        "protocol": outer.protocol, "seed": outer.seed, "fold": outer.fold, "n_folds": outer.config.folds,
        "inner_fold": cell.inner_fold, "n_inner_folds": cell.n_inner,
        "config": outer.config.to_dict(),
        "config_differences": {k: list(v) for k, v in outer.config.differences_from_paper().items()},
        "data": {"kinds": dict(outer.data), "provenance": all_provenance},
        "code": code_version(), "n_train": int(len(train)), "n_test": int(len(held_out)),
        "test_speakers": sorted(map(str, samples["speaker"].iloc[held_out].unique())),
        "metrics": metrics,
        "learning_curve": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                           for row in curve.to_dict("records")],
        "source": None if source_info is None else {"key": source_info["key"], "cached": source_info["cached"]},
        "timings": {"target_seconds": seconds,
                    "source_seconds": source_info["seconds"] if source_info else None},
        "created": _now(),
    }
    write_json(cell.record_path, record)
    _remove_checkpoint(checkpoint.parent)
    return record


def _run_one(cell: Any, progress: bool = False) -> dict[str, Any]:
    """Run a Cell or InnerCell under its key's lock; an outcome dict, never raises."""
    from mtl.experiments import run_cell

    start = time.perf_counter()
    outcome = {"key": cell.key, "describe": cell.describe(), "experiment": cell.experiment}
    try:
        with _lock(f"cell-{cell.key}"):
            existed = cell.record_path.is_file()
            (cell.run(progress) if isinstance(cell, InnerCell) else run_cell(cell, progress=progress))
        outcome.update(status="skipped" if existed else "done", error=None)
    except Exception as error:  # one failed cell is reported, the others go on
        outcome.update(status="failed", error=f"{type(error).__name__}: {error}")
    outcome["seconds"] = time.perf_counter() - start
    return outcome


def _worker_init(environ: dict[str, str]) -> None:
    import os

    from mtl.sweep import limit_threads

    os.environ.update(environ)
    limit_threads(1)


def _source_first_order(cells: Sequence[Any]) -> list[Any]:
    """One cell per source model first, then the others in their order.

    The first cells train the source models side by side; a worker that
    later meets a cell of a source still training waits on its lock, so the
    sources should be done before the cells that need them come up. Among
    the rest the caller's order (its priorities) is kept.
    """
    first, seen = [], set()
    for cell in cells:
        if cell.source_key is not None and cell.source_key not in seen:
            seen.add(cell.source_key)
            first.append(cell)
    chosen = {id(cell) for cell in first}
    return first + [cell for cell in cells if id(cell) not in chosen]


def run_cells(cells: Sequence[Any], workers: int = 1, progress: bool = False) -> pd.DataFrame:
    """Run cells (:class:`~mtl.experiments.Cell` or :class:`InnerCell`) whose record is missing.

    ``workers`` > 1 uses that many one-thread processes. Cells of a transfer
    share one source model: it is trained by the first cell that needs it
    while the others wait for it (a lock), never twice. A failing cell is
    reported in the returned table (``status`` ``"failed"`` and ``error``) and
    the others go on; rerunning finishes what is missing.

    Returns one row per cell: ``key``, ``describe``, ``experiment``,
    ``status`` (``done``, ``skipped`` or ``failed``), ``error``, ``seconds``.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    todo = list(cells)
    if workers == 1 or len(todo) <= 1:
        iterator = todo
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(todo, desc="cells", unit="cell")
        return pd.DataFrame([_run_one(cell, progress=False) for cell in iterator])
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from mtl.paths import data_root

    environ = {"MTL_CACHE_DIR": str(cache_dir()), "MTL_RESULTS_DIR": str(results_dir()),
               "MTL_DATA_ROOT": str(data_root())}
    todo = _source_first_order(todo)
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(environ,)) as pool:
        return pd.DataFrame(list(pool.map(_run_one, todo)))


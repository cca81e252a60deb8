"""Inner-validation runs of the nested selection: a cell kind of their own.

An :class:`InnerCell` is an outer ablation cell trained on part of its
training fold and scored on another part. It implements
:class:`mtl.cells.CellKind` and :func:`run_inner_cell` is registered as its
runner (:func:`mtl.runner.register_kind`), so :func:`mtl.sweep.run_sweep`
runs inner cells as it runs any other -- in its pool or on Dask, each source
model trained once by a task of its own -- and a worker that unpickles an
inner cell imports this module and with it the runner. The record is the one
layout of :func:`mtl.records.build_record`, made for the outer cell with the
inner run's key and four fields of its own.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl.ablation.grid import NESTED
from mtl.ablation.sizes import feature_key_config, where
from mtl.cells import Cell, delegate_attributes
from mtl.errors import ConfigError
from mtl.evaluation import make_folds
from mtl.io import stable_hash
from mtl.paths import results_dir
from mtl.records import build_record, usable_record
from mtl.runner import Split, fit_split, outer_split, register_kind, store_record

__all__ = ["InnerCell", "run_inner_cell"]


@dataclass(frozen=True)
class InnerCell:
    """One inner-validation run: an outer :class:`~mtl.cells.Cell` trained on part of its training fold.

    The outer cell's training part is split again into ``n_inner`` folds by
    the outer cell's protocol (random over segments, grouped by utterance, or
    by speaker) with the outer cell's seed; this run trains on the other inner
    folds and scores inner fold ``inner_fold``. Nothing of the outer test fold
    is read. The record, at ``results_dir()/runs/<experiment>/<key>.json`` (default ``ablation-nested``),
    is :func:`mtl.records.build_record`'s for the outer cell plus
    ``stage="inner"``, ``inner_fold``, ``n_inner_folds`` and
    ``outer_cell_key``; its ``fold`` is the outer fold and its metrics are on
    the inner validation fold.

    Everything else a sweep, a cost estimate or a table reads (``method``,
    ``config``, ``source_key``, ``datasets``, ...) is the outer cell's.
    """

    outer: Cell
    inner_fold: int
    n_inner: int
    experiment: str = NESTED
    """Experiment of the record (its folder under ``results_dir()/runs``); not part of the key."""

    def __post_init__(self) -> None:
        if self.n_inner < 2:
            raise ConfigError(f"n_inner (inner folds) must be >= 2, got {self.n_inner}")
        if not 0 <= self.inner_fold < self.n_inner:
            raise ConfigError(f"inner_fold must be in [0, {self.n_inner - 1}], got {self.inner_fold}")

    @property
    def key(self) -> str:
        """Hash of the outer cell's key and the inner fold (the layout of the committed records' keys)."""
        return stable_hash({"stage": "inner", "outer": self.outer.key, "inner_fold": self.inner_fold,
                            "n_inner": self.n_inner})

    @property
    def record_path(self) -> Path:
        return results_dir() / "runs" / self.experiment / f"{self.key}.json"

    def describe(self) -> str:
        outer = self.outer.describe().split(": ", 1)[-1]
        config = self.outer.config
        return (f"{self.experiment}: {outer}, inner fold {self.inner_fold} of {self.n_inner} [{config.module_type}, "
                f"{config.training_budget}, G={config.generations}, lr={config.lr}]")

    def split(self) -> Split:
        """The inner split: ``train`` and ``held_out`` are positions into the outer cell's target samples.

        Memoised per data and folds, so candidates that differ only in how
        they train share one split.
        """
        data_cell = dataclasses.replace(self.outer, config=feature_key_config(self.outer.config), source_config=None)
        return _inner_split(data_cell, self.n_inner, self.inner_fold, where())


delegate_attributes(InnerCell, "outer", ("method", "target", "sources", "modality", "classes", "source_classes",
                                         "protocol", "seed", "fold", "config", "data", "datasets", "source_key",
                                         "source_training_config"))


@functools.lru_cache(maxsize=16)
def _inner_split(outer: Cell, n_inner: int, inner_fold: int, where: str) -> Split:
    """Inner fold ``inner_fold`` of ``n_inner`` over the training part of ``outer``'s fold (``where``: cache key)."""
    part = outer_split(outer)
    try:
        inner = make_folds(part.samples.iloc[part.train].reset_index(drop=True), part.y[part.train],
                           outer.protocol, n_inner, outer.seed)
    except ConfigError as error:
        raise ConfigError(f"outer fold {outer.fold} ({outer.protocol} protocol): cannot build {n_inner} inner "
                          f"folds from its training part: {error}") from error
    if inner_fold >= len(inner):
        raise ConfigError(f"inner fold {inner_fold} does not exist: the training part of outer fold {outer.fold} "
                          f"gives {len(inner)} inner folds ({outer.protocol} protocol)")
    train, held_out = inner[inner_fold]
    return dataclasses.replace(part, train=part.train[train], held_out=part.train[held_out])


def run_inner_cell(cell: InnerCell, progress: bool = False) -> dict[str, Any]:
    """Compute an :class:`InnerCell` and write its record; return the stored record if it exists.

    As :func:`mtl.runner.run_cell` but on the inner split
    (:meth:`InnerCell.split`): :func:`mtl.runner.fit_split` standardises on the
    inner training part, trains (on top of the outer cell's cached source
    model for transfer) and scores the inner validation part at segment and
    utterance level; an interrupted evolution resumes from its checkpoint
    under ``cache_dir()/checkpoints/<key>/``.
    """
    existing = usable_record(cell.record_path, discard=True)  # a damaged one is set aside and recomputed
    if existing is not None:
        return existing
    result = fit_split(cell.outer, cell.split(), cell.key, progress)
    record = build_record(cell.outer, result, key=cell.key, experiment=cell.experiment,
                          extra={"stage": "inner", "inner_fold": cell.inner_fold, "n_inner_folds": cell.n_inner,
                                 "outer_cell_key": cell.outer.key})
    return store_record(cell.record_path, record, cell.key)


register_kind(InnerCell, run_inner_cell)

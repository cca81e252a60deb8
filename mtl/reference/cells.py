"""Reference methods as a cell kind: the same folds as a PathNet cell, the same record.

A :class:`ReferenceCell` is a PathNet scratch :class:`~mtl.cells.Cell`
(target, classes, protocol, seed, fold, configuration) run by another
method, one of :data:`REFERENCE_METHODS`:

``svm``, ``logreg``
    Linear models on utterance-level functionals (:mod:`mtl.reference.linear`).
``knn1``
    1-nearest-neighbour on the segments (:mod:`mtl.reference.neighbours`).
``cnn``
    A compact CNN on the segments (:mod:`mtl.reference.cnn`).

It implements :class:`mtl.cells.CellKind` and :func:`run_reference_cell` is
registered as its runner, so ``mtl sweep --reference svm knn1 ...`` (and
:func:`mtl.sweep.run_sweep`) runs it like any other cell, resumably. Its
split is the wrapped cell's (:func:`mtl.runner.outer_split`): the PathNet
cell and the reference method see the same training and held-out
recordings. Its record is :func:`mtl.records.build_record`'s with
``method`` the reference name, ``learning_curve`` and ``pathways`` empty,
and three fields of its own: ``stage="reference"``, ``outer_cell_key`` (the
wrapped cell's key) and ``reference`` (what the method chose: C and the
inner scores, epochs, neighbour statistics).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl.cells import Cell, delegate_attributes
from mtl.errors import ConfigError
from mtl.evaluation import evaluate, recording_keys
from mtl.io import stable_hash
from mtl.pathnet.checks import describe_device, torch_device
from mtl.paths import results_dir
from mtl.records import RunResult, build_record, reuse_stored
from mtl.reference.base import ReferenceFit
from mtl.reference.cnn import fit_cnn
from mtl.reference.linear import fit_linear
from mtl.reference.neighbours import fit_nearest
from mtl.runner import Split, outer_split, register_kind, store_record

__all__ = ["REFERENCE_METHODS", "REFERENCE_VERSION", "ReferenceCell", "reference_cells", "run_reference_cell"]

REFERENCE_VERSION = 1
"""Hashed into every reference key: bumped when a method changes what it computes."""
REFERENCE_METHODS: dict[str, Any] = {
    "svm": functools.partial(fit_linear, "svm"),
    "logreg": functools.partial(fit_linear, "logreg"),
    "knn1": fit_nearest,
    "cnn": fit_cnn,
}
"""Reference name -> ``fit(split, config, fold, n_classes) -> ReferenceFit``."""
_LINEAR = ("svm", "logreg")


@dataclass(frozen=True)
class ReferenceCell:
    """Reference method ``reference`` on the folds of the scratch cell ``outer``.

    ``key`` hashes the reference name, :data:`REFERENCE_VERSION` and the
    outer cell's key; the record goes to
    ``results_dir()/runs/<outer.experiment>/<key>.json``. ``method`` is the
    reference name; everything else a sweep or a table reads (``target``,
    ``protocol``, ``seed``, ``fold``, ``config``, ``datasets``, ...) is the
    outer cell's.
    """

    outer: Cell
    reference: str

    def __post_init__(self) -> None:
        if self.reference not in REFERENCE_METHODS:
            raise ConfigError(f"unknown reference method {self.reference!r}; choose one of "
                              f"{', '.join(REFERENCE_METHODS)}")
        if self.outer.method != "scratch":
            raise ConfigError(f"a reference method runs on the folds of a scratch cell, got method "
                              f"{self.outer.method!r} ({self.outer.describe()})")
        if self.reference in _LINEAR and self.outer.modality != "audio":
            raise ConfigError(f"reference {self.reference!r} reads speech functionals; {self.outer.describe()} "
                              f"is {self.outer.modality}")

    @property
    def key(self) -> str:
        return stable_hash({"stage": "reference", "reference": self.reference, "version": REFERENCE_VERSION,
                            "outer": self.outer.key})

    @property
    def method(self) -> str:
        return self.reference

    @property
    def experiment(self) -> str:
        return self.outer.experiment

    @property
    def record_path(self) -> Path:
        return results_dir() / "runs" / self.experiment / f"{self.key}.json"

    @property
    def source_key(self) -> None:
        return None

    def describe(self) -> str:
        return f"{self.experiment}: reference {self.reference} on {self.outer.describe().split(': ', 1)[-1]}"


delegate_attributes(ReferenceCell, "outer", ("target", "sources", "modality", "classes", "source_classes",
                                            "protocol", "seed", "fold", "config", "data", "datasets"))


def reference_cells(cells: Any, references: Any) -> list[ReferenceCell]:
    """A :class:`ReferenceCell` per reference name for every scratch cell of ``cells`` (others are an error)."""
    cells, references = list(cells), list(references)
    if not references:
        raise ConfigError("no reference method named; choose from " + ", ".join(REFERENCE_METHODS))
    return [ReferenceCell(cell, name) for name in references for cell in cells]


def _result(cell: ReferenceCell, split: Split, fit: ReferenceFit, seconds: float) -> RunResult:
    scored = fit.scored
    return RunResult(
        metrics=evaluate(fit.y, fit.proba, recording_keys(scored), cell.classes),
        n_train=fit.n_train, n_test=len(fit.y), n_folds=split.n_folds, provenance=split.provenance,
        target_seconds=seconds,
        test_speakers=sorted(map(str, scored["speaker"].unique())) if "speaker" in scored else None,
        notes=(*split.notes, *fit.notes), device=describe_device(torch_device(cell.config)))


def run_reference_cell(cell: ReferenceCell, progress: bool = False) -> dict[str, Any]:
    """Compute a :class:`ReferenceCell` and write its record; return the stored record if it exists.

    The split is the outer cell's (:func:`mtl.runner.outer_split`); the
    method trains on its training rows, choosing its settings on inner folds
    of them only, and scores the held-out rows (:func:`mtl.evaluation.evaluate`,
    segment and utterance level). A record of the same key stored for another
    experiment or committed is copied (:func:`mtl.records.reuse_stored`).
    """
    existing = reuse_stored(cell)
    if existing is not None:
        return existing
    split = outer_split(cell.outer)
    start = time.perf_counter()
    fit = REFERENCE_METHODS[cell.reference](split, cell.config, cell.fold, len(cell.classes))
    result = _result(cell, split, fit, time.perf_counter() - start)
    record = build_record(cell, result, extra={"stage": "reference", "outer_cell_key": cell.outer.key,
                                               "reference": fit.details})
    return store_record(cell.record_path, record, cell.key)


register_kind(ReferenceCell, run_reference_cell)

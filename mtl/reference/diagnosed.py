"""PathNet cells whose records keep the genetic algorithm's diagnostics: a cell kind of their own.

A :class:`DiagnosedCell` is a PathNet :class:`~mtl.cells.Cell` (any method)
computed exactly as :func:`mtl.runner.run_cell` computes it -- same split,
same random streams, the same numbers -- whose record adds ``ga``:
:func:`mtl.pathnet.ga_diagnostics` of the target's evolution (the fraction
of tournaments decided by a tie, the first generation at training fitness
1.0, how much the genotypes change after it). Plain cells leave ``ga`` out
of their records, so that a committed record computed again is the
committed record, field for field; this kind is how a grid asks for them
(``mtl sweep --ga-diagnostics``). Its record is
:func:`mtl.records.build_record`'s for the wrapped cell with its own key
and ``stage="ga-diagnostics"``, ``outer_cell_key`` and ``ga``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl.cells import Cell, delegate_attributes
from mtl.io import stable_hash
from mtl.paths import results_dir
from mtl.records import build_record, usable_record
from mtl.runner import fit_split, outer_split, register_kind, store_record

__all__ = ["DiagnosedCell", "run_diagnosed_cell"]


@dataclass(frozen=True)
class DiagnosedCell:
    """The PathNet cell ``outer``, its record with the GA diagnostics (module docstring).

    ``key`` hashes the outer key; the record goes to
    ``results_dir()/runs/<outer.experiment>/<key>.json``; everything else
    (``method``, ``config``, ``source_key``, ``datasets``, ...) is the outer cell's.
    """

    outer: Cell

    @property
    def key(self) -> str:
        return stable_hash({"stage": "ga-diagnostics", "outer": self.outer.key})

    @property
    def record_path(self) -> Path:
        return results_dir() / "runs" / self.outer.experiment / f"{self.key}.json"

    def describe(self) -> str:
        return f"{self.outer.describe()} [GA diagnostics]"


delegate_attributes(DiagnosedCell, "outer", ("experiment", "method", "target", "sources", "modality", "classes",
                                            "source_classes", "protocol", "seed", "fold", "config", "data",
                                            "datasets", "source_key", "source_training_config"))


def run_diagnosed_cell(cell: DiagnosedCell, progress: bool = False) -> dict[str, Any]:
    """Compute the outer cell (:func:`mtl.runner.fit_split` on :func:`mtl.runner.outer_split`) and write its
    record with ``ga``; return the stored record if it exists.

    The outer cell's own record, when stored, is not reused: it lacks the
    diagnostics, which only a run gives.
    """
    existing = usable_record(cell.record_path, discard=True)
    if existing is not None:
        return existing
    result = fit_split(cell.outer, outer_split(cell.outer), cell.key, progress)
    record = build_record(cell.outer, result, key=cell.key,
                          extra={"stage": "ga-diagnostics", "outer_cell_key": cell.outer.key, "ga": result.ga})
    return store_record(cell.record_path, record, cell.key)


register_kind(DiagnosedCell, run_diagnosed_cell)

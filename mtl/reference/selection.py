"""PathNet's fitness and regulariser variants, one chosen per outer fold on inner folds: the chapter's selection.

The chapter "Where could 0.89 come from?" asks whether a PathNet variant
beyond the paper reaches the functionals baseline speaker-independently.
Picking the variant with the best test score would answer with a number
no user could reach, so :class:`VariantSelection` chooses one per outer
fold on inner folds built from that fold's training part only (grouped by
speaker for the speaker protocol), refits it on the whole training part and
scores the test fold once. It is :class:`mtl.ablation.nested.NestedSelection`
with three differences:

* the candidates are :data:`VARIANTS`: the paper's settings, a held-out
  fitness (``fitness_on="validation"``), weight decay and dropout on module
  outputs -- each a :class:`~mtl.config.Config` field off by default;
* the refit of a chosen variant is the PathNet cell of
  :data:`mtl.reference.analysis.PATHNET_EXPERIMENT` recorded with its GA
  diagnostics (:class:`~mtl.reference.diagnosed.DiagnosedCell`): the same
  record ``mtl sweep --experiments where089-pathnet --ga-diagnostics``
  writes, so a variant the grid computed is not computed again;
* the inner runs and the saved parameters go to
  ``results_dir()/runs/where089-nested/`` (:data:`INNER_EXPERIMENT`), apart
  from the ablation's.

:func:`saved_variant_selections` reads back every selection that was run,
from local runs and committed records (``results/real/where089-nested``).
``scripts/run_where089_selection.py`` runs one through
:func:`mtl.sweep.run_sweep` (resumable: finished cells are skipped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtl.ablation.grid import DEFAULT_SOURCES
from mtl.ablation.nested import NestedSelection
from mtl.io import read_json
from mtl.reference.analysis import PATHNET_EXPERIMENT
from mtl.reference.diagnosed import DiagnosedCell
from mtl.results import default_search_path

__all__ = ["INNER_EXPERIMENT", "VARIANTS", "FUNCTIONALS", "VariantSelection", "saved_variant_selections"]

INNER_EXPERIMENT = "where089-nested"
"""Experiment (folder under ``results_dir()/runs``) of the selection's inner runs and saved parameters."""

VARIANTS: list[dict[str, Any]] = [
    {},
    {"fitness_on": "validation"},
    {"weight_decay": 1e-4},
    {"weight_decay": 1e-3},
    {"dropout": 0.2},
    {"dropout": 0.5},
]
"""The candidates, in order of preference on a tie: the paper's settings first, then one change each."""

FUNCTIONALS: dict[str, Any] = {"input_kind": "functionals", "input_shape": [1, 1, 96],
                               "training_budget": "literal_epochs"}
"""Overrides of PathNet on the 96 utterance functionals, trained for T epochs of T steps (the chapter's rows)."""


class VariantSelection(NestedSelection):
    """Choose among :data:`VARIANTS` per outer fold on inner folds; refit and score as a diagnosed PathNet cell.

    Parameters
    ----------
    candidates : sequence of mappings, default :data:`VARIANTS`
        Config changes to choose among; ``{}`` is the paper's settings.
    profile : str, default "paper"
    protocol : {"paper", "utterance", "speaker"}, default "speaker"
        Grouping of the outer and the inner folds.
    method : str, default "scratch"
    sources : sequence of str, default ("ravdess",)
    seeds : iterable of int, default (0, 1, 2)
    outer_folds : iterable of int or None, default None (all)
    n_inner : int, default 3
        Inner folds of each outer training part (speaker protocol on
        EMO-DB: 8 training speakers, 2 or 3 per inner fold).
    data : str, default "real"
    metric : str, default "utt_uar"
        Inner score that decides (utterance UAR, mean probability).
    overrides : mapping, default :data:`FUNCTIONALS`
        Config fields of every candidate (``{}``: the paper's segments).
    experiment : str, default "where089-pathnet"
        Experiment of the refit cells.
    """

    inner_experiment = INNER_EXPERIMENT

    def __init__(self, candidates: Sequence[Mapping[str, Any]] = tuple(VARIANTS), profile: str = "paper",
                 protocol: str = "speaker", method: str = "scratch", sources: Sequence[str] = DEFAULT_SOURCES,
                 seeds: Iterable[int] = (0, 1, 2), outer_folds: Iterable[int] | None = None, n_inner: int | None = 3,
                 data: str = "real", metric: str = "utt_uar", overrides: Mapping[str, Any] | None = None,
                 experiment: str = PATHNET_EXPERIMENT):
        super().__init__(candidates, profile=profile, protocol=protocol, method=method, sources=sources, seeds=seeds,
                         outer_folds=outer_folds, n_inner=n_inner, data=data, metric=metric,
                         overrides=dict(FUNCTIONALS) if overrides is None else overrides, experiment=experiment)

    @staticmethod
    def _name(candidate: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in candidate.items()) or "the paper's settings"

    def refit_cell(self, candidate: int, seed: int, fold: int) -> DiagnosedCell:
        """The PathNet cell of the candidate on outer fold ``fold``, recorded with its GA diagnostics."""
        return DiagnosedCell(self.outer_cell(candidate, seed, fold))


def saved_variant_selections() -> list[VariantSelection]:
    """Every :class:`VariantSelection` that was run (saved parameters under ``where089-nested/selections``)."""
    found: dict[str, VariantSelection] = {}
    for folder in default_search_path():
        for path in sorted(Path(folder).rglob(f"{INNER_EXPERIMENT}/selections/*.json")):
            selection = VariantSelection.from_dict(read_json(path)["selection"])
            found.setdefault(selection.id, selection)
    return list(found.values())

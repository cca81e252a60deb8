"""Nested model selection: choose a setting per outer fold without touching the test folds.

:class:`NestedSelection` picks among candidate settings (e.g. ``module_type``
x ``training_budget``, :func:`candidate_grid`) for each outer fold by inner
validation folds built from that fold's training part only, grouped as the
protocol groups (speakers for ``"speaker"``); the chosen setting is then
refitted on the whole outer training part -- which is exactly the ablation cell
of that outer fold -- and scored once on the outer test fold. Inner runs are
:class:`~mtl.ablation.inner.InnerCell` objects with records under
``results_dir()/runs/ablation-nested/``. A selection saves its parameters
(:meth:`NestedSelection.save`) so the chapter can read every one that ran
(:func:`saved_selections`); :func:`budget_selections` lists those of the
committed budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mtl.ablation.analysis import mean_sd
from mtl.ablation.budget import BUDGET, AblationBudget
from mtl.ablation.grid import ABLATION, DEFAULT_SOURCES, NESTED, TARGET, check_one_of
from mtl.ablation.inner import InnerCell
from mtl.ablation.records import find_record, load_ablation_records, record_index
from mtl.ablation.sizes import outer_fold_sizes
from mtl.cells import Cell, make_cell, resolve_classes
from mtl.config import DATA_MODES, METHODS, MODULE_TYPES, PROTOCOLS, TRAINING_BUDGETS, Config, get_profile
from mtl.corpora import CORPORA
from mtl.errors import ConfigError
from mtl.io import read_json, stable_hash, write_json
from mtl.paths import results_dir
from mtl.records import now, read_record
from mtl.results import default_search_path
from mtl.sweep import run_sweep

__all__ = ["candidate_grid", "DEFAULT_CANDIDATES", "NestedSelection", "saved_selections", "budget_selections"]

def candidate_grid(**levels: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of some settings, in order: candidates for :class:`NestedSelection`.

    >>> candidate_grid(module_type=["linear", "conv"], lr=[0.02])
    [{'module_type': 'linear', 'lr': 0.02}, {'module_type': 'conv', 'lr': 0.02}]
    """
    names = list(levels)
    values = [(v,) if isinstance(v, str) else tuple(v) for v in levels.values()]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


_SCORES = ("accuracy", "uar", "utt_accuracy_mean_prob", "utt_accuracy_vote", "utt_uar")


class NestedSelection:
    """Choose a setting per outer fold on inner validation folds, refit it, score the outer test fold once.

    Parameters
    ----------
    candidates : sequence of mappings
        Settings to choose among: :class:`~mtl.config.Config` fields (and
        optionally ``"method"``), e.g. ``candidate_grid(module_type=["linear",
        "conv"], training_budget=["one_pass", "literal_epochs"])``. Order
        matters on a tie: the earlier candidate wins.
    profile : str, default "paper"
        Configuration profile the candidates change.
    protocol : {"paper", "utterance", "speaker"}, default "speaker"
        Grouping of the outer *and* inner folds.
    method : str, default "scratch"
        Method of candidates that do not set one.
    sources : sequence of str, default ("ravdess",)
        Sources of transfer and fine-tuning candidates.
    seeds : iterable of int, default (0,)
    outer_folds : iterable of int or None, default None
        Outer folds to evaluate; None: all of the protocol's.
    n_inner : int or None, default None
        Inner folds; None: the profile's ``folds``.
    data : str, default "real"
        Copy of the corpora (``"synthetic"`` for tests).
    metric : str, default "uar"
        Inner-validation score that decides: ``accuracy``, ``uar`` (segment
        level), ``utt_accuracy_mean_prob``, ``utt_accuracy_vote`` or
        ``utt_uar`` (utterance level, mean probability).
    overrides : mapping, optional
        Config fields applied to every candidate before its own changes.
    experiment : str, default "ablation"
        Experiment id of the refit cells: a refit is the ordinary ablation
        cell of its setting and outer fold, so its record is shared with the
        grid.

    Use :meth:`inner_cells` (run them with :func:`mtl.sweep.run_sweep`), then
    :meth:`selection` and :meth:`refit_cells`, or :meth:`run` for all of it;
    :meth:`results` reads what is there.
    """

    def __init__(self, candidates: Sequence[Mapping[str, Any]], profile: str = "paper", protocol: str = "speaker",
                 method: str = "scratch", sources: Sequence[str] = DEFAULT_SOURCES, seeds: Iterable[int] = (0,),
                 outer_folds: Iterable[int] | None = None, n_inner: int | None = None, data: str = "real",
                 metric: str = "uar", overrides: Mapping[str, Any] | None = None, experiment: str = ABLATION):
        self.candidates = [dict(c) for c in candidates]
        if not self.candidates:
            raise ConfigError("NestedSelection needs at least one candidate setting")
        check_one_of("protocol", protocol, PROTOCOLS)
        check_one_of("metric", metric, _SCORES)
        check_one_of("data", data, DATA_MODES)
        methods = {candidate.get("method", method) for candidate in self.candidates}
        for candidate in self.candidates:
            if candidate.get("method", method) not in METHODS:
                raise ConfigError(f"candidate {candidate}: method must be one of {', '.join(METHODS)}")
            if {"protocol", "seed", "folds"} & set(candidate):
                raise ConfigError(f"candidate {candidate}: protocol, seed and folds are fixed by the procedure")
        no_copy = [s for s in sources if data == "synthetic" and not CORPORA[s].synthetic]
        if methods != {"scratch"} and no_copy:
            raise ConfigError(f"data='synthetic', but there is no synthetic {', '.join(no_copy)} to transfer from")
        self.profile, self.protocol, self.method, self.sources = profile, protocol, method, tuple(sources)
        self.seeds = [int(s) for s in seeds]
        self.data, self.metric, self.experiment = data, metric, experiment
        self.overrides = dict(overrides or {})
        self.base = get_profile(profile, **self.overrides)
        self.n_inner = int(n_inner) if n_inner is not None else self.base.folds
        self._outer_folds = None if outer_folds is None else [int(f) for f in outer_folds]
        self._configs = [self._config(c) for c in self.candidates]  # validates every candidate now
        self.names = [self._name(c) for c in self.candidates]

    def _config(self, candidate: Mapping[str, Any]) -> Config:
        return self.base.replace(protocol=self.protocol, **{k: v for k, v in candidate.items() if k != "method"})

    @staticmethod
    def _name(candidate: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in candidate.items()) or "profile defaults"

    def outer_cell(self, candidate: int, seed: int, fold: int) -> Cell:
        """The ablation cell of candidate number ``candidate`` on outer fold ``fold``: its refit.

        Built without looking for the data (``data`` is ``"real"`` or
        ``"synthetic"``), so committed records can be read where the corpora are absent.
        """
        method = self.candidates[candidate].get("method", self.method)
        sources = () if method == "scratch" else self.sources
        if self.data == "auto":
            return make_cell(self.experiment, method, TARGET, sources, "audio", self._configs[candidate], "target",
                             None, self.protocol, seed, fold, self.data)
        classes, source_classes = resolve_classes(TARGET, sources, "target")
        return Cell(self.experiment, method, TARGET, sources, "audio", classes, source_classes, self.protocol, seed,
                    fold, self._configs[candidate], tuple((c, self.data) for c in (TARGET, *sorted(sources))))

    def outer_folds(self) -> list[int]:
        """The outer folds evaluated (all of the protocol's unless given)."""
        if self._outer_folds is not None:
            return list(self._outer_folds)
        first = self.outer_cell(0, self.seeds[0], 0)
        if self.protocol != "speaker":
            self._outer_folds = list(range(self.base.folds))
        else:
            self._outer_folds = list(range(len(outer_fold_sizes(first))))
        return list(self._outer_folds)

    def to_dict(self) -> dict[str, Any]:
        """The selection's parameters (JSON-ready; the outer folds resolved)."""
        return {"candidates": self.candidates, "profile": self.profile, "protocol": self.protocol,
                "method": self.method, "sources": list(self.sources), "seeds": self.seeds,
                "outer_folds": self.outer_folds(), "n_inner": self.n_inner, "data": self.data, "metric": self.metric,
                "overrides": self.overrides, "experiment": self.experiment}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NestedSelection":
        return cls(**dict(data))

    @property
    def id(self) -> str:
        return stable_hash(self.to_dict())

    def save(self) -> Path:
        """Write the parameters to ``results_dir()/runs/ablation-nested/selections/<id>.json``.

        :func:`saved_selections` reads them back, so the chapter can show every selection that was run.
        """
        path = results_dir() / "runs" / self.inner_experiment / "selections" / f"{self.id}.json"
        write_json(path, {"selection": self.to_dict(), "created": now()})
        return path

    inner_experiment: str = NESTED
    """Experiment (and folder under ``results_dir()/runs``) of the inner runs and of the saved parameters."""

    def inner_cell(self, candidate: int, seed: int, fold: int, inner: int) -> InnerCell:
        """Inner run ``inner`` of candidate number ``candidate`` on outer fold ``fold``."""
        return InnerCell(self.outer_cell(candidate, seed, fold), inner, self.n_inner, self.inner_experiment)

    def refit_cell(self, candidate: int, seed: int, fold: int) -> Any:
        """The cell that refits candidate number ``candidate`` on outer fold ``fold``: its :meth:`outer_cell`."""
        return self.outer_cell(candidate, seed, fold)

    def inner_cells(self) -> list[InnerCell]:
        """Every inner run: candidate x seed x outer fold x inner fold."""
        return [self.inner_cell(c, seed, fold, inner)
                for seed in self.seeds for fold in self.outer_folds()
                for c in range(len(self.candidates)) for inner in range(self.n_inner)]

    def selection(self) -> pd.DataFrame:
        """Inner-validation scores and the choice, one row per seed x outer fold x candidate.

        Columns: ``seed``, ``fold``, ``candidate`` (its text), ``score``
        (mean of ``metric`` over the inner folds done), ``score_sd``,
        ``inner_done``, ``complete`` (every inner fold of every candidate of
        that outer fold done) and ``chosen`` (the best complete candidate;
        earlier one on a tie; False everywhere while incomplete).
        """
        rows, index = [], record_index()
        for seed in self.seeds:
            for fold in self.outer_folds():
                for c in range(len(self.candidates)):
                    cells = [self.inner_cell(c, seed, fold, i) for i in range(self.n_inner)]
                    found = [find_record(cell, index) for cell in cells]
                    scores = [_record_score(read_record(path), self.metric) for path in found if path is not None]
                    mean, sd, n = mean_sd(pd.Series(scores, dtype=float))
                    rows.append({"seed": seed, "fold": fold, "candidate_index": c, "candidate": self.names[c],
                                 "score": mean, "score_sd": sd, "inner_done": n})
        frame = pd.DataFrame(rows)
        group = frame.groupby(["seed", "fold"])["inner_done"]
        frame["complete"] = group.transform("min") == self.n_inner
        best = frame[frame["complete"]].sort_values(["seed", "fold", "score", "candidate_index"],
                                                    ascending=[True, True, False, True], kind="stable")
        chosen = best.groupby(["seed", "fold"]).head(1).index
        frame["chosen"] = frame.index.isin(chosen)
        return frame

    def refit_cells(self) -> list[Any]:
        """The refits (:meth:`refit_cell`) of the chosen candidates (outer folds whose inner runs are complete)."""
        chosen = self.selection()
        chosen = chosen[chosen["chosen"]]
        return [self.refit_cell(int(r.candidate_index), int(r.seed), int(r.fold)) for r in chosen.itertuples()]

    def run(self, workers: int = 1, progress: bool = False) -> pd.DataFrame:
        """Run the missing inner cells, choose, run the missing refits; return :meth:`results`.

        Both steps run through :func:`mtl.sweep.run_sweep` with ``workers``
        one-thread processes (``progress`` shows its bar). A failed cell leaves its outer fold
        unchosen or unscored (the returned frame's ``status`` says which);
        rerunning completes it.
        """
        self.save()
        run_sweep(self.inner_cells(), workers=workers, progress=progress)
        run_sweep(self.refit_cells(), workers=workers, progress=progress)
        return self.results()

    def results(self) -> pd.DataFrame:
        """One row per seed x outer fold: the chosen setting, its inner score and its outer test scores.

        Columns: ``seed``, ``fold``, ``status`` (``"scored"``, ``"chosen,
        refit missing"`` or ``"inner runs missing"``), ``chosen`` (setting
        text), ``inner_score`` (the selection metric, mean over inner folds),
        then the outer test fold's ``accuracy``, ``uar``,
        ``utt_accuracy_mean_prob``, ``utt_accuracy_vote``, ``utt_uar``, and
        ``refit_key``.
        """
        selection = self.selection()
        chosen = selection[selection["chosen"]]
        refits = {(int(r.seed), int(r.fold)): self.refit_cell(int(r.candidate_index), int(r.seed), int(r.fold))
                  for r in chosen.itertuples()}
        scored = load_ablation_records(list(refits.values())).set_index("cell_key") if refits else pd.DataFrame()
        rows = []
        for (seed, fold), group in selection.groupby(["seed", "fold"], sort=True):
            row = {"seed": int(seed), "fold": int(fold), "protocol": self.protocol, "metric": self.metric,
                   "status": "inner runs missing", "chosen": None, "inner_score": float("nan"),
                   **{score: float("nan") for score in _SCORES}, "refit_key": None}
            cell = refits.get((int(seed), int(fold)))
            if cell is not None:
                best = group[group["chosen"]].iloc[0]
                row.update(chosen=best["candidate"], inner_score=best["score"], refit_key=cell.key,
                           status="chosen, refit missing")
                if cell.key in scored.index:
                    row.update(status="scored", **{score: float(scored.loc[cell.key, score]) for score in _SCORES})
            rows.append(row)
        return pd.DataFrame(rows)


def saved_selections() -> list[NestedSelection]:
    """Every nested selection that was run (:meth:`NestedSelection.save`), from local runs and committed records."""
    found: dict[str, NestedSelection] = {}
    for folder in default_search_path():
        for path in sorted(folder.rglob(f"{NESTED}/selections/*.json")):
            selection = NestedSelection.from_dict(read_json(path)["selection"])
            found.setdefault(selection.id, selection)
    return list(found.values())


def _record_score(record: Mapping[str, Any], metric: str) -> float:
    """The inner-validation score ``metric`` of one record (NaN where it lacks it)."""
    metrics = record["metrics"]
    utterance = metrics.get("utterance", {})
    value = {"accuracy": metrics.get("accuracy"), "uar": metrics.get("uar"),
             "utt_accuracy_mean_prob": utterance.get("mean_prob", {}).get("accuracy"),
             "utt_accuracy_vote": utterance.get("vote", {}).get("accuracy"),
             "utt_uar": utterance.get("mean_prob", {}).get("uar")}[metric]
    return float("nan") if value is None else float(value)


DEFAULT_CANDIDATES: list[dict[str, Any]] = candidate_grid(module_type=MODULE_TYPES, training_budget=TRAINING_BUDGETS)
"""Candidates of the chapter's nested selection: module type x training budget."""


def budget_selections(grid_cells: Sequence[Any], budget: AblationBudget = BUDGET,
                      protocols: Sequence[str] | None = None, seeds: Iterable[int] | None = None,
                      n_inner: int | None = None, overrides: Mapping[str, Any] | None = None
                      ) -> list[NestedSelection]:
    """The nested selections of ``budget`` among the module type x T settings of ``grid_cells``.

    The candidates are the grid's own settings (their G included), so each
    chosen setting's refit is the grid cell of that outer fold. ``protocols``,
    ``seeds`` and ``n_inner`` None take the budget's; each protocol chooses by
    the budget's metric for it (UAR where none is declared).
    """
    settings: dict[tuple[str, str], int] = {}
    for cell in grid_cells:
        settings.setdefault((cell.config.module_type, cell.config.training_budget), cell.config.generations)
    candidates = [{"module_type": m, "training_budget": b, "generations": g} for (m, b), g in settings.items()]
    metrics = dict(budget.selections)
    protocols = [p for p, _ in budget.selections] if protocols is None else list(protocols)
    return [NestedSelection(candidates, profile=budget.profile, protocol=protocol,
                            seeds=budget.seeds if seeds is None else seeds,
                            n_inner=budget.n_inner if n_inner is None else n_inner,
                            metric=metrics.get(protocol, "uar"), overrides=overrides)
            for protocol in protocols]

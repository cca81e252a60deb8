"""The ablation chapter's entry point: its parameters checked, its grid listed, its views.

``notebooks/ablation.md`` calls :func:`plan_ablation` with its parameters and
then only the methods of the :class:`AblationPlan` it returns: each reads
what has been computed (every ablation record found and every saved nested
selection) and shows it, or says plainly that there is nothing. Nothing here
trains a model or times one; the data root is shown as ``$MTL_DATA_ROOT`` or
relative to the project, never as the building machine's path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import Markdown

from mtl.ablation.analysis import ablation_table, factor_effects
from mtl.ablation.budget import BUDGET, describe_budget
from mtl.ablation.cost import cost_summary, estimate_cost, read_step_seconds, step_seconds, step_seconds_source
from mtl.ablation.grid import (BUDGET_RULES, DEFAULT_SOURCES, NESTED, SOURCE_BUDGETS, TARGET, ablation_cells,
                               check_factors, check_one_of, generations_for)
from mtl.ablation.nested import saved_selections
from mtl.ablation.records import find_record, load_ablation_records, outer_only, record_index, \
    records_overview, with_anchors
from mtl.ablation.verdict import AblationFindings, AblationSummary, ablation_findings, ablation_summary, paper_numbers
from mtl.config import canonical_names, check_seeds, get_profile
from mtl.corpora import corpus_card
from mtl.datasets import resolve_data_kind
from mtl.errors import ConfigError, MissingDataError
from mtl.paths import data_root as current_data_root
from mtl.paths import portable_path

__all__ = ["AblationPlan", "plan_ablation"]


@dataclass
class AblationPlan:
    """The chapter's parameters after checking: the grid's cells, or why there are none.

    Built by :func:`plan_ablation`. Displayed, it shows its settings. Its
    other methods read what has been computed -- every ablation record found
    (:func:`load_ablation_records`), whatever its profile, and every saved
    nested selection -- and show it, or say plainly that there is nothing.
    Nothing here trains a model.
    """

    profile: str
    factors: dict[str, tuple[str, ...]]
    seeds: tuple[int, ...]
    folds: int
    generations: int | dict[str, int]
    budget: str
    data_root: Path
    overrides: dict[str, Any]
    """Config fields changed in every cell (their field names, whatever name they were given as)."""
    missing: list[str]
    """Plain sentences: what is absent and what the chapter therefore leaves out."""
    cells: list[Any]

    def settings(self) -> pd.DataFrame:
        rows = [("profile", self.profile),
                ("data root", portable_path(self.data_root) + ("" if self.data_root.is_dir() else " (absent)")),
                *((name, ", ".join(levels)) for name, levels in self.factors.items()),
                ("decision levels", "segment, utterance (mean probability), utterance (majority vote): from every run"),
                ("seeds", ", ".join(map(str, self.seeds))), ("folds", f"{self.folds}-fold"),
                ("G (generations)", f"{self.generations}" + (" (literal_epochs: fewer, to match one pass's SGD steps)"
                                                         if self.budget == "equal_steps" else "")),
                *((name, repr(value)) for name, value in self.overrides.items()),
                ("cells", f"{len(self.cells)}, {self.done()} with a record (computed here or committed)")]
        rows += [("missing", sentence) for sentence in self.missing]
        return pd.DataFrame(rows, columns=["setting", "value"])

    def done(self) -> int:
        """How many of the grid's cells have a record, local or committed."""
        index = record_index()
        return sum(find_record(cell, index) is not None for cell in self.cells)

    def _repr_html_(self) -> str:
        return self.settings().to_html(index=False, border=0, classes="mtl-settings")

    def __repr__(self) -> str:
        return self.settings().to_string(index=False)

    def cost_table(self, workers: int = 2) -> Any:
        """What the grid costs (:func:`~mtl.ablation.cost.cost_summary`), or why there is no grid.

        Seconds per step come from the committed benchmark
        (:func:`~mtl.ablation.cost.read_step_seconds`), never from timing
        while the book builds; the caption says where they were measured.
        """
        if not self.cells:
            return Markdown("*No grid to cost: " + " ".join(self.missing) + "*")
        benchmark = read_step_seconds()
        seconds = step_seconds(benchmark) if benchmark is not None else None
        table = cost_summary(estimate_cost(self.cells, seconds), workers=workers)
        return (table.style.format({"cpu_hours": "{:.2f}", "wall_hours": "{:.2f}"}, na_rep="—")
                .hide(axis="index").set_caption(step_seconds_source(benchmark)))

    def budget_text(self) -> Any:
        """The budget of the committed records in words (:func:`~mtl.ablation.budget.describe_budget`).

        T and the G of ``literal_epochs`` are read from the records (their
        training sizes and configurations); without records they are said
        without numbers.
        """
        grid = outer_only(load_ablation_records())
        T = literal = None
        if not grid.empty:
            one_pass = grid[(grid["protocol"] == "paper") & (grid["training_budget"] == "one_pass")]
            if len(one_pass):
                config = get_profile(BUDGET.profile)
                T = config.steps_for(round(one_pass["record"].map(lambda r: r["n_train"]).mean()))
            literal_g = grid.loc[grid["training_budget"] == "literal_epochs", "generations"].unique()
            literal = int(literal_g[0]) if len(literal_g) == 1 else None
        return Markdown(describe_budget(BUDGET, T, literal))

    def records(self) -> pd.DataFrame:
        """Every ablation record found (:func:`load_ablation_records`), any profile, and its anchors
        (:func:`with_anchors`)."""
        return with_anchors(load_ablation_records())

    def table(self, decisions: Sequence[str] | None = ("segment", "utterance (mean prob.)", "utterance (vote)")
              ) -> Any:
        """:func:`ablation_table` of every record found, styled; or a plain note when there is none."""
        table = ablation_table(self.records(), decisions)
        if table.empty:
            return Markdown("**No ablation records exist yet**, so there is no table: nothing has been computed "
                            "for this chapter. " + " ".join(self.missing))
        shown = table.drop(columns=[c for c in table.columns if c.endswith(("_mean", "_sd"))])
        return shown.style.format({"difference": "{:+.3f}", "t_p": "{:.3f}", "wilcoxon_p": "{:.3f}"},
                                  na_rep="—").hide(axis="index")

    def computed(self) -> Any:
        """What the records shown were computed with (:func:`records_overview`), or a plain note."""
        overview = records_overview(pd.concat([self.records(), load_ablation_records(experiment=NESTED)],
                                              ignore_index=True))
        if overview.empty:
            return Markdown("**No ablation records exist yet.** " + " ".join(self.missing))
        return overview.style.format({"cpu_minutes": "{:.1f}"}).hide(axis="index")

    def figure(self, decision: str = "segment") -> Any:
        """:func:`mtl.plots.ablation_bars` of every setting found, or a plain note."""
        from mtl.plots import ablation_bars  # here, not above: matplotlib costs ~0.5 s and only the figure needs it

        table = ablation_table(self.records(), [decision])
        if table.empty:
            return Markdown("*No ablation records, so no figure.*")
        return ablation_bars(table, decision, paper=paper_numbers(), chance=1 / len(corpus_card(TARGET).classes),
                             title=f"EMO-DB, {decision} decisions: mean ± sd over folds")

    def effects(self, metric: str = "accuracy") -> Any:
        """:func:`factor_effects` of the grid's records, styled, or a plain note."""
        effects = factor_effects(self.records(), metric)
        if effects.empty or not effects["pairs"].any():
            return Markdown("*No two records of the grid differ in one factor only yet, so no effect to show.*")
        return effects.style.format({c: "{:+.3f}" for c in ("mean_difference", "smallest", "largest")}
                                    | {"sd": "{:.3f}", "b_better": "{:.0%}"}, na_rep="—").hide(axis="index")

    def nested(self) -> Any:
        """The results of every saved nested selection (:func:`saved_selections`), or a plain note."""
        frames = []
        for selection in saved_selections():
            frames.append(selection.results().assign(profile=selection.profile, n_inner=selection.n_inner,
                                                     candidates=" | ".join(selection.names)))
        if not frames:
            return Markdown("**No nested selection has been run yet**, so no setting has been chosen on inner "
                            "validation folds.")
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> AblationSummary:
        """:func:`ablation_summary` of every record and the speaker- and paper-protocol nested selections."""
        selections = saved_selections()

        def results(protocol: str) -> pd.DataFrame | None:
            frames = [s.results() for s in selections if s.protocol == protocol]
            return pd.concat(frames, ignore_index=True) if frames else None

        speaker = results("speaker")
        return ablation_summary(self.records(), speaker if speaker is not None else pd.DataFrame(),
                                paper_nested=results("paper"))

    def findings(self) -> AblationFindings:
        """:func:`~mtl.ablation.verdict.ablation_findings` of every record found: the factors ranked."""
        return ablation_findings(self.records())


def plan_ablation(profile: str | None = None, data_root: str | Path | None = None,
                  seeds: int | Sequence[int] | None = None, folds: int | None = None,
                  factors: Mapping[str, Sequence[str]] | None = None,
                  generations: int | Mapping[str, int] | None = None, budget: str | None = None,
                  source_budget: str | None = None, overrides: Mapping[str, Any] | None = None) -> AblationPlan:
    """Check the chapter's parameters and list the ablation grid on the real EMO-DB.

    Every parameter left None takes the committed records' budget
    (:data:`mtl.ablation.budget.BUDGET`), so the chapter costs the grid it reads.

    Parameters
    ----------
    profile : str or None
        ``smoke``, ``default`` or ``paper``; None: the budget's (``paper``).
    data_root : str or Path or None
        Folder holding ``emodb/`` (and ``ravdess-speech-16k/`` for transfer);
        it must exist, and becomes ``MTL_DATA_ROOT`` for this process. None:
        the environment's.
    seeds : int or list of int or None
        None: the budget's seeds.
    folds : int or None
        k of k-fold; None: the profile's.
    factors : mapping or None
        ``{factor: levels}`` restricting :data:`~mtl.ablation.grid.FACTORS`.
    generations : int, mapping or None
        G, or ``{training_budget: G}`` (see :func:`~mtl.ablation.grid.ablation_config`); None: the budget's.
    budget : {"as_configured", "equal_steps"} or None
        See :func:`~mtl.ablation.grid.ablation_cells`; None: the budget's.
    source_budget : {"one_pass", "same"} or None
        See :func:`~mtl.ablation.grid.ablation_cells`; None: the budget's.
    overrides : mapping or None
        Further Config fields for every cell, by field name or the paper's
        symbol (:func:`mtl.config.canonical_names`: ``{"S": 10}`` is
        ``{"population": 10}``); G given here is the same as ``generations``.

    Without the real EMO-DB the plan has no cells and says so; without
    RAVDESS it leaves the transfer half out and says so.
    """
    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if not root.is_dir():
            raise MissingDataError(f"data_root {str(data_root)!r} does not exist (resolved to {root}); give the "
                                   "folder that holds emodb/ (and ravdess-speech-16k/), or None for the default")
        os.environ["MTL_DATA_ROOT"] = str(root)
    profile = BUDGET.profile if profile is None else profile
    budget = BUDGET.budget if budget is None else budget
    source_budget = BUDGET.source_budget if source_budget is None else source_budget
    overrides = canonical_names({**({"generations": generations} if generations is not None else {}),
                                 **(overrides or {})})
    generations = overrides.pop("generations", BUDGET.generations)
    config = get_profile(profile, **({"folds": folds} if folds is not None else {}))
    seeds = check_seeds(BUDGET.seeds if seeds is None else seeds)
    chosen = check_factors(factors)
    check_one_of("budget", budget, BUDGET_RULES)
    check_one_of("source_budget", source_budget, SOURCE_BUDGETS)
    for budget_name in chosen["training_budget"]:
        if generations_for(budget_name, config, generations) < 1:
            raise ConfigError(f"generations must be >= 1, got {generations!r}")
    missing: list[str] = []
    cells: list[Any] = []
    shown = portable_path(current_data_root())
    try:
        resolve_data_kind(TARGET, "real")
    except MissingDataError:
        missing.append(f"The real EMO-DB is not under {shown}: the ablation is about the real corpus, so this "
                       "chapter lists no cells and computes nothing.")
    else:
        try:
            resolve_data_kind(DEFAULT_SOURCES[0], "real")
        except MissingDataError:
            if "transfer" in chosen["method"]:
                missing.append(f"RAVDESS is not under {shown}: the transfer cells are left out.")
                chosen["method"] = tuple(m for m in chosen["method"] if m != "transfer")
        if chosen["method"]:
            cells = ablation_cells(profile, chosen, seeds, None, "real", DEFAULT_SOURCES, generations, budget,
                                   {"folds": config.folds, **overrides}, source_budget=source_budget)
    return AblationPlan(profile, chosen, seeds, config.folds, generations if not isinstance(generations, Mapping)
                        else dict(generations), budget, current_data_root(), overrides, missing, cells)

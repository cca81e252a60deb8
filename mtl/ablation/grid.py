"""The ablation grid: its factors, the configuration of one setting, and its cells.

=====================  ===============================================================
factor                 levels
=====================  ===============================================================
``module_type``        ``"linear"`` (the paper's) or ``"conv"`` (3x3 stride-2 modules)
``protocol``           ``"paper"`` (random folds over segments), ``"utterance"``, ``"speaker"``
``method``             ``"scratch"`` or ``"transfer"`` (from RAVDESS, standing in for eNTERFACE+SAVEE)
``training_budget``    ``"one_pass"`` (T SGD steps) or ``"literal_epochs"`` (T epochs of T steps)
=====================  ===============================================================

The *decision level* -- one decision per segment, or per utterance by mean
probability or majority vote -- is a fifth factor that costs nothing: every
record holds all three (:mod:`mtl.evaluation`).

:func:`ablation_cells` lists the grid as :class:`~mtl.cells.Cell`
objects of experiment ``"ablation"``: records land in
``results_dir()/runs/ablation/`` and :func:`mtl.sweep.run_sweep` runs them in
parallel and resumably. :func:`budget_cells` lists the grid of the committed
records (:data:`mtl.ablation.budget.BUDGET`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mtl.ablation.budget import BUDGET, AblationBudget
from mtl.ablation.sizes import mean_train_size
from mtl.config import METHODS, MODULE_TYPES, PROTOCOLS, TRAINING_BUDGETS, Config, canonical_names, get_profile
from mtl.errors import ConfigError
from mtl.experiments import experiment_cells

__all__ = ["ABLATION", "NESTED", "FACTORS", "TARGET", "DEFAULT_SOURCES", "ablation_config", "ablation_cells",
           "budget_cells", "cell_factors", "check_one_of", "check_factors"]

ABLATION = "ablation"
"""Experiment id of the ablation grid's cells (records in ``results_dir()/runs/ablation/``)."""
NESTED = "ablation-nested"
"""Experiment id of the inner-validation runs of :class:`~mtl.ablation.nested.NestedSelection`."""

FACTORS: dict[str, tuple[str, ...]] = {
    "module_type": MODULE_TYPES,
    "protocol": PROTOCOLS,
    "method": ("scratch", "transfer"),
    "training_budget": TRAINING_BUDGETS,
}
"""Factors of the grid and their levels (all of them by default)."""

TARGET = "emodb"
DEFAULT_SOURCES: tuple[str, ...] = ("ravdess",)
BUDGET_RULES = ("as_configured", "equal_steps")
SOURCE_BUDGETS = ("one_pass", "same")
RUN_ORDER: tuple[str, ...] = ("paper", "speaker", "utterance")
"""Protocols in the order :func:`budget_cells` lists them: a run cut short still leaves complete settings of the
paper's protocol and the speaker-independent one."""


def check_one_of(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raise :class:`ConfigError` naming ``name`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def check_factors(factors: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """Every factor with its levels (defaults filled in), validated."""
    chosen = dict(FACTORS)
    for name, levels in (factors or {}).items():
        if name not in FACTORS:
            raise ConfigError(f"unknown ablation factor {name!r}; factors are {', '.join(FACTORS)} "
                              "(the decision level needs no factor: every record holds all of them)")
        levels = (levels,) if isinstance(levels, str) else tuple(levels)
        allowed = METHODS if name == "method" else FACTORS[name]
        bad = [level for level in levels if level not in allowed]
        if bad or not levels:
            raise ConfigError(f"factor {name!r}: levels must be a non-empty list from {', '.join(allowed)}, "
                              f"got {list(levels)!r}")
        chosen[name] = tuple(dict.fromkeys(levels))
    return chosen


def generations_for(budget: str, base: Config, generations: int | Mapping[str, int] | None) -> int:
    """G of the settings of training budget ``budget`` (see :func:`ablation_config`)."""
    if generations is None:
        return base.generations
    if isinstance(generations, Mapping):
        unknown = sorted(set(generations) - set(TRAINING_BUDGETS))
        if unknown:
            raise ConfigError(f"generations: keys must be training budgets ({', '.join(TRAINING_BUDGETS)}), "
                              f"got {', '.join(unknown)}")
        return int(generations.get(budget, base.generations))
    return int(generations)


def ablation_config(profile: str = "paper", module_type: str = "linear", training_budget: str = "one_pass",
                    generations: int | Mapping[str, int] | None = None,
                    overrides: Mapping[str, Any] | None = None) -> Config:
    """The configuration of one ablation setting.

    Parameters
    ----------
    profile : str, default "paper"
        ``smoke``, ``default`` or ``paper`` (:func:`mtl.config.get_profile`).
    module_type, training_budget : str
        The setting's levels (:data:`FACTORS`).
    generations : int, mapping or None, default None
        G: None keeps the profile's; an int sets it for every setting; a
        mapping ``{training_budget: G}`` sets it per budget (e.g. fewer
        generations for ``literal_epochs``).
    overrides : mapping, optional
        Further :class:`~mtl.config.Config` fields, applied last; the paper's
        symbols (``S``, ``G`` ...) are accepted (:func:`mtl.config.canonical_names`).
    """
    base = get_profile(profile)
    changes = {"module_type": module_type, "training_budget": training_budget,
               "generations": generations_for(training_budget, base, generations),
               **canonical_names(overrides or {})}
    return base.replace(**changes)


def ablation_cells(profile: str = "paper", factors: Mapping[str, Sequence[str]] | None = None,
                   seeds: Iterable[int] = (0,), folds: Iterable[int] | None = None, data: str = "real",
                   sources: Sequence[str] = DEFAULT_SOURCES, generations: int | Mapping[str, int] | None = None,
                   budget: str = "as_configured", overrides: Mapping[str, Any] | None = None,
                   experiment: str = ABLATION, source_budget: str = "one_pass") -> list[Any]:
    """Every cell of the ablation grid on EMO-DB (all 7 classes), validated before anything runs.

    Parameters
    ----------
    profile : str, default "paper"
        Configuration profile of every cell.
    factors : mapping or None, default None
        ``{factor: levels}`` restricting :data:`FACTORS` (e.g.
        ``{"module_type": ["conv"], "protocol": ["paper", "speaker"]}``); a
        factor left out takes all its levels.
    seeds : iterable of int, default (0,)
        Seeds; each is a full repetition (folds, weights, genotypes).
    folds : iterable of int or None, default None
        Fold indices; None runs every fold of each protocol (the speaker
        protocol then loads EMO-DB once to count its speakers).
    data : {"real", "auto", "synthetic"}, default "real"
        Which copy of EMO-DB (and of the sources). The ablation is about the
        real corpus; ``"synthetic"`` exists for tests.
    sources : sequence of str, default ("ravdess",)
        Source corpora of the transfer cells.
    generations : int, mapping or None, default None
        G, see :func:`ablation_config`.
    budget : {"as_configured", "equal_steps"}, default "as_configured"
        ``"as_configured"``: ``literal_epochs`` cells keep their G and train
        T times more SGD steps per pathway (cost: :func:`mtl.ablation.cost.estimate_cost`).
        ``"equal_steps"``: their G becomes ``max(1, round(G / T))``, T being
        one pass over the average training part of EMO-DB, so both budgets
        spend about the same SGD steps on the target -- longer training per
        pathway, fewer tournaments. Loads EMO-DB to count its samples.
    overrides : mapping, optional
        Config fields replaced in every cell (e.g. ``{"lr": 0.01}``).
    experiment : str, default "ablation"
        Experiment id (records in ``results_dir()/runs/<experiment>/``).
    source_budget : {"one_pass", "same"}, default "one_pass"
        How the source model of a transfer cell trains. ``"one_pass"``: as
        the ``one_pass`` setting of the same module type (its G included), so
        both T readings transfer from one and the same source model and the
        factor varies only the target's training. ``"same"``: with the cell's
        own configuration -- under ``literal_epochs`` about 200x more SGD
        steps per pathway on RAVDESS.

    Returns
    -------
    list of Cell
        Ordered by protocol, module type, budget, method, seed, fold.

    Notes
    -----
    A profile that fixes ``steps_per_pathway`` (``smoke``) trains both
    budgets for the same steps.
    """
    chosen = check_factors(factors)
    check_one_of("budget", budget, BUDGET_RULES)
    check_one_of("source_budget", source_budget, SOURCE_BUDGETS)
    seeds = [int(s) for s in seeds]
    folds = None if folds is None else [int(f) for f in folds]
    cells = []
    for protocol, module_type, training_budget, method in itertools.product(
            chosen["protocol"], chosen["module_type"], chosen["training_budget"], chosen["method"]):
        config = ablation_config(profile, module_type, training_budget, generations, overrides)
        if budget == "equal_steps" and training_budget == "literal_epochs":
            one_pass = config.replace(training_budget="one_pass")
            per_pass = one_pass.steps_for(mean_train_size(TARGET, config, data))
            config = config.replace(generations=max(1, round(config.generations / per_pass)))
        setting = experiment_cells(experiment, method=method, target=TARGET,
                                   sources=() if method == "scratch" else tuple(sources), modality="audio",
                                   config=config, classes="target", protocols=protocol, seeds=seeds, folds=folds,
                                   data=data)
        if method != "scratch" and source_budget == "one_pass":
            source_config = ablation_config(profile, module_type, "one_pass", generations, overrides)
            setting = [dataclasses.replace(cell, source_config=source_config) for cell in setting]
        cells += setting
    return cells


def budget_cells(budget: AblationBudget = BUDGET, seeds: Iterable[int] | None = None,
                 generations: int | None = None, overrides: Mapping[str, Any] | None = None) -> list[Any]:
    """The grid of ``budget`` on the real EMO-DB, protocols in :data:`RUN_ORDER` (what the script runs).

    ``seeds`` and ``generations`` None take the budget's; ``overrides`` are
    further Config fields (see :func:`ablation_config`).
    """
    seeds = budget.seeds if seeds is None else tuple(seeds)
    generations = budget.generations if generations is None else generations
    return [cell for protocol in RUN_ORDER
            for cell in ablation_cells(budget.profile, factors={"protocol": [protocol]}, seeds=seeds,
                                       generations=generations, budget=budget.budget, overrides=overrides,
                                       source_budget=budget.source_budget)]


def cell_factors(cell: Any) -> dict[str, Any]:
    """The ablation factors of a cell (or inner cell), plus G and the inner fold if any."""
    return {"protocol": cell.protocol, "module_type": cell.config.module_type,
            "training_budget": cell.config.training_budget, "method": cell.method,
            "generations": cell.config.generations, "seed": cell.seed, "fold": cell.fold,
            "inner_fold": getattr(cell, "inner_fold", None)}

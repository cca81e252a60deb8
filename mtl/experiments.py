"""The paper's experiments as data, and the functions that turn them into cells and records.

Each :class:`Experiment` is one of the paper's tables or figures: its runs
(:class:`Run`: a method, its sources, its target, a class rule), modality,
protocols and data. :data:`EXPERIMENTS` holds them all;
:func:`experiment_cells` expands one into validated :class:`~mtl.cells.Cell`
objects (every protocol x seed x fold) and :func:`run_experiment` runs them in
this process (:func:`mtl.sweep.run_sweep` runs them in parallel). Records land
in ``results_dir()/runs/<experiment>/<cell key>.json``; the same computation
asked for by two experiments (Table 1's transfer rows are also Table 2's)
runs once, and the second gets a copy of the record (:func:`mtl.runner.run_cell`).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mtl.cells import Cell, RunSpec, make_cell, parse_run_spec
from mtl.config import DATA_MODES, PROTOCOLS, Config, check_choice, get_profile
from mtl.datasets import load_dataset
from mtl.errors import ConfigError
from mtl.records import stored_record
from mtl.sweep import computed_records

__all__ = ["Run", "Experiment", "EXPERIMENTS", "experiments_table", "experiment_cells", "protocol_folds",
           "run_experiment", "grid_cells", "cells_table"]


@dataclass(frozen=True)
class Run:
    """One row of an experiment: a method, its sources and its target.

    ``classes`` is the class rule of :func:`resolve_classes` (``"shared"`` or
    ``"target"``).
    """

    method: str
    target: str
    sources: tuple[str, ...] = ()
    classes: str = "shared"

    def __str__(self) -> str:
        return f"{self.method} {RunSpec(self.target, self.sources)}"


_SHARED_RULE = ("the classes shared by the target and its source(s) in this experiment -- eNTERFACE and SAVEE share "
                "anger, disgust, fear, happiness, sadness, surprise (§4.3.1); scratch baselines use the same ones")
_TARGET_RULE = ("every class of the target (EMO-DB: anger, boredom, disgust, fear, happiness, neutral, sadness, the "
                "7 classes of §4.1); the source model is trained on every class of its sources (a new output layer "
                "is evolved for the target)")


@dataclass(frozen=True)
class Experiment:
    """One of the paper's tables or figures, as runs with default arguments."""

    id: str
    """Also the name of the chapter's notebook, ``notebooks/<id>.md``."""
    title: str
    modality: str
    runs: tuple[Run, ...]
    paper_ref: str
    classes_rule: str = _SHARED_RULE
    """Prose: how the class sets are chosen (each run's ``classes`` applies it)."""
    protocols: tuple[str, ...] = ("paper",)
    data: str = "auto"
    folds: tuple[int, ...] | None = None
    """Folds to run by default (None = all)."""
    notes: str = ""

    @property
    def notebook(self) -> str:
        """The chapter's notebook source, relative to ``notebooks/``."""
        return f"{self.id}.md"

    def partners(self, target: str) -> tuple[str, ...]:
        """Corpora paired with ``target`` in this experiment's shared-class runs."""
        return tuple(sorted({s for r in self.runs if r.target == target and r.classes == "shared"
                             for s in r.sources}))


def _baselines(target: str, sources: tuple[str, ...], classes: str = "shared") -> tuple[Run, Run, Run]:
    """Fine-tuning, scratch and transfer on one target: the rows of Tables 2 and 4, in the paper's order."""
    return (Run("finetune", target, sources, classes), Run("scratch", target, classes=classes),
            Run("transfer", target, sources, classes))


EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in (
    Experiment(
        "table1_visual_transfer", "Transfer between visual eNTERFACE and visual SAVEE", "video",
        runs=(Run("transfer", "savee", ("enterface",)), Run("transfer", "enterface", ("savee",))),
        paper_ref="Table 1, Fig. 7"),
    Experiment(
        "table2_visual_baselines", "Visual transfer against fine-tuning and training from scratch", "video",
        runs=(*_baselines("savee", ("enterface",)), *_baselines("enterface", ("savee",))),
        paper_ref="Table 2"),
    Experiment(
        "table3_speech_transfer", "Speech transfer: eNTERFACE to SAVEE, and eNTERFACE+SAVEE to EMO-DB", "audio",
        runs=(Run("transfer", "savee", ("enterface",)),
              Run("transfer", "emodb", ("enterface", "savee"), classes="target")),
        paper_ref="Table 3, Fig. 8", classes_rule=f"eNTERFACE->SAVEE: {_SHARED_RULE}. ->EMO-DB: {_TARGET_RULE}",
        notes=("Table 3 prints a 'Sur' (surprise) column for EMO-DB, which has no surprise class; EMO-DB has "
               "boredom and neutral instead. We use EMO-DB's own 7 classes (pass classes=... to change it).")),
    Experiment(
        "table4_speech_baselines", "Speech transfer against fine-tuning and training from scratch", "audio",
        runs=(*_baselines("savee", ("enterface",)), *_baselines("emodb", ("enterface", "savee"), "target")),
        paper_ref="Table 4", classes_rule=f"SAVEE: {_SHARED_RULE}. EMO-DB: {_TARGET_RULE}",
        notes="Table 4 gives 0.85 for A_eNTER->SAV where Table 3 gives 0.71 for the same model."),
    Experiment(
        "fig9_10_pathways",
        "Pathways before and after evolution, on the source (audio eNTERFACE) and the target (audio SAVEE)", "audio",
        runs=(Run("transfer", "savee", ("enterface",)),),
        paper_ref="Figs. 9-10", folds=(0,),
        notes=("Records keep the initial and final populations and the best pathways of the source and the "
               "target, and the frozen source pathway (record['pathways']).")),
    Experiment(
        "convergence", "Held-out accuracy against generation: transfer, fine-tuning and scratch on audio SAVEE",
        "audio",
        runs=(Run("transfer", "savee", ("enterface",)), Run("finetune", "savee", ("enterface",)),
              Run("scratch", "savee")),
        paper_ref="§3.3.2 claim (faster learning than scratch or fine-tuning)"),
    Experiment(
        "real_recordings", "Real recordings: EMO-DB from scratch, fine-tuned and transferred from RAVDESS", "audio",
        runs=(Run("scratch", "emodb", classes="target"),
              Run("finetune", "emodb", ("ravdess",), classes="target"),
              Run("transfer", "emodb", ("ravdess",), classes="target")),
        paper_ref="Table 4(b) on real audio (RAVDESS stands in for eNTERFACE+SAVEE)", classes_rule=_TARGET_RULE,
        protocols=("paper", "speaker"), data="real",
        notes=("EMO-DB here is the processed 22.05 kHz / 2.000 s copy (see data provenance); RAVDESS is the 16 kHz "
               "FLAC copy. The speaker protocol shows what the paper's random segment folds leave out.")),
)}


def experiments_table() -> pd.DataFrame:
    """The registry as a table (one row per experiment), for the book and the CLI."""
    rows = []
    for entry in EXPERIMENTS.values():
        rows.append({
            "id": entry.id, "title": entry.title, "paper": entry.paper_ref, "notebook": entry.notebook,
            "modality": entry.modality,
            "runs": "; ".join(map(str, entry.runs)),
            "protocols": ", ".join(entry.protocols), "data": entry.data, "classes": entry.classes_rule,
            "notes": entry.notes,
        })
    return pd.DataFrame(rows)


def experiment_cells(experiment: str, method: str | None = None, target: str | None = None,
                     sources: Sequence[str] | None = None, modality: str | None = None,
                     config: Config | None = None, classes: str | Iterable[str] | None = None,
                     source_classes: Iterable[str] | None = None, protocols: str | Sequence[str] | None = None,
                     seeds: Iterable[int] = (0,), folds: Iterable[int] | None = None,
                     data: str | None = None) -> list[Cell]:
    """Every cell of an experiment, validated before anything runs.

    For a registered experiment (:data:`EXPERIMENTS`) the runs come from the
    registry, filtered by ``method``, ``target`` and ``sources`` when given;
    other arguments default to the registry's. For any other id, ``method``
    and ``target`` are required and define the single run. ``folds=None``
    means every fold of the protocol (for the speaker protocol this loads the
    target to count its speakers).
    """
    config = config or get_profile("default")
    entry = EXPERIMENTS.get(experiment)
    if entry is not None:
        runs = [r for r in entry.runs
                if (method is None or r.method == method) and (target is None or r.target == target)
                and (sources is None or tuple(sorted(r.sources)) == tuple(sorted(sources)))]
        if not runs:
            raise ConfigError(f"experiment {experiment!r} has no run with method={method!r}, target={target!r}, "
                              f"sources={sources!r}; its runs: "
                              + "; ".join(map(str, entry.runs)))
        modality = modality or entry.modality
        data = data or entry.data
        protocols = protocols or entry.protocols
        folds = folds if folds is not None else entry.folds
    else:
        if method is None or target is None:
            raise ConfigError(f"{experiment!r} is not a registered experiment ({', '.join(EXPERIMENTS)}); "
                              "pass method= and target= to run a custom one")
        runs = [Run(method, target, tuple(sources or ()), classes if isinstance(classes, str) else "shared")]
        modality = modality or "audio"
        data = data or "auto"
        protocols = protocols or (config.protocol,)
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    for protocol in protocols:
        check_choice(protocol, PROTOCOLS, "protocol")
    check_choice(data, DATA_MODES, "data mode")
    seeds = _integers(seeds, "seeds")  # their range is the Config's (seed), checked as each cell is made
    folds = None if folds is None else _integers(folds, "folds")

    cells = []
    for run in runs:
        partners = entry.partners(run.target) if entry is not None and run.classes == "shared" else ()
        rule = classes if classes is not None else run.classes
        for protocol in protocols:
            for seed in seeds:
                first = make_cell(experiment, run.method, run.target, run.sources, modality, config, rule,
                                  source_classes, protocol, seed, 0, data, partners)
                n_folds = protocol_folds(first)
                for fold in folds if folds is not None else range(n_folds):
                    if fold >= n_folds:
                        raise ConfigError(f"{experiment}: {run}: fold {fold} does not exist; the {protocol} "
                                          f"protocol gives {n_folds} folds (0 to {n_folds - 1}) for {run.target}")
                    cells.append(dataclasses.replace(first, fold=fold))
    return cells


def _integers(values: Iterable[Any], what: str) -> list[int]:
    """``values`` (seeds or fold indices) as a list of ints; :class:`ConfigError` when empty or not integers."""
    values = list(values)
    if not values:
        raise ConfigError(f"{what} is empty")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{what} must be integers, got {value!r} ({type(value).__name__})")
    return [int(value) for value in values]


def protocol_folds(cell: Cell) -> int:
    """Number of folds the cell's protocol yields for its target (the speaker protocol loads it to count)."""
    if cell.protocol != "speaker":
        return cell.config.folds
    features, _ = load_dataset(cell.target, cell.modality, cell.config, cell.classes, data=dict(cell.data)[cell.target])
    return min(cell.config.folds, int(features.samples["speaker"].nunique()))


def run_experiment(experiment: str, method: str | None = None, target: str | None = None,
                   sources: Sequence[str] | None = None, modality: str | None = None,
                   config: Config | None = None, classes: str | Iterable[str] | None = None,
                   source_classes: Iterable[str] | None = None, protocols: str | Sequence[str] | None = None,
                   seeds: Iterable[int] = (0,), folds: Iterable[int] | None = None, data: str | None = None,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Run (or load) every cell of an experiment; return their records, in cell order.

    ``run_experiment("table1_visual_transfer", config=get_profile("smoke"))``
    runs the registered experiment; ``run_experiment("mine", "transfer",
    "emodb", sources=("ravdess",))`` a custom one. Parameters as in
    :func:`experiment_cells`; ``progress`` shows a bar over cells. Cells whose
    record exists are loaded, not recomputed; the others are computed in this
    process, or on ``config.workers`` processes (:func:`mtl.sweep.computed_records`).
    """
    cells = experiment_cells(experiment, method, target, sources, modality, config, classes, source_classes,
                             protocols, seeds, folds, data)
    return computed_records(cells, progress=progress, workers=cells[0].config.workers if cells else 1)


# ---------------------------------------------------------------------------
# a grid: experiments x corpora x protocols x seeds x folds
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
    if not experiments:
        raise ConfigError("the grid names no experiment; choose from " + ", ".join(EXPERIMENTS))
    specs = [s if isinstance(s, RunSpec) else parse_run_spec(s) for s in corpora or ()]
    per_cell = {"seed": "seeds (mtl sweep --seeds)", "protocol": "protocols (mtl sweep --protocols)"}
    for name in per_cell.keys() & set(overrides or {}):  # each cell sets its own: an override would be lost
        raise ConfigError(f"{name} is set per cell of the grid, not as a parameter: use {per_cell[name]}")
    config = config or get_profile(profile, **(overrides or {}))
    seeds = list(seeds)  # read once per experiment
    folds = None if folds is None else list(folds)
    common = dict(modality=modality, config=config, protocols=protocols, seeds=seeds, folds=folds, data=data)
    cells: dict[tuple[str, str], Cell] = {}
    for experiment in experiments:
        if experiment in EXPERIMENTS:
            # The runs are chosen before any cell is made: a cell resolves the copies of its corpora
            # (data="real" needs each on disk), so only the corpora of the chosen runs are required.
            runs = [r for r in EXPERIMENTS[experiment].runs
                    if (not methods or r.method in methods) and (not specs or any(s.matches(r) for s in specs))]
            if not runs:
                wanted = [f"method in {list(methods)}"] if methods else []
                wanted += [f"corpora {', '.join(map(str, specs))}"] if specs else []
                raise ConfigError(f"experiment {experiment!r} has no run with {' and '.join(wanted)}; its runs: "
                                  + "; ".join(map(str, EXPERIMENTS[experiment].runs)))
            found = [c for r in runs for c in experiment_cells(experiment, r.method, r.target, r.sources, **common)]
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
    """A grid as a table, one row per cell; ``done``: a usable record of it is stored anywhere.

    Anywhere: its own file, the same computation filed under another
    experiment, or committed (:func:`mtl.records.stored_record`; nothing is set aside).
    """
    return pd.DataFrame([{"experiment": c.experiment, "method": c.method,
                          "sources": "+".join(c.sources) or "-", "target": c.target, "modality": c.modality,
                          "protocol": c.protocol, "seed": c.seed, "fold": c.fold,
                          "data": ",".join(sorted({kind for _, kind in c.data})), "done": stored_record(c) is not None,
                          "key": c.key} for c in cells])

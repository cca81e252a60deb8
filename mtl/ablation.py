"""What closes the gap to the paper's EMO-DB numbers? An ablation grid and a nested model selection.

A faithful linear PathNet trained from scratch on the real EMO-DB copy scores
far below the paper's 0.89 (Table 4, :math:`A_{\\text{EMO}}`). This module
asks which of the reproduction's open choices move that number, on real
EMO-DB (all 7 classes), as experiment cells that write ordinary records:

===================  ===============================================================
factor               levels
===================  ===============================================================
``module_type``      ``"linear"`` (the paper's) or ``"conv"`` (3x3 stride-2 modules)
``protocol``         ``"paper"`` (random folds over segments), ``"utterance"``, ``"speaker"``
``method``           ``"scratch"`` or ``"transfer"`` (from RAVDESS, standing in for eNTERFACE+SAVEE)
``training_budget``  ``"one_pass"`` (T SGD steps) or ``"literal_epochs"`` (T epochs of T steps)
===================  ===============================================================

The *decision level* -- one decision per segment, or per utterance by mean
probability or majority vote -- is a fifth factor that costs nothing: every
record holds all three (:mod:`mtl.evaluation`).

Cells. :func:`ablation_cells` lists the grid as :class:`~mtl.experiments.Cell`
objects of experiment ``"ablation"``: records land in
``results_dir()/runs/ablation/`` and :func:`mtl.sweep.run_sweep` runs them in
parallel and resumably. :func:`estimate_cost` states what a grid costs in SGD
steps before anything runs (``literal_epochs`` trains T times more steps per
pathway: T = 27 on the EMO-DB copy here, about 210 for its RAVDESS source model).

Tables. :func:`ablation_table` gives mean ± sd over folds for every setting
and decision level, with paired tests of transfer against scratch over the
same folds (paired t-test and Wilcoxon signed-rank).

Model selection without touching test folds. :class:`NestedSelection` picks
among candidate settings (e.g. ``module_type`` x ``training_budget``) for each
outer fold by inner validation folds built from that fold's training part only,
grouped as the protocol groups (speakers for ``"speaker"``); the chosen setting
is then refitted on the whole outer training part -- which is exactly the
ablation cell of that outer fold -- and scored once on the outer test fold.
Inner runs are :class:`InnerCell` objects with records under
``results_dir()/runs/ablation-nested/``.

:func:`ablation_summary` says in plain words which settings, if any, reach the
paper's numbers under the paper's own protocol, and the best speaker-independent
unweighted average recall chosen on inner validation folds.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import itertools
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl.config import PROTOCOLS, TRAINING_BUDGETS, MODULE_TYPES, Config, differences_from_defaults, get_profile
from mtl.errors import ConfigError
from mtl.io import file_lock, read_json, stable_hash, write_json
from mtl.paths import cache_dir, results_dir

__all__ = [
    "ABLATION", "NESTED", "FACTORS", "DECISIONS", "ablation_config", "ablation_cells", "cell_factors",
    "steps_per_cell", "estimate_cost", "cost_summary", "measure_step_seconds", "load_ablation_records",
    "ablation_table", "paired_test", "candidate_grid", "InnerCell", "run_inner_cell", "run_cells",
    "NestedSelection", "saved_selections", "AblationSummary", "ablation_summary", "DEFAULT_CANDIDATES",
    "AblationPlan", "plan_ablation", "ANCHORS", "anchor_records", "CONTRASTS", "factor_effects",
    "records_overview",
]

ABLATION = "ablation"
"""Experiment id of the ablation grid's cells (records in ``results_dir()/runs/ablation/``)."""
NESTED = "ablation-nested"
"""Experiment id of the inner-validation runs of :class:`NestedSelection`."""

FACTORS: dict[str, tuple[str, ...]] = {
    "module_type": MODULE_TYPES,
    "protocol": PROTOCOLS,
    "method": ("scratch", "transfer"),
    "training_budget": TRAINING_BUDGETS,
}
"""Factors of the grid and their levels (all of them by default)."""

DECISIONS: dict[str, str] = {
    "segment": "accuracy",
    "utterance (mean prob.)": "utt_accuracy_mean_prob",
    "utterance (vote)": "utt_accuracy_vote",
    "segment UAR": "uar",
    "utterance UAR (mean prob.)": "utt_uar",
}
"""Decision level -> record metric (:func:`mtl.results.load_records` column); all come from one run."""

TARGET = "emodb"
DEFAULT_SOURCES: tuple[str, ...] = ("ravdess",)
BUDGET_RULES = ("as_configured", "equal_steps")
SOURCE_BUDGETS = ("one_pass", "same")


# ---------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------
def _check_one_of(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raise :class:`ConfigError` naming ``name`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def _check_factors(factors: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """Every factor with its levels (defaults filled in), validated."""
    from mtl.experiments import METHODS

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


def _generations_for(budget: str, base: Config, generations: int | Mapping[str, int] | None) -> int:
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
        Further :class:`~mtl.config.Config` fields, applied last.
    """
    base = get_profile(profile)
    changes = {"module_type": module_type, "training_budget": training_budget,
               "generations": _generations_for(training_budget, base, generations), **dict(overrides or {})}
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
        T times more SGD steps per pathway (cost: :func:`estimate_cost`).
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
        steps per pathway on RAVDESS (see :func:`estimate_cost`).

    Returns
    -------
    list of Cell
        Ordered by protocol, module type, budget, method, seed, fold.

    Notes
    -----
    A profile that fixes ``steps_per_pathway`` (``smoke``) trains both
    budgets for the same steps.
    """
    from mtl.experiments import experiment_cells

    chosen = _check_factors(factors)
    _check_one_of("budget", budget, BUDGET_RULES)
    _check_one_of("source_budget", source_budget, SOURCE_BUDGETS)
    seeds = [int(s) for s in seeds]
    folds = None if folds is None else [int(f) for f in folds]
    cells = []
    for protocol, module_type, training_budget, method in itertools.product(
            chosen["protocol"], chosen["module_type"], chosen["training_budget"], chosen["method"]):
        config = ablation_config(profile, module_type, training_budget, generations, overrides)
        if budget == "equal_steps" and training_budget == "literal_epochs":
            one_pass = config.replace(training_budget="one_pass")
            per_pass = one_pass.steps_for(_mean_train_size(config, data))
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


def cell_factors(cell: Any) -> dict[str, Any]:
    """The ablation factors of a cell (or :class:`InnerCell`), plus G and the inner fold if any."""
    return {"protocol": cell.protocol, "module_type": cell.config.module_type,
            "training_budget": cell.config.training_budget, "method": cell.method,
            "generations": cell.config.generations, "seed": cell.seed, "fold": cell.fold,
            "inner_fold": getattr(cell, "inner_fold", None)}


# ---------------------------------------------------------------------------
# what a grid costs
# ---------------------------------------------------------------------------
def _where() -> str:
    """Part of every in-memory cache key: the folders data and features come from."""
    from mtl.paths import data_root

    return f"{data_root()}|{cache_dir()}"


@functools.lru_cache(maxsize=32)
def _dataset_size(corpus: str, classes: tuple[str, ...] | None, config: Config, data: str, where: str) -> int:
    from mtl.experiments import load_dataset

    features, _ = load_dataset(corpus, "audio", config, classes, data=data)
    return int(len(features))


def _mean_train_size(config: Config, data: str) -> int:
    n = _dataset_size(TARGET, None, _feature_key_config(config), data, _where())
    return max(1, round(n * (config.folds - 1) / config.folds))


@functools.lru_cache(maxsize=64)
def _fold_sizes(target: str, modality: str, classes: tuple[str, ...], kind: str, config: Config,
                protocol: str, seed: int, where: str) -> tuple[tuple[int, int], ...]:
    """``(n_train, n_test)`` of every outer fold (config: its feature fields and ``folds`` matter)."""
    from mtl.evaluation import make_folds
    from mtl.experiments import class_indices, load_dataset

    features, _ = load_dataset(target, modality, config, classes, data=kind)
    samples = features.samples.reset_index(drop=True)
    folds = make_folds(samples, class_indices(samples, classes), protocol, config.folds, seed)
    return tuple((len(train), len(test)) for train, test in folds)


def _split_sizes(cell: Any) -> tuple[int, int]:
    """``(n_train, n_held_out)`` of a cell: its outer fold, or its inner fold for an :class:`InnerCell`."""
    if isinstance(cell, InnerCell):
        train, held_out = cell.split()[0:2]
        return len(train), len(held_out)
    sizes = _fold_sizes(cell.target, cell.modality, cell.classes, dict(cell.data)[cell.target],
                        _feature_key_config(cell.config), cell.protocol, cell.seed, _where())
    if cell.fold >= len(sizes):
        raise ConfigError(f"{cell.describe()}: fold {cell.fold} does not exist ({len(sizes)} folds)")
    return sizes[cell.fold]


def _feature_key_config(config: Config) -> Config:
    """``config`` with the fields that cannot change features or folds reset (better cache hits)."""
    return get_profile("paper").replace(**{k: getattr(config, k) for k in (
        "input_shape", "sample_rate", "n_mels", "fmin", "fmax", "win_ms", "hop_ms", "segment_frames",
        "segment_overlap", "face_size", "frame_step", "synthetic_size", "folds")})


def _source_size(cell: Any) -> int:
    from mtl.corpora.labels import CLASS_SETS

    kinds = dict(cell.data)
    return sum(_count_segments(source, tuple(c for c in cell.source_classes if c in CLASS_SETS[source]),
                               _feature_key_config(cell.config), kinds[source], _where()) for source in cell.sources)


@functools.lru_cache(maxsize=32)
def _count_segments(corpus: str, classes: tuple[str, ...], config: Config, kind: str, where: str) -> int:
    """Log-Mel segments a corpus yields, from its files' durations (headers only, no decoding).

    Counting beats extracting for a cost estimate: RAVDESS's features take
    minutes to extract, its headers a second to read. Files that will be
    rejected (digital silence) are counted too. Containers soundfile cannot
    read (video) fall back to the extracted features.
    """
    import soundfile

    from mtl.corpora import load_corpus
    from mtl.experiments import corpus_root
    from mtl.features.audio import SOUNDFILE_SUFFIXES, frame_params, segment_count

    table = load_corpus(corpus, root=corpus_root(corpus, kind, config), modality="audio")
    paths = table.loc[table["emotion"].isin(classes), "path"].astype(str)
    if not all(Path(path).suffix.lower() in SOUNDFILE_SUFFIXES for path in paths):
        return _dataset_size(corpus, classes, config, kind, where)
    win, hop, _ = frame_params(config)
    total = 0
    for path in paths:
        info = soundfile.info(path)
        n = int(round(info.frames * config.sample_rate / info.samplerate))
        total += segment_count(1 + (n - win) // hop if n >= win else 0, config)
    return total


def _evaluations(config: Config) -> int:
    """Held-out evaluations of one run: every ``eval_every`` generations and the last."""
    if not config.eval_every:
        return 1 if config.generations else 0
    return config.generations // config.eval_every + (config.generations % config.eval_every != 0)


def steps_per_cell(cell: Any, n_train: int | None = None, n_held_out: int | None = None,
                   n_source: int | None = None) -> dict[str, Any]:
    """SGD steps and forward passes one cell costs.

    An evolution trains K pathways of T SGD steps per generation, and after
    each pathway's training evaluates it on the whole training part (its
    fitness); fine-tuning trains G*K*T steps. A transfer or fine-tuning cell
    also needs its source model, trained once per source key and shared by
    every cell with that key.

    Parameters
    ----------
    cell : Cell or InnerCell
    n_train, n_held_out : int or None
        Training and held-out sizes, samples; None computes them from the
        cell's data and folds (loads the features, cached on disk).
    n_source : int or None
        Source samples; None counts them (transfer and fine-tuning only).

    Returns
    -------
    dict
        ``n_train``, ``T`` (steps per pathway), ``target_steps`` (G*K*T),
        ``target_forward`` (samples passed forward only: fitness and held-out
        evaluations), ``source_key``, ``n_source``, ``source_steps``,
        ``source_forward`` (0 for scratch).
    """
    config = cell.config
    if n_train is None or n_held_out is None:
        measured_train, measured_held_out = _split_sizes(cell)
        n_train = measured_train if n_train is None else n_train
        n_held_out = measured_held_out if n_held_out is None else n_held_out
    T = config.steps_for(int(n_train))
    budget = config.generations * config.tournament
    fitness = 0 if cell.method == "finetune" else budget * int(n_train)
    target_forward = fitness + _evaluations(config) * int(n_held_out)
    source_steps = source_forward = 0
    if cell.source_key is not None:
        n_source = _source_size(cell) if n_source is None else int(n_source)
        source_config = cell.source_training_config
        source_budget = source_config.generations * source_config.tournament
        source_steps = source_budget * source_config.steps_for(n_source)
        source_forward = source_budget * n_source
    return {"n_train": int(n_train), "T": T, "target_steps": budget * T, "target_forward": target_forward,
            "source_key": cell.source_key, "n_source": n_source if cell.source_key is not None else 0,
            "source_steps": source_steps, "source_forward": source_forward}


def estimate_cost(cells: Sequence[Any], step_seconds: Mapping[str, tuple[float, float]] | None = None,
                  n_train: int | None = None, n_held_out: int | None = None,
                  n_source: int | None = None) -> pd.DataFrame:
    """The cost of a list of cells, one row per cell, before anything runs.

    Parameters
    ----------
    cells : sequence of Cell or InnerCell
    step_seconds : mapping or None
        ``{module_type: (seconds per SGD step, seconds per sample passed
        forward)}`` measured on the machine that will run the grid
        (:func:`measure_step_seconds`); None leaves the seconds columns NaN.
    n_train, n_held_out, n_source : int or None
        Sizes for every cell (see :func:`steps_per_cell`); None measures each.

    Returns
    -------
    DataFrame
        The factors (:func:`cell_factors`), the columns of
        :func:`steps_per_cell`, ``new_source`` (True on the first cell of each
        source key: only that one pays ``source_steps``), ``done`` (record
        exists), ``seconds`` (target plus any new source, one thread) and
        ``key``.
    """
    rows, seen, index = [], set(), _record_index()
    for cell in cells:
        cost = steps_per_cell(cell, n_train, n_held_out, n_source)
        new_source = cost["source_key"] is not None and cost["source_key"] not in seen
        seen.add(cost["source_key"])
        seconds = float("nan")
        if step_seconds is not None:
            per_step, per_forward = step_seconds[cell.config.module_type]
            seconds = cost["target_steps"] * per_step + cost["target_forward"] * per_forward
            if new_source:
                seconds += cost["source_steps"] * per_step + cost["source_forward"] * per_forward
        rows.append({**cell_factors(cell), **cost, "new_source": new_source, "done": _find_record(cell, index) is not None,
                     "seconds": seconds, "key": cell.key})
    return pd.DataFrame(rows)


def cost_summary(cost: pd.DataFrame, workers: int = 1) -> pd.DataFrame:
    """Totals of :func:`estimate_cost` per protocol x module x budget x method, and overall.

    Columns: ``cells``, ``done``, ``target_steps``, ``source_steps`` (new
    source models only), ``steps`` (both), ``cpu_hours`` (one thread, NaN
    without ``step_seconds``) and ``wall_hours`` with ``workers`` parallel
    one-thread tasks (cells are independent; source models come first).
    """
    if cost.empty:
        return pd.DataFrame(columns=["cells", "done", "target_steps", "source_steps", "steps", "cpu_hours",
                                     "wall_hours"])
    frame = cost.assign(source_paid=np.where(cost["new_source"], cost["source_steps"], 0))
    keys = [k for k in ("protocol", "module_type", "training_budget", "method") if k in frame]
    grouped = frame.groupby(keys, sort=False).agg(
        cells=("key", "size"), done=("done", "sum"), target_steps=("target_steps", "sum"),
        source_steps=("source_paid", "sum"), seconds=("seconds", lambda s: s.sum(min_count=1))).reset_index()
    total = {k: "all" for k in keys}
    total.update(cells=int(grouped["cells"].sum()), done=int(grouped["done"].sum()),
                 target_steps=int(grouped["target_steps"].sum()), source_steps=int(grouped["source_steps"].sum()),
                 seconds=grouped["seconds"].sum(min_count=1))
    out = pd.concat([grouped, pd.DataFrame([total])], ignore_index=True)
    out["steps"] = out["target_steps"] + out["source_steps"]
    out["cpu_hours"] = out["seconds"] / 3600
    out["wall_hours"] = out["cpu_hours"] / max(1, int(workers))
    return out.drop(columns="seconds")


def measure_step_seconds(module_types: Sequence[str] = MODULE_TYPES, config: Config | None = None,
                         steps: int = 20, n_samples: int = 512, n_classes: int = 7,
                         seed: int = 0) -> dict[str, tuple[float, float]]:
    """Seconds per SGD step and per sample passed forward, on this machine, now, in this process.

    Trains one scratch pathway for ``steps`` steps and evaluates it on
    ``n_samples`` random samples, per module type, with the configuration's
    shapes (default the paper's; torch uses however many threads it is set
    to). The timings feed :func:`estimate_cost`; on a shared machine they
    vary with the load, so measure where the grid will run.
    """
    import torch

    from mtl.pathnet import PathNet, random_genotype
    from mtl.pathnet.evolution import BatchStream, train_steps

    base = config or get_profile("paper")
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(rng.standard_normal((n_samples, base.input_dim), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, n_classes, n_samples)).long()
    out = {}
    for module_type in module_types:
        config = base.replace(module_type=module_type)
        net = PathNet(config)
        net.add_head("t", n_classes)
        genotype = random_genotype(config, rng)
        stream = BatchStream(X, y, config.batch_size, torch.Generator().manual_seed(seed))
        train_steps(net, genotype, "t", None, stream, 2, config)  # warm-up: allocations, kernel choice
        start = time.perf_counter()
        train_steps(net, genotype, "t", None, stream, steps, config)
        per_step = (time.perf_counter() - start) / steps
        start = time.perf_counter()
        net.accuracy(X, y, genotype, "t")
        per_forward = (time.perf_counter() - start) / n_samples
        out[module_type] = (per_step, per_forward)
    return out


# ---------------------------------------------------------------------------
# records and tables
# ---------------------------------------------------------------------------
_SETTING_FIELDS = ("seed", "profile", "checkpoint_every", "protocol", "module_type", "training_budget",
                   "generations")


def _with_factors(frame: pd.DataFrame) -> pd.DataFrame:
    """Factor columns from each record's configuration, and an id of everything else in it.

    The id hashes the fields that differ from the paper's defaults (as cell
    keys do), so a record written before a field existed matches one written
    after with that field at its default.
    """
    if frame.empty:
        return frame.assign(module_type=[], training_budget=[], inner_fold=[], base_id=[])
    configs = frame["record"].map(lambda r: r.get("config", {}))
    return frame.assign(
        module_type=configs.map(lambda c: c.get("module_type", "linear")),
        training_budget=configs.map(lambda c: c.get("training_budget", "one_pass")),
        inner_fold=frame["record"].map(lambda r: r.get("inner_fold")),
        base_id=configs.map(lambda c: stable_hash(differences_from_defaults(c, _SETTING_FIELDS), length=8)))


def _record_index() -> dict[str, Path]:
    """Cell key -> record file, over :func:`mtl.results.default_search_path` (local runs first)."""
    from mtl.results import default_search_path

    index: dict[str, Path] = {}
    for folder in default_search_path():
        for path in sorted(folder.rglob("*.json")):
            index.setdefault(path.stem, path)
    return index


def _find_record(cell: Any, index: Mapping[str, Path] | None) -> Path | None:
    if cell.record_path.is_file():
        return cell.record_path
    return (index or {}).get(cell.key)


def load_ablation_records(cells: Sequence[Any] | None = None, experiment: str = ABLATION) -> pd.DataFrame:
    """Records of the ablation, one row per cell, with factor columns.

    ``cells`` given: the records of those cells that exist, wherever they are
    (a cell computed for another experiment, or committed under
    ``results/real``, counts too). Otherwise every record of ``experiment``
    under :func:`mtl.results.default_search_path` (local runs and committed
    real-data runs), whatever its profile. Columns are
    :func:`mtl.results.load_records`'s plus ``module_type``,
    ``training_budget``, ``inner_fold`` and ``base_id`` (a hash of the rest of
    the configuration, so rows that differ in anything else stay apart).
    """
    from mtl.results import load_records

    if cells is None:
        return _with_factors(load_records(experiment=experiment))
    index = _record_index()
    paths = [path for path in (_find_record(cell, index) for cell in cells) if path is not None]
    frame = load_records(paths) if paths else load_records([])
    return _with_factors(frame.drop_duplicates("cell_key").reset_index(drop=True) if not frame.empty else frame)


def records_overview(records: pd.DataFrame) -> pd.DataFrame:
    """What a set of records was computed with: one row per experiment x setting x method.

    Columns: ``experiment``, ``protocol``, ``module_type``,
    ``training_budget``, ``generations``, ``method``, ``stage`` (``outer``
    or ``inner`` for nested-selection runs), ``runs``, ``folds`` (outer
    folds present), ``seeds``, ``data`` (real or synthetic, and a digest of the corpus copy), ``commit`` (of the
    code, ``+dirty`` for uncommitted changes) and ``cpu_minutes`` (target
    training, one thread; source models not included).
    """
    columns = ["experiment", "protocol", "module_type", "training_budget", "generations", "method", "stage", "runs",
               "folds", "seeds", "data", "commit", "cpu_minutes"]
    if records is None or records.empty:
        return pd.DataFrame(columns=columns)

    def commit(record: Mapping[str, Any]) -> str:
        code = record.get("code") or {}
        return f"{(code.get('commit') or 'unknown')[:7]}{'+dirty' if code.get('dirty') else ''}"

    frame = records.assign(stage=np.where(records["inner_fold"].isna(), "outer", "inner"),
                           commit=records["record"].map(commit))
    rows = []
    keys = ["experiment", "protocol", "module_type", "training_budget", "generations", "method", "stage"]
    for key, group in frame.groupby(keys, sort=False, dropna=False):
        rows.append(dict(zip(keys, key), runs=int(len(group)), folds=int(group["fold"].nunique()),
                         seeds=", ".join(map(str, sorted(group["seed"].unique()))),
                         data=", ".join(sorted({f"{kind} (content {str(digest)[:8]})" for kind, digest in
                                                zip(group["data_kind"], group["content_hash"])})),
                         commit=", ".join(sorted(group["commit"].unique())),
                         cpu_minutes=float(pd.to_numeric(group["target_seconds"], errors="coerce").sum() / 60)))
    return pd.DataFrame(rows, columns=columns)


ANCHORS: tuple[str, ...] = ("real_recordings",)
"""Experiments whose EMO-DB scratch and RAVDESS-transfer records are ablation settings too
(``real_recordings``: linear modules, one pass, the paper's G = 200)."""


def anchor_records(experiments: Sequence[str] = ANCHORS) -> pd.DataFrame:
    """Records of other experiments that are settings of the ablation, with factor columns.

    Kept: EMO-DB targets with all 7 classes, from scratch or transferred
    from RAVDESS alone -- the same cells as the grid's, computed elsewhere
    (e.g. at another G). Columns as :func:`load_ablation_records`.
    """
    from mtl.corpora.labels import CLASS_SETS
    from mtl.results import load_records

    frame = load_records(experiment=list(experiments)) if experiments else load_records([])
    if frame.empty:
        return _with_factors(frame)
    keep = ((frame["target"] == TARGET) & frame["method"].isin(["scratch", "transfer"])
            & frame["sources"].isin(["", "+".join(DEFAULT_SOURCES)])
            & (frame["classes"] == ",".join(CLASS_SETS[TARGET])))
    return _with_factors(frame[keep].reset_index(drop=True))


def _outer_only(records: pd.DataFrame | None) -> pd.DataFrame:
    """``records`` without the nested selections' inner-fold rows (an empty frame for None)."""
    frame = records if records is not None else pd.DataFrame()
    return frame[frame["inner_fold"].isna()] if not frame.empty and "inner_fold" in frame else frame


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Paired t-test and Wilcoxon signed-rank test of ``b`` against ``a`` (same folds, same order).

    Returns ``n`` (pairs), ``mean_difference`` (b - a), ``t_p`` and
    ``wilcoxon_p`` (two-sided). A p-value is NaN when the test is undefined:
    fewer than two pairs, or every difference zero (the t-test also when the
    differences are all equal). With 5 folds the exact Wilcoxon test cannot go
    below p = 0.0625: read it as a sign of direction, not of significance.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ConfigError(f"paired_test needs as many values on both sides, got {len(a)} and {len(b)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    out = {"n": int(len(a)), "mean_difference": float(np.mean(b - a)) if len(a) else float("nan"),
           "t_p": float("nan"), "wilcoxon_p": float("nan")}
    differences = b - a
    if len(a) < 2 or np.allclose(differences, 0):
        return out
    if not np.allclose(differences, differences[0]):
        out["t_p"] = float(stats.ttest_rel(b, a).pvalue)
    out["wilcoxon_p"] = float(stats.wilcoxon(b, a).pvalue)
    return out


def _mean_sd(values: pd.Series) -> tuple[float, float, int]:
    values = pd.to_numeric(values, errors="coerce").dropna()
    mean = float(values.mean()) if len(values) else float("nan")
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return mean, sd, int(len(values))


def ablation_table(records: pd.DataFrame, decisions: Sequence[str] | None = ("segment", "utterance (mean prob.)"),
                   baseline: str = "scratch", treatment: str = "transfer", digits: int = 2) -> pd.DataFrame:
    """Mean ± sd over folds of every setting and decision level, with transfer tested against scratch.

    Parameters
    ----------
    records : DataFrame
        From :func:`load_ablation_records` (outer-fold records; inner-fold
        rows are ignored).
    decisions : sequence of str or None, default segment and utterance (mean prob.)
        Keys of :data:`DECISIONS`; None: all of them.
    baseline, treatment : str, default "scratch" and "transfer"
        The methods compared. Pairs are records of the same setting, seed and
        fold: the same training and test samples.
    digits : int, default 2
        Decimals of the ``"mean ± sd"`` text columns.

    Returns
    -------
    DataFrame
        One row per protocol x module type x budget x decision (and G,
        profile, data copy and configuration id when they vary): ``<method>`` (text, mean ±
        sd over folds and seeds), ``<method>_mean``, ``<method>_sd``,
        ``<method>_n`` for both methods, and the paired comparison over the
        folds both have: ``n_pairs``, ``difference`` (treatment - baseline),
        ``t_p``, ``wilcoxon_p``.
    """
    from mtl.results import format_mean_sd

    decisions = list(DECISIONS) if decisions is None else list(decisions)
    unknown = [d for d in decisions if d not in DECISIONS]
    if unknown:
        raise ConfigError(f"unknown decision level(s) {', '.join(map(repr, unknown))}; choose from "
                          f"{', '.join(DECISIONS)}")
    columns = ["protocol", "module_type", "training_budget", "decision", baseline, treatment, "n_pairs",
               "difference", "t_p", "wilcoxon_p"]
    if records is None or records.empty:
        return pd.DataFrame(columns=columns)
    frame = _outer_only(records)
    setting = ["protocol", "module_type", "training_budget", "generations", "profile", "data_kind", "content_hash",
               "base_id"]
    rows = []
    for key, group in frame.groupby(setting, dropna=False, sort=False):
        for decision in decisions:
            metric = DECISIONS[decision]
            row = dict(zip(setting, key), decision=decision, metric=metric)
            by_method = {}
            for method in (baseline, treatment):
                part = group[group["method"] == method]
                mean, sd, n = _mean_sd(part[metric])
                row.update({method: format_mean_sd(mean, sd, digits), f"{method}_mean": mean, f"{method}_sd": sd,
                            f"{method}_n": n})
                by_method[method] = part.set_index(["seed", "fold"])[metric].astype(float)
            paired = pd.concat(by_method, axis=1, join="inner").dropna()
            test = paired_test(paired[baseline], paired[treatment]) if len(paired) else paired_test([], [])
            row.update(n_pairs=test["n"], difference=test["mean_difference"], t_p=test["t_p"],
                       wilcoxon_p=test["wilcoxon_p"])
            rows.append(row)
    table = pd.DataFrame(rows)
    varying = [c for c in ("generations", "profile", "data_kind", "content_hash", "base_id")
               if table[c].nunique(dropna=False) > 1]
    # The factors' own level order (the paper's level first), then G: anchors at another G follow their setting.
    order = {"protocol": PROTOCOLS, "module_type": MODULE_TYPES, "training_budget": TRAINING_BUDGETS}
    table = table.sort_values(["protocol", "module_type", "training_budget", "generations"], kind="stable",
                              key=lambda s: s.map({v: i for i, v in enumerate(order[s.name])}) if s.name in order
                              else pd.to_numeric(s, errors="coerce"))
    keep = ["protocol", "module_type", "training_budget", *varying, "decision", baseline, treatment,
            f"{baseline}_mean", f"{baseline}_sd", f"{baseline}_n", f"{treatment}_mean", f"{treatment}_sd",
            f"{treatment}_n", "n_pairs", "difference", "t_p", "wilcoxon_p"]
    return table[keep].reset_index(drop=True)


CONTRASTS: tuple[tuple[str, str, str], ...] = (
    ("module_type", "linear", "conv"),
    ("training_budget", "one_pass", "literal_epochs"),
    ("method", "scratch", "transfer"),
)
"""Paired contrasts of :func:`factor_effects`: (factor, level a, level b); each row reports b - a."""
_SETTING_KEYS = ("protocol", "module_type", "training_budget", "method", "generations", "profile", "data_kind",
                 "content_hash", "base_id")
_UTTERANCE_OF = {"accuracy": "utt_accuracy_mean_prob", "uar": "utt_uar"}


def _effect_row(factor: str, comparison: str, differences: pd.Series, keys: list[str]) -> dict[str, Any]:
    """One row of :func:`factor_effects` from paired differences indexed by setting keys (+ seed, fold)."""
    per_setting = differences.groupby(level=keys).mean() if len(differences) else differences
    return {"factor": factor, "comparison": comparison, "settings": int(len(per_setting)),
            "pairs": int(len(differences)),
            "mean_difference": float(differences.mean()) if len(differences) else float("nan"),
            "sd": float(differences.std(ddof=1)) if len(differences) > 1 else float("nan"),
            "smallest": float(per_setting.min()) if len(per_setting) else float("nan"),
            "largest": float(per_setting.max()) if len(per_setting) else float("nan"),
            "b_better": float((differences > 0).mean()) if len(differences) else float("nan")}


def factor_effects(records: pd.DataFrame, metric: str = "accuracy", experiment: str = ABLATION) -> pd.DataFrame:
    """How far each factor moves a score, as differences paired over the grid.

    Parameters
    ----------
    records : DataFrame
        :func:`load_ablation_records` (inner-fold rows are ignored).
    metric : {"accuracy", "uar"}, default "accuracy"
        Segment-level score; the decision-level row compares it with its
        utterance-level counterpart (mean probability).
    experiment : str, default "ablation"
        Only this experiment's records are paired: anchors computed elsewhere
        (another G) have no partner in the grid.

    Returns
    -------
    DataFrame
        One row per contrast ``a -> b`` (:data:`CONTRASTS`, then the decision
        level, then the protocols): ``settings`` (matched settings),
        ``pairs``, ``mean_difference`` (b - a over pairs), ``sd``,
        ``smallest`` and ``largest`` (over the settings' mean differences),
        ``b_better`` (share of pairs where b scores higher).

    Notes
    -----
    A pair is two records that differ in the factor only -- same other
    settings, seed and fold, so the same training and test samples. The
    training budget is paired across G, which its two levels set apart by
    design (``budget="equal_steps"``). The decision level is paired within
    each record. A protocol changes the folds themselves, so protocols are
    compared between setting means (speaker or utterance minus paper, for
    settings alike in everything else); there ``pairs`` counts settings.
    """
    _check_one_of("metric", metric, tuple(_UTTERANCE_OF))
    frame = _outer_only(records)
    if not frame.empty and "experiment" in frame:
        frame = frame[frame["experiment"] == experiment]
    columns = ["factor", "comparison", "settings", "pairs", "mean_difference", "sd", "smallest", "largest",
               "b_better"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(**{k: frame[k].astype(str) for k in _SETTING_KEYS})
    rows = []
    for factor, a, b in CONTRASTS:
        keys = [k for k in _SETTING_KEYS if k != factor and not (factor == "training_budget" and k == "generations")]
        index = [*keys, "seed", "fold"]
        sides = {}
        for level in (a, b):
            part = frame[frame[factor] == level].set_index(index)[metric].astype(float)
            sides[level] = part[~part.index.duplicated()]
        paired = pd.concat(sides, axis=1, join="inner").dropna()
        rows.append(_effect_row(factor, f"{a} -> {b}", paired[b] - paired[a], keys))
    utterance = frame.set_index([*_SETTING_KEYS, "seed", "fold"])
    differences = (utterance[_UTTERANCE_OF[metric]].astype(float) - utterance[metric].astype(float)).dropna()
    rows.append(_effect_row("decision", "segment -> utterance (mean prob.)", differences, list(_SETTING_KEYS)))
    means = frame.groupby(list(_SETTING_KEYS))[metric].mean()
    keys = [k for k in _SETTING_KEYS if k != "protocol"]
    by_protocol = means.unstack("protocol") if len(means) else pd.DataFrame()
    for other in ("utterance", "speaker"):
        if "paper" in by_protocol and other in by_protocol:
            differences = (by_protocol[other] - by_protocol["paper"]).dropna()
        else:
            differences = pd.Series(dtype=float)
        if len(differences):
            differences.index = differences.index.set_names(keys)
        rows.append(_effect_row("protocol", f"paper -> {other}", differences, keys))
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------
# nested model selection: inner cells
# ---------------------------------------------------------------------------
def candidate_grid(**levels: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of some settings, in order: candidates for :class:`NestedSelection`.

    >>> candidate_grid(module_type=["linear", "conv"], lr=[0.02])
    [{'module_type': 'linear', 'lr': 0.02}, {'module_type': 'conv', 'lr': 0.02}]
    """
    names = list(levels)
    values = [(v,) if isinstance(v, str) else tuple(v) for v in levels.values()]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


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
                            dict(self.outer.data)[self.outer.target], _feature_key_config(self.outer.config),
                            self.outer.protocol, self.outer.seed, self.outer.fold, self.n_inner, self.inner_fold,
                            _where())

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
    from mtl.experiments import SCHEMA_VERSION, _remove_checkpoint, code_version, load_dataset, train_target

    if cell.record_path.is_file():
        return read_json(cell.record_path)
    outer = cell.outer
    train, held_out, samples, y = cell.split()
    features, provenance = load_dataset(outer.target, outer.modality, _feature_key_config(outer.config),
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


# ---------------------------------------------------------------------------
# nested model selection
# ---------------------------------------------------------------------------
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

    Use :meth:`inner_cells` (run them with :func:`run_cells`), then
    :meth:`selection` and :meth:`refit_cells`, or :meth:`run` for all of it;
    :meth:`results` reads what is there.
    """

    def __init__(self, candidates: Sequence[Mapping[str, Any]], profile: str = "paper", protocol: str = "speaker",
                 method: str = "scratch", sources: Sequence[str] = DEFAULT_SOURCES, seeds: Iterable[int] = (0,),
                 outer_folds: Iterable[int] | None = None, n_inner: int | None = None, data: str = "real",
                 metric: str = "uar", overrides: Mapping[str, Any] | None = None, experiment: str = ABLATION):
        from mtl.experiments import CORPORA, DATA_MODES, METHODS

        self.candidates = [dict(c) for c in candidates]
        if not self.candidates:
            raise ConfigError("NestedSelection needs at least one candidate setting")
        _check_one_of("protocol", protocol, PROTOCOLS)
        _check_one_of("metric", metric, _SCORES)
        _check_one_of("data", data, DATA_MODES)
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

    def outer_cell(self, candidate: int, seed: int, fold: int) -> Any:
        """The ablation cell of candidate number ``candidate`` on outer fold ``fold``: its refit.

        Built without looking for the data (``data`` is ``"real"`` or
        ``"synthetic"``), so committed records can be read where the corpora are absent.
        """
        from mtl.experiments import Cell, make_cell, resolve_classes

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
            self._outer_folds = list(range(len(_fold_sizes(
                first.target, first.modality, first.classes, dict(first.data)[TARGET],
                _feature_key_config(first.config), self.protocol, first.seed, _where()))))
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
        path = results_dir() / "runs" / NESTED / "selections" / f"{self.id}.json"
        write_json(path, {"selection": self.to_dict(), "created": _now()})
        return path

    def inner_cells(self) -> list[InnerCell]:
        """Every inner run: candidate x seed x outer fold x inner fold."""
        return [InnerCell(self.outer_cell(c, seed, fold), inner, self.n_inner)
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
        rows, index = [], _record_index()
        for seed in self.seeds:
            for fold in self.outer_folds():
                for c in range(len(self.candidates)):
                    cells = [InnerCell(self.outer_cell(c, seed, fold), i, self.n_inner) for i in range(self.n_inner)]
                    found = [_find_record(cell, index) for cell in cells]
                    scores = [_record_score(read_json(path), self.metric) for path in found if path is not None]
                    mean, sd, n = _mean_sd(pd.Series(scores, dtype=float))
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
        """The outer cells of the chosen candidates (outer folds whose inner runs are complete)."""
        chosen = self.selection()
        chosen = chosen[chosen["chosen"]]
        return [self.outer_cell(int(r.candidate_index), int(r.seed), int(r.fold)) for r in chosen.itertuples()]

    def run(self, workers: int = 1, progress: bool = False) -> pd.DataFrame:
        """Run the missing inner cells, choose, run the missing refits; return :meth:`results`.

        Failed cells are reported (logged in the returned frame's ``status``)
        and leave their outer fold unchosen; rerunning completes them.
        """
        self.save()
        run_cells(self.inner_cells(), workers=workers, progress=progress)
        run_cells(self.refit_cells(), workers=workers, progress=progress)
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
        refits = {(int(r.seed), int(r.fold)): self.outer_cell(int(r.candidate_index), int(r.seed), int(r.fold))
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
    from mtl.results import default_search_path

    found: dict[str, NestedSelection] = {}
    for folder in default_search_path():
        for path in sorted(folder.rglob(f"{NESTED}/selections/*.json")):
            selection = NestedSelection.from_dict(read_json(path)["selection"])
            found.setdefault(selection.id, selection)
    return list(found.values())


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _record_score(record: Mapping[str, Any], metric: str) -> float:
    metrics = record["metrics"]
    utterance = metrics.get("utterance", {})
    value = {"accuracy": metrics.get("accuracy"), "uar": metrics.get("uar"),
             "utt_accuracy_mean_prob": utterance.get("mean_prob", {}).get("accuracy"),
             "utt_accuracy_vote": utterance.get("vote", {}).get("accuracy"),
             "utt_uar": utterance.get("mean_prob", {}).get("uar")}[metric]
    return float("nan") if value is None else float(value)


# ---------------------------------------------------------------------------
# the verdict
# ---------------------------------------------------------------------------
@dataclass
class AblationSummary:
    """What the ablation found, in words (:attr:`text`, markdown) and numbers.

    Attributes
    ----------
    paper_protocol : DataFrame
        Settings under the paper's protocol with their mean segment and
        utterance accuracy, the paper's number for their method and whether
        they reach it.
    reaching : list of str
        Settings (and decision level) whose mean accuracy reaches the paper's.
    nested_accuracy : dict or None
        The paper-protocol nested selection's outer-test accuracy: ``mean``,
        ``sd``, ``n``, ``utterance_mean``, ``metric``, ``chosen``; None
        without scored folds.
    nested_uar : dict or None
        The nested selection's outer-test UAR: ``protocol`` (``"speaker"``
        for the speaker-independent number), ``mean``, ``sd``, ``n`` (outer
        folds scored), ``metric`` (the inner score that chose) and ``chosen``
        (``{(seed, fold): setting}``); None without scored folds.
    text : str
    """

    paper_protocol: pd.DataFrame
    reaching: list[str]
    nested_uar: dict[str, Any] | None
    nested_accuracy: dict[str, Any] | None
    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def _paper_numbers() -> dict[str, float]:
    """The paper's EMO-DB accuracy per method (Table 4): scratch 0.89, transfer 0.97, fine-tuning 0.83."""
    from mtl.results import paper_values

    table = paper_values("table4")
    table = table[table["target"] == TARGET]
    return dict(zip(table["method"], table["overall"].astype(float)))


def _scored_outer_folds(scored: pd.DataFrame, score: str) -> dict[str, Any]:
    """Mean, sd and count of ``score`` over a nested selection's scored outer folds, its metric and choices."""
    mean, sd, n = _mean_sd(scored[score])
    return {"mean": mean, "sd": sd, "n": n, "metric": str(scored["metric"].iloc[0]),
            "chosen": dict(zip(zip(scored["seed"], scored["fold"]), scored["chosen"]))}


def _sd_text(sd: float, digits: int) -> str:
    return f" ± {sd:.{digits}f}" if not math.isnan(sd) else ""


def _choices_text(chosen: Mapping[tuple[int, int], str]) -> str:
    return "; ".join(f"seed {s}, fold {f}: {c}" for (s, f), c in chosen.items())


def ablation_summary(records: pd.DataFrame, nested: pd.DataFrame | None = None, digits: int = 2,
                     paper_nested: pd.DataFrame | None = None) -> AblationSummary:
    """Which settings reach the paper's EMO-DB accuracy under its own protocol, and the best
    speaker-independent UAR chosen on inner validation folds.

    Parameters
    ----------
    records : DataFrame
        :func:`load_ablation_records` (outer-fold records).
    nested : DataFrame or None
        :meth:`NestedSelection.results` of a speaker-protocol selection; its
        scored folds give the speaker-independent UAR. None: not reported.
    digits : int, default 2
    paper_nested : DataFrame or None
        :meth:`NestedSelection.results` of a paper-protocol selection; its
        scored folds give the accuracy reached under the paper's protocol
        without choosing on the test folds. None: not reported.

    Notes
    -----
    "Reaches" means the mean over folds (and seeds) is at least the paper's
    value for that method -- 0.89 from scratch, 0.97 for transfer (Table 4),
    at the segment level (the paper's decisions) or the utterance level
    (mean probability), each said separately. The paper's protocol is random
    folds over segments, which puts overlapping segments of one utterance on
    both sides; numbers under it measure recognition of seen recordings.
    """
    paper = _paper_numbers()
    frame = _outer_only(records)
    lines: list[str] = []
    rows = []
    reaching: list[str] = []
    on_paper = frame[frame["protocol"] == "paper"] if not frame.empty else frame
    if on_paper.empty:
        lines.append("**No ablation records under the paper's protocol yet**, so nothing can be said about "
                     f"reaching the paper's EMO-DB accuracy ({paper['scratch']:.2f} from scratch, "
                     f"{paper['transfer']:.2f} with transfer).")
    else:
        keys = ["method", "module_type", "training_budget", "generations", "profile", "data_kind"]
        for key, group in on_paper.groupby(keys, sort=True):
            row = dict(zip(keys, key))
            row["folds"] = int(len(group))
            row["paper"] = paper.get(row["method"], float("nan"))
            for decision in ("segment", "utterance (mean prob.)"):
                mean, sd, _ = _mean_sd(group[DECISIONS[decision]])
                row[f"{decision} mean"], row[f"{decision} sd"] = mean, sd
                reached = bool(mean >= row["paper"]) if not math.isnan(mean) else False
                row[f"{decision} reaches"] = reached
                if reached:
                    reaching.append(f"{row['method']}, {row['module_type']} modules, {row['training_budget']}, "
                                    f"G={row['generations']} ({decision} decisions: {mean:.{digits}f})")
            rows.append(row)
        best = max(rows, key=lambda r: (r["segment mean"] if not math.isnan(r["segment mean"]) else -1))
        if reaching:
            lines.append("**Settings that reach the paper's EMO-DB accuracy under its own protocol** "
                         "(random folds over segments): " + "; ".join(reaching) + ".")
        else:
            lines.append(f"**No setting reaches the paper's EMO-DB accuracy under its own protocol** "
                         f"({paper['scratch']:.2f} from scratch, {paper['transfer']:.2f} with transfer). The best "
                         f"mean segment accuracy is {best['segment mean']:.{digits}f} ({best['method']}, "
                         f"{best['module_type']} modules, {best['training_budget']}, G={best['generations']}, "
                         f"{best['folds']} folds) -- the best of {len(rows)} settings on their test folds, so if "
                         f"anything an optimistic number.")
        kinds = sorted(set(on_paper["data_kind"].dropna()))
        if kinds != ["real"] and kinds != ["mixed"]:
            lines.append(f"Careful: these records are on {', '.join(kinds)} data, not only the real EMO-DB.")
    nested_uar = None
    if nested is not None and not nested.empty:
        scored = nested[nested["status"] == "scored"]
        protocol = str(nested["protocol"].iloc[0])
        what = {"speaker": "speaker-independent", "utterance": "utterance-grouped (not speaker-independent)",
                "paper": "random-segment-fold (not speaker-independent)"}[protocol]
        if scored.empty:
            lines.append(f"**No {what} nested selection is complete yet** (no outer fold scored).")
        else:
            found = nested_uar = {"protocol": protocol, **_scored_outer_folds(scored, "uar")}
            lines.append(f"**Best {what} unweighted average recall, with the setting chosen on inner validation "
                         f"folds** (by {found['metric']}): {found['mean']:.{digits}f}{_sd_text(found['sd'], digits)} "
                         f"on the outer test folds, {found['n']} of {len(nested)} scored (chance: {1 / 7:.2f} for 7 "
                         f"classes). Chosen per outer fold: {_choices_text(found['chosen'])}.")
    elif nested is not None:
        lines.append("**No nested selection has run yet.**")
    nested_accuracy = None
    if paper_nested is not None and not paper_nested.empty:
        scored = paper_nested[paper_nested["status"] == "scored"]
        if not scored.empty:
            utterance, _, _ = _mean_sd(scored["utt_accuracy_mean_prob"])
            found = nested_accuracy = {**_scored_outer_folds(scored, "accuracy"), "utterance_mean": utterance}
            verdict = "reaches" if found["mean"] >= paper["scratch"] else "stays below"
            lines.append(f"**Under the paper's own protocol, with the setting chosen on inner validation folds** "
                         f"(by {found['metric']}): segment accuracy {found['mean']:.{digits}f}"
                         f"{_sd_text(found['sd'], digits)} and utterance accuracy (mean prob.) "
                         f"{utterance:.{digits}f} on the outer test folds, {found['n']} of {len(paper_nested)} "
                         f"scored; this {verdict} the paper's {paper['scratch']:.2f} from scratch. Chosen per outer "
                         f"fold: {_choices_text(found['chosen'])}.")
    return AblationSummary(paper_protocol=pd.DataFrame(rows), reaching=reaching, nested_uar=nested_uar,
                           nested_accuracy=nested_accuracy, text="\n\n".join(lines))


# ---------------------------------------------------------------------------
# the chapter's entry point
# ---------------------------------------------------------------------------
DEFAULT_CANDIDATES: list[dict[str, Any]] = candidate_grid(module_type=MODULE_TYPES, training_budget=TRAINING_BUDGETS)
"""Candidates of the chapter's nested selection: module type x training budget."""


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
    generations: int | dict[str, int] | None
    budget: str
    data_root: Path
    missing: list[str]
    """Plain sentences: what is absent and what the chapter therefore leaves out."""
    cells: list[Any]

    def settings(self) -> pd.DataFrame:
        config = get_profile(self.profile)
        generations = self.generations if self.generations is not None else config.generations
        rows = [("profile", self.profile),
                ("data root", f"{self.data_root}" + ("" if self.data_root.is_dir() else " (absent)")),
                *((name, ", ".join(levels)) for name, levels in self.factors.items()),
                ("decision levels", "segment, utterance (mean probability), utterance (majority vote): from every run"),
                ("seeds", ", ".join(map(str, self.seeds))), ("folds", f"{self.folds}-fold"),
                ("G (generations)", f"{generations}" + (" (literal_epochs: fewer, to match one pass's SGD steps)"
                                                         if self.budget == "equal_steps" else "")),
                ("cells", f"{len(self.cells)}, {self.done()} with a record (computed here or committed)")]
        rows += [("missing", sentence) for sentence in self.missing]
        return pd.DataFrame(rows, columns=["setting", "value"])

    def done(self) -> int:
        """How many of the grid's cells have a record, local or committed."""
        index = _record_index()
        return sum(_find_record(cell, index) is not None for cell in self.cells)

    def _repr_html_(self) -> str:
        return self.settings().to_html(index=False, border=0, classes="mtl-settings")

    def __repr__(self) -> str:
        return self.settings().to_string(index=False)

    def cost_table(self, workers: int = 2) -> Any:
        """What the grid costs (:func:`cost_summary`, seconds measured here and now), or why there is no grid."""
        from IPython.display import Markdown

        if not self.cells:
            return Markdown("*No grid to cost: " + " ".join(self.missing) + "*")
        return cost_summary(estimate_cost(self.cells, measure_step_seconds(steps=10)), workers=workers)

    def records(self) -> pd.DataFrame:
        """Every ablation record found (:func:`load_ablation_records`), any profile, and :func:`anchor_records`."""
        frames = [frame for frame in (load_ablation_records(), anchor_records()) if not frame.empty]
        return pd.concat(frames, ignore_index=True) if frames else load_ablation_records()

    def table(self, decisions: Sequence[str] | None = ("segment", "utterance (mean prob.)", "utterance (vote)")
              ) -> Any:
        """:func:`ablation_table` of every record found, styled; or a plain note when there is none."""
        from IPython.display import Markdown

        table = ablation_table(self.records(), decisions)
        if table.empty:
            return Markdown("**No ablation records exist yet**, so there is no table: nothing has been computed "
                            "for this chapter. " + " ".join(self.missing))
        shown = table.drop(columns=[c for c in table.columns if c.endswith(("_mean", "_sd"))])
        return shown.style.format({"difference": "{:+.3f}", "t_p": "{:.3f}", "wilcoxon_p": "{:.3f}"},
                                  na_rep="—").hide(axis="index")

    def computed(self) -> Any:
        """What the records shown were computed with (:func:`records_overview`), or a plain note."""
        from IPython.display import Markdown

        overview = records_overview(pd.concat([self.records(), load_ablation_records(experiment=NESTED)],
                                              ignore_index=True))
        if overview.empty:
            return Markdown("**No ablation records exist yet.** " + " ".join(self.missing))
        return overview.style.format({"cpu_minutes": "{:.1f}"}).hide(axis="index")

    def figure(self, decision: str = "segment") -> Any:
        """:func:`mtl.plots.ablation_bars` of every setting found, or a plain note."""
        from IPython.display import Markdown

        from mtl.corpora.labels import CLASS_SETS
        from mtl.plots import ablation_bars

        table = ablation_table(self.records(), [decision])
        if table.empty:
            return Markdown("*No ablation records, so no figure.*")
        return ablation_bars(table, decision, paper=_paper_numbers(), chance=1 / len(CLASS_SETS[TARGET]),
                             title=f"EMO-DB, {decision} decisions: mean ± sd over folds")

    def effects(self, metric: str = "accuracy") -> Any:
        """:func:`factor_effects` of the grid's records, styled, or a plain note."""
        from IPython.display import Markdown

        effects = factor_effects(self.records(), metric)
        if effects.empty or not effects["pairs"].any():
            return Markdown("*No two records of the grid differ in one factor only yet, so no effect to show.*")
        return effects.style.format({c: "{:+.3f}" for c in ("mean_difference", "smallest", "largest")}
                                    | {"sd": "{:.3f}", "b_better": "{:.0%}"}, na_rep="—").hide(axis="index")

    def nested(self) -> Any:
        """The results of every saved nested selection (:func:`saved_selections`), or a plain note."""
        from IPython.display import Markdown

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


def plan_ablation(profile: str = "default", data_root: str | Path | None = None,
                  seeds: int | Sequence[int] | None = None, folds: int | None = None,
                  factors: Mapping[str, Sequence[str]] | None = None,
                  generations: int | Mapping[str, int] | None = None, budget: str = "as_configured",
                  source_budget: str = "one_pass") -> AblationPlan:
    """Check the chapter's parameters and list the ablation grid on the real EMO-DB.

    Parameters
    ----------
    profile : str, default "default"
        ``smoke``, ``default`` or ``paper``.
    data_root : str or Path or None
        Folder holding ``emodb/`` (and ``ravdess-speech-16k/`` for transfer);
        it must exist, and becomes ``MTL_DATA_ROOT`` for this process. None:
        the environment's.
    seeds : int or list of int or None
        None: the profile's seed.
    folds : int or None
        k of k-fold; None: the profile's.
    factors : mapping or None
        ``{factor: levels}`` restricting :data:`FACTORS`.
    generations : int, mapping or None
        G, or ``{training_budget: G}`` (see :func:`ablation_config`).
    budget : {"as_configured", "equal_steps"}
        See :func:`ablation_cells`.
    source_budget : {"one_pass", "same"}, default "one_pass"
        See :func:`ablation_cells`.

    Without the real EMO-DB the plan has no cells and says so; without
    RAVDESS it leaves the transfer half out and says so.
    """
    import os

    from mtl.errors import MissingDataError
    from mtl.experiments import resolve_data_kind
    from mtl.paths import data_root as current_data_root

    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if not root.is_dir():
            raise MissingDataError(f"data_root {str(data_root)!r} does not exist (resolved to {root}); give the "
                                   "folder that holds emodb/ (and ravdess-speech-16k/), or None for the default")
        os.environ["MTL_DATA_ROOT"] = str(root)
    config = get_profile(profile, **({"folds": folds} if folds is not None else {}))
    seeds = (config.seed,) if seeds is None else (seeds,) if isinstance(seeds, int) else tuple(seeds)
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds must be one non-negative integer or a list of them, got {seeds!r}")
    chosen = _check_factors(factors)
    _check_one_of("budget", budget, BUDGET_RULES)
    _check_one_of("source_budget", source_budget, SOURCE_BUDGETS)
    for budget_name in chosen["training_budget"]:
        if _generations_for(budget_name, config, generations) < 1:
            raise ConfigError(f"generations must be >= 1, got {generations!r}")
    missing: list[str] = []
    cells: list[Any] = []
    try:
        resolve_data_kind(TARGET, "real")
    except MissingDataError:
        missing.append(f"The real EMO-DB is not under {current_data_root()}: the ablation is about the real "
                       "corpus, so this chapter lists no cells and computes nothing.")
    else:
        try:
            resolve_data_kind(DEFAULT_SOURCES[0], "real")
        except MissingDataError:
            if "transfer" in chosen["method"]:
                missing.append(f"RAVDESS is not under {current_data_root()}: the transfer cells are left out.")
                chosen["method"] = tuple(m for m in chosen["method"] if m != "transfer")
        if chosen["method"]:
            cells = ablation_cells(profile, chosen, seeds, None, "real", DEFAULT_SOURCES, generations, budget,
                                   {"folds": config.folds}, source_budget=source_budget)
    return AblationPlan(profile, chosen, seeds, config.folds, generations if not isinstance(generations, Mapping)
                        else dict(generations), budget, current_data_root(), missing, cells)

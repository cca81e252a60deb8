"""Running cells: the source models, the target training, and one record per cell.

:func:`run` computes a cell of any registered kind (:class:`mtl.cells.CellKind`)
and returns its record. Kinds are registered with :func:`register_kind`, each
with the function that computes it; :class:`~mtl.cells.Cell` is registered
here with :func:`run_cell`, and a kind defined elsewhere (the ablation's
inner-fold runs) registers itself where it is defined, so that a worker
process that unpickles a cell has its runner too.

:func:`run_cell` is built from parts other kinds reuse:

1. a :class:`Split` -- the target's features, labels and which rows train and
   which are scored (:func:`outer_split`: the cell's fold of its protocol);
2. :func:`fit_split` -- standardise on the training rows, fetch (or train)
   the source model, train the classifier resuming from its checkpoint, score
   the held-out rows: a :class:`mtl.records.RunResult`;
3. :func:`mtl.records.build_record` and :func:`store_record` -- the record in
   the one layout, written atomically, the checkpoint removed.

Source models (transfer and fine-tuning) are trained once per
:attr:`~mtl.cells.Cell.source_key` on *all* the source data -- the union of
the corpora for multi-source transfer -- and cached under
``cache_dir()/sources/<key>.pt`` with a JSON sidecar (learning curve,
pathways, timings, the device it trained on, data provenance). Inputs are standardised per feature: the
source data with its own statistics, every target fold with the statistics
of its training part only (:class:`mtl.evaluation.Standardizer`). The held-out
rows are passed to the classifier as validation data only to record the
learning curve (``val_accuracy`` every ``eval_every`` generations); evolution
and the choice of the best pathway use training fitness only, as in the paper.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl.cells import SOURCE_NEUTRAL_FIELDS, Cell, config_key
from mtl.config import Config
from mtl.corpora import corpus_card
from mtl.errors import ConfigError
from mtl.evaluation import Standardizer, evaluate, make_folds, recording_keys
from mtl.datasets import class_indices, load_dataset
from mtl.features.functionals import functional_features
from mtl.io import file_lock, read_json, write_json
from mtl.pathnet import (PathNetClassifier, SourceModel, StateFileError, ga_diagnostics, mutate, random_genotype,
                         train_source)
from mtl.pathnet.checks import describe_device, numpy_generator, torch_device
from mtl.paths import cache_dir
from mtl.records import RunResult, build_record, now, reuse_stored, write_record

log = logging.getLogger(__name__)

Runner = Callable[[Any, bool], dict]
"""``runner(cell, progress)`` -> the cell's record (computed and written, or the stored one)."""
_KINDS: dict[type, Runner] = {}


def register_kind(kind: type, runner: Runner) -> None:
    """Make :func:`run` compute cells of class ``kind`` (or a subclass) with ``runner``."""
    _KINDS[kind] = runner


def run(cell: Any, progress: bool = False) -> dict[str, Any]:
    """The record of ``cell``, computed by the runner of its kind (:func:`register_kind`)."""
    for kind in type(cell).__mro__:
        if kind in _KINDS:
            return _KINDS[kind](cell, progress)
    raise ConfigError(f"no runner for cells of kind {type(cell).__name__}; registered kinds: "
                      f"{', '.join(k.__name__ for k in _KINDS)} (see mtl.runner.register_kind)")


# ---------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------
def checkpoint_path(key: str, name: str = "target.pt") -> Path:
    """Where the run of ``key`` keeps its checkpoint: ``cache_dir()/checkpoints/<key>/<name>``."""
    return cache_dir() / "checkpoints" / key / name


def _resuming(train: Callable[[], Any], checkpoint: Path) -> Any:
    """Run ``train`` (which resumes from ``checkpoint``); a checkpoint of another run is discarded once."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    try:
        return train()
    except StateFileError as error:
        log.warning("discarding an unusable checkpoint and starting afresh: %s", error)
        _remove_folder(checkpoint.parent)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        return train()


def _remove_folder(folder: Path) -> None:
    if folder.is_dir():
        for item in folder.iterdir():
            with contextlib.suppress(OSError):
                item.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()


def store_record(path: Path, record: dict[str, Any], key: str) -> dict[str, Any]:
    """Write ``record`` to ``path`` (atomically) and remove the checkpoint of ``key``; return the record."""
    write_record(path, record)
    _remove_folder(checkpoint_path(key).parent)
    return record


# ---------------------------------------------------------------------------
# learning curves and pathways
# ---------------------------------------------------------------------------
def _history_frame(history: Any) -> pd.DataFrame:
    if history is None:
        return pd.DataFrame()
    if isinstance(history, pd.DataFrame):
        return history
    return history.to_frame()


def learning_curve(history: Any) -> list[dict[str, Any]]:
    """Per generation: generation, best_fitness, val_accuracy (NaN -> None) and elapsed seconds when known."""
    frame = _history_frame(history)
    columns = [c for c in ("generation", "best_fitness", "val_accuracy", "elapsed", "seconds", "wall_time")
               if c in frame.columns]
    rows = []
    for values in frame[columns].itertuples(index=False):
        row = {}
        for name, value in zip(columns, values):
            value = None if value is None or (isinstance(value, float) and np.isnan(value)) else value
            row[name] = value.item() if isinstance(value, np.generic) else value
        rows.append(row)
    return rows


def replay_population(history: Any, config: Config, task: str) -> tuple[list | None, list | None]:
    """Initial and final populations of an evolution, replayed from its seed and history.

    :func:`mtl.pathnet.evolve` draws the initial population, the tournament
    picks and the mutations from one random stream of its own (seeded by
    ``config.seed`` and the task name), separate from weight initialisation
    and mini-batches; only the winners depend on training, and the history
    records them. Replaying that stream with the recorded winners therefore
    rebuilds every population exactly, without training. Each generation's
    picks and genotypes are checked against the history; on any mismatch (or
    for fine-tuning, which has no population) the result is ``(None, None)``.
    """
    records = list(history) if history is not None else []
    if not records or any(r.get("winner") is None or "picked" not in r for r in records):
        return None, None
    rng = numpy_generator(config.seed, "evolve", task)
    population = np.stack([random_genotype(config, rng) for _ in range(config.population)])
    initial = population.tolist()
    for record in records:
        picked = rng.choice(config.population, size=config.tournament, replace=False)
        if picked.tolist() != list(record["picked"]) or population[picked].tolist() != record["genotypes"]:
            log.warning("population replay of task %r disagrees with its history at generation %s; "
                        "populations not recorded", task, record.get("generation"))
            return None, None
        for loser in picked:
            if loser != record["winner"]:
                population[loser] = mutate(population[record["winner"]], config, rng)
    return initial, population.tolist()


def _source_pathways(model: Any) -> dict[str, Any]:
    """Figure 9: the source's initial and final populations and its best pathway."""
    initial, final = replay_population(model.history, model.config, model.task)
    return {"initial_population": initial, "final_population": final,
            "best": np.asarray(model.best_genotype).tolist()}


def _target_pathways(classifier: Any, config: Config, task: str) -> dict[str, Any]:
    """Figure 10: the target's populations, its best pathway and the frozen source modules."""
    initial, final = replay_population(classifier.history_, config, task)
    result = getattr(classifier, "result_", None)
    if result is not None:
        final = np.asarray(result.population).tolist()
    frozen = classifier.frozen_
    return {"initial_population": initial, "final_population": final,
            "best": np.asarray(classifier.best_genotype_).tolist(),
            "frozen": [list(map(int, layer)) for layer in frozen] if frozen is not None else None}


# ---------------------------------------------------------------------------
# source models
# ---------------------------------------------------------------------------
def _as_input(features: Any, config: Config) -> Any:
    """The segment features of a corpus as PathNet reads them: as they are, or (beyond the paper,
    ``config.input_kind="functionals"``) one sample of utterance functionals per recording."""
    return functional_features(features, config) if config.input_kind == "functionals" else features


class _Stacked:
    """Read-only row view over several arrays, as if concatenated (no copy)."""

    def __init__(self, parts: Sequence[np.ndarray]):
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self.offsets[-1]),) + tuple(np.shape(self.parts[0])[1:])
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        out = np.empty((len(rows),) + self.shape[1:], dtype=np.float32)
        for k in np.unique(part):
            sel = part == k
            out[sel] = self.parts[k][rows[sel] - self.offsets[k]]
        return out


def _cached_source(key: str, weights: Path, sidecar: Path, device: str) -> tuple[Any, dict[str, Any]] | None:
    """The cached source model ``key`` (placed on ``device``) and its sidecar; None when absent or unusable
    (reported, both removed)."""
    if not (weights.is_file() and sidecar.is_file()):
        return None
    try:
        info = read_json(sidecar)
        if not isinstance(info, dict) or info.get("key") != key:
            raise StateFileError(f"{sidecar}: not the sidecar of source model {key}")
        model = SourceModel.load(weights, device)  # checks the digest and that the weights are finite
    except (StateFileError, OSError, ValueError, KeyError) as error:  # a JSONDecodeError is a ValueError
        log.warning("discarding the cached source model %s and training it again: %s", key, error)
        for path in (weights, sidecar):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return None
    info["cached"] = True
    return model, info


def source_model(cell: Any, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """The cell's source model, trained once on all source data and cached on disk.

    Returns ``(SourceModel, info)``; ``info`` is the sidecar: key, sources,
    classes, data provenance, learning curve, pathways, ``seconds`` (training
    time when it was trained) and ``cached`` (False only for the call that
    trained it). A lock file makes parallel cells wait for one training. A
    cached model that fails its checks (:func:`mtl.pathnet.state.load_state`:
    digest, finite weights; a damaged sidecar) is reported, removed and trained again.
    ``cell`` is a :class:`~mtl.cells.Cell` or any kind with its source fields
    (``source_key``, ``sources``, ``source_classes``, ``modality``, ``data``,
    ``source_training_config``).
    """
    if cell.source_key is None:
        raise ConfigError("a scratch cell has no source model")
    folder = cache_dir() / "sources"
    weights, sidecar = folder / f"{cell.source_key}.pt", folder / f"{cell.source_key}.json"
    with file_lock(folder / f"{cell.source_key}.lock"):
        cached = _cached_source(cell.source_key, weights, sidecar, cell.source_training_config.device)
        if cached is not None:
            return cached
        kinds, config = dict(cell.data), cell.source_training_config
        parts, labels, provenance = [], [], {}
        for corpus in cell.sources:
            classes = [c for c in cell.source_classes if c in corpus_card(corpus).classes]
            features, prov = load_dataset(corpus, cell.modality, config, classes, data=kinds[corpus])
            features = _as_input(features, config)
            parts.append(features.X)
            labels.append(class_indices(features.samples, cell.source_classes))
            provenance[corpus] = prov
        X = Standardizer().fit_transform(_Stacked(parts))
        y = np.concatenate(labels)
        task = "+".join(cell.sources)
        checkpoint = checkpoint_path(f"source-{cell.source_key}", "source.pt")
        log.info("training the source model %s on %s (%d samples)", cell.source_key, task, len(y))
        start = time.perf_counter()
        model = _resuming(lambda: train_source(X, y, config, task=task, n_classes=len(cell.source_classes),
                                               progress=progress, checkpoint_path=checkpoint), checkpoint)
        seconds = time.perf_counter() - start
        model.save(weights)  # atomic
        info = {
            "key": cell.source_key,
            "sources": list(cell.sources),
            "modality": cell.modality,
            "classes": list(cell.source_classes),
            "n_samples": int(len(y)),
            "provenance": provenance,
            "learning_curve": learning_curve(model.history),
            "pathways": _source_pathways(model),
            "best_fitness": float(model.best_fitness),
            "seconds": seconds,
            "device": describe_device(torch_device(config)),  # where the configuration put it
            "config": config_key(config, SOURCE_NEUTRAL_FIELDS),
            "created": now(),
        }
        write_json(sidecar, info)
        _remove_folder(checkpoint.parent)
        info["cached"] = False
        return model, info


# ---------------------------------------------------------------------------
# one target run
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """The target's data and which of its rows train and which are scored."""

    features: Any
    """The target's :class:`~mtl.features.cache.FeatureSet` (``X`` and ``samples``)."""
    samples: pd.DataFrame
    """``features.samples`` with a fresh index (positions = rows of ``X``)."""
    y: np.ndarray
    """Class index of every row (into the cell's ``classes``)."""
    train: np.ndarray
    held_out: np.ndarray
    n_folds: int
    """Folds of the protocol the split comes from."""
    provenance: dict[str, Any]
    """The target's :func:`~mtl.datasets.load_dataset` provenance."""
    notes: tuple[str, ...] = ()


def outer_split(cell: Cell) -> Split:
    """Fold ``cell.fold`` of the cell's protocol on its target (folds deterministic from the seed).

    The samples are the target's segments, or with ``config.input_kind="functionals"`` its utterances'
    functionals (:func:`mtl.features.functionals.functional_features`).
    """
    features, provenance = load_dataset(cell.target, cell.modality, cell.config, cell.classes,
                                        data=dict(cell.data)[cell.target])
    features = _as_input(features, cell.config)
    samples = features.samples.reset_index(drop=True)
    y = class_indices(samples, cell.classes)
    folds = make_folds(samples, y, cell.protocol, cell.config.folds, cell.seed)
    if cell.fold >= len(folds):
        raise ConfigError(f"{cell.describe()}: fold {cell.fold} does not exist, the {cell.protocol} protocol gives "
                          f"{len(folds)} folds for {cell.target}")
    notes = ()
    if len(folds) < cell.config.folds:
        notes = (f"{cell.protocol} protocol: {len(folds)} groups for {cell.config.folds} folds, so "
                 f"{len(folds)} folds (leave-one-speaker-out)",)
    train, held_out = folds[cell.fold]
    return Split(features, samples, y, train, held_out, len(folds), provenance, notes)


def train_target(cell: Cell, features: Any, y: np.ndarray, train: np.ndarray, held_out: np.ndarray,
                 checkpoint: Path, progress: bool = False) -> tuple[Any, np.ndarray, float, dict[str, Any] | None]:
    """Train ``cell``'s classifier on rows ``train`` and score rows ``held_out``.

    Standardises on the training rows only, fetches (or trains) the cell's
    source model for transfer and fine-tuning, fits with the held-out rows as
    the learning curve's validation set, resuming from ``checkpoint``.

    Returns ``(classifier, proba, target_seconds, source_info)``: ``proba``
    has one row per held-out sample; ``source_info`` is None for scratch.
    """
    source, source_info = (None, None)
    if cell.method != "scratch":
        source, source_info = source_model(cell, progress=progress)
    scaler = Standardizer().fit(features.X, train)
    X_train, X_held_out = scaler.transform(features.X, train), scaler.transform(features.X, held_out)
    classifier = PathNetClassifier(cell.config, method=cell.method, source=source, task=cell.target,
                                   n_classes=len(cell.classes), progress=progress)
    start = time.perf_counter()
    _resuming(lambda: classifier.fit(X_train, y[train], X_val=X_held_out, y_val=y[held_out],
                                     checkpoint_path=checkpoint), checkpoint)
    seconds = time.perf_counter() - start
    return classifier, np.asarray(classifier.predict_proba(X_held_out)), seconds, source_info


def fit_split(cell: Cell, split: Split, key: str, progress: bool = False) -> RunResult:
    """Train ``cell``'s method on ``split`` (checkpoint under ``key``) and measure it on the held-out rows."""
    classifier, proba, seconds, source_info = train_target(cell, split.features, split.y, split.train,
                                                           split.held_out, checkpoint_path(key), progress)
    held_out = split.samples.iloc[split.held_out]
    return RunResult(
        metrics=evaluate(split.y[split.held_out], proba, recording_keys(held_out), cell.classes),
        n_train=len(split.train), n_test=len(split.held_out), n_folds=split.n_folds, provenance=split.provenance,
        target_seconds=seconds,
        test_speakers=sorted(map(str, held_out["speaker"].unique())) if "speaker" in held_out else None,
        learning_curve=learning_curve(getattr(classifier, "history_", None)),
        target_pathways=_target_pathways(classifier, cell.config, cell.target),
        source=source_info, notes=split.notes, device=describe_device(torch_device(cell.config)),
        ga=ga_diagnostics(getattr(classifier, "history_", None) or []))


# ---------------------------------------------------------------------------
# one cell
# ---------------------------------------------------------------------------
def run_cell(cell: Cell, progress: bool = False) -> dict[str, Any]:
    """Compute one cell and write its record; return the stored record if it exists.

    Steps: :func:`outer_split` (load the target features restricted to
    ``cell.classes``, build the folds, take ``cell.fold``), :func:`fit_split`
    (standardise on the training part, train -- for transfer and fine-tuning
    on top of the cached source model --, evaluate the held-out part at
    segment and utterance level), then the record, written atomically. The
    same computation stored for another experiment, or committed to the
    repository (:func:`mtl.records.reuse_stored`), is copied, not rerun. An
    interrupted evolution resumes from its checkpoint under
    ``cache_dir()/checkpoints/<cell key>/``.
    """
    existing = reuse_stored(cell)
    if existing is not None:
        return existing
    result = fit_split(cell, outer_split(cell), cell.key, progress)
    return store_record(cell.record_path, build_record(cell, result), cell.key)


register_kind(Cell, run_cell)

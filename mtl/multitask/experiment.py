"""The multi-task experiment as a cell kind: emotion from one corpus, action units from another.

A :class:`MultiTaskCell` trains :class:`~mtl.multitask.MultiTaskClassifier`
on one fold and scores it. Its *target* corpus gives the emotion labels and
is scored; its *auxiliary* corpus gives AU labels only, its emotion labels
withheld (the main split of the chapter: SAVEE emotions with eNTERFACE AUs,
and the reverse). Three methods, one network:

``"multitask"``     the target's training fold (emotion labels) and the
                    auxiliary corpus (AU labels) in one run, the masked loss;
``"emotion_only"``  the target's training fold alone, ``tasks="emotion"``;
``"au_only"``       the auxiliary corpus alone, ``tasks="au"``. It sees nothing of the
                    target, so its network is the same for every fold and protocol of
                    one seed: it is trained once per (auxiliary corpus, data, seed,
                    settings) under a lock, kept in the cache
                    (``checkpoints/<training key>/au_only.pt``) and scored on each
                    cell's held-out rows.

Same folds as PathNet. Every cell wraps the PathNet transfer cell of the
same target, source = auxiliary corpus, classes, protocol, seed and fold
(:attr:`MultiTaskCell.pathnet`, a :class:`mtl.cells.Cell`), and takes its split
from :func:`mtl.runner.outer_split`: the held-out rows are exactly those of
that PathNet record (Tables 1 and 2 of the book at the same profile).

Scores on the held-out target rows: emotion accuracy, UAR and the
utterance-level scores of :func:`mtl.evaluation.evaluate` (None for
``au_only``, which has no emotion head); AU F1 per AU and mean
(:func:`mtl.evaluation.au_scores`) against the target's own AU labels, which
no method trains on; and the compound expressions of
:mod:`mtl.multitask.compound` (synthetic people, no compound label seen in
training) predicted by the nearest AU prototype, alone and with the emotion
outputs. Inputs are standardised per feature on the training rows.

The record is :func:`mtl.records.build_record`'s layout with the cell's
``method`` and five fields of the kind: ``auxiliary``, ``training`` (the
estimator's settings), ``au_threshold``, ``pathnet_cell_key`` and
``compound_signatures`` (:func:`mtl.multitask.compound.signature_hash`, also
in the key: a corrected signature computes the cells again). Its
``target_seconds`` is the fit's own clock (summed over resumes; for
``au_only``, the one shared training's).
:func:`run_multitask_cell` is registered for the kind, so ``mtl sweep``
computes these cells as any other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl.cells import Cell, config_key, delegate_attributes, make_cell
from mtl.config import PAPER, Config
from mtl.errors import ConfigError
from mtl.evaluation import Standardizer, au_scores, evaluate, recording_keys
from mtl.io import file_lock, stable_hash
from mtl.multitask.compound import COMPOUNDS, compound_faces, predict_compounds, signature_hash
from mtl.multitask.data import DEFAULT_THRESHOLD, au_occurrence, check_same_aus, load_au_faces
from mtl.multitask.estimator import MultiTaskClassifier
from mtl.pathnet import StateFileError
from mtl.pathnet.checks import describe_device, numpy_generator, torch_device
from mtl.paths import cache_dir, results_dir
from mtl.datasets import corpus_root
from mtl.records import RunResult, build_record, record_cell, reuse_stored
from mtl.runner import checkpoint_path, outer_split, register_kind, store_record

__all__ = ["EXPERIMENT", "MT_METHODS", "TRAINING", "MultiTaskCell", "au_only_key", "make_multitask_cell",
           "record_multitask_cell", "run_multitask_cell"]

EXPERIMENT = "related_method"
MT_METHODS: tuple[str, ...] = ("multitask", "emotion_only", "au_only")
_TASKS = {"multitask": "both", "emotion_only": "emotion", "au_only": "au"}

TRAINING: dict[str, dict[str, Any]] = {
    "smoke": dict(width=4, blocks=(1, 1), steps=6, record_every=3, aux_samples=96, compound_people=2),
    "classroom": dict(width=8, blocks=(1, 1, 1), steps=60, record_every=20, aux_samples=600, compound_people=4),
    "default": dict(width=8, blocks=(1, 1, 1), steps=100, record_every=25, aux_samples=800, compound_people=8),
}
"""The estimator's settings per profile (``paper`` uses ``default``'s), with ``aux_samples``
(auxiliary crops drawn once per seed) and ``compound_people`` (synthetic people posing each compound).
SGD: lr 0.05, momentum 0.9, weight decay 5e-4 and ``config.batch_size`` throughout."""


def training_for(profile: str) -> dict[str, Any]:
    """:data:`TRAINING` of ``profile`` (``default``'s for the ``paper`` profile and any other)."""
    return dict(TRAINING.get(profile, TRAINING["default"]))


@dataclass(frozen=True)
class MultiTaskCell:
    """One method x target x auxiliary corpus x protocol x seed x fold (module docstring)."""

    method: str
    pathnet: Cell
    """The PathNet transfer cell whose folds, classes, config and data copies this cell shares."""
    training: tuple[tuple[str, Any], ...]
    au_threshold: float = DEFAULT_THRESHOLD
    experiment: str = EXPERIMENT
    compound_signatures: str = ""
    """Hash of the compound signatures the record scores (default: the current ones, :func:`signature_hash`)."""

    def __post_init__(self) -> None:
        if self.method not in MT_METHODS:
            raise ConfigError(f"method must be one of {', '.join(MT_METHODS)}, got {self.method!r}")
        if len(self.pathnet.sources) != 1:
            raise ConfigError(f"a multi-task cell has one auxiliary corpus, got {self.pathnet.sources}")
        if not self.compound_signatures:
            object.__setattr__(self, "compound_signatures", signature_hash())

    @property
    def auxiliary(self) -> str:
        return self.pathnet.sources[0]

    @property
    def sources(self) -> tuple[str, ...]:
        """The corpora the method trains on besides the target (none for ``emotion_only``)."""
        return () if self.method == "emotion_only" else self.pathnet.sources

    @property
    def key(self) -> str:
        return stable_hash({"kind": "multitask", "method": self.method, "pathnet": self.pathnet.key,
                            "training": [[k, list(v) if isinstance(v, tuple) else v] for k, v in self.training],
                            "au_threshold": self.au_threshold, "compounds": self.compound_signatures})

    @property
    def record_path(self) -> Path:
        return results_dir() / "runs" / self.experiment / f"{self.key}.json"

    @property
    def source_key(self) -> None:
        return None  # no source model: the auxiliary corpus trains in the same run

    @property
    def datasets(self) -> tuple[tuple[str, str, str, Config], ...]:
        return self.pathnet.datasets

    def describe(self) -> str:
        return (f"{self.experiment}: {self.method} {self.target} emotions + {self.auxiliary} AUs (video, "
                f"{self.protocol}, seed {self.seed}, fold {self.fold})")


delegate_attributes(MultiTaskCell, "pathnet", ("target", "modality", "classes", "source_classes", "protocol", "seed",
                                              "fold", "config", "data"))


def make_multitask_cell(method: str, target: str, auxiliary: str, config: Config, protocol: str | None = None,
                        seed: int = 0, fold: int = 0, data: str = "auto", training: dict[str, Any] | None = None,
                        au_threshold: float = DEFAULT_THRESHOLD) -> MultiTaskCell:
    """A validated :class:`MultiTaskCell`; ``training`` defaults to :func:`training_for` the config's profile."""
    pathnet = make_cell(EXPERIMENT, "transfer", target, (auxiliary,), "video", config, protocol=protocol,
                        seed=seed, fold=fold, data=data)
    settings = training_for(config.profile) if training is None else dict(training)
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return MultiTaskCell(method, pathnet, tuple(sorted(settings.items())), float(au_threshold))


def record_multitask_cell(record: dict[str, Any]) -> MultiTaskCell:
    """The :class:`MultiTaskCell` a record of this kind describes: its key is the record's ``cell_key``
    (as :func:`mtl.records.record_cell` for a :class:`~mtl.cells.Cell`)."""
    pathnet = record_cell({**record, "method": "transfer", "sources": [record["auxiliary"]["corpus"]]})
    training = {k: tuple(v) if isinstance(v, list) else v for k, v in record["training"].items()}
    return MultiTaskCell(record["method"], pathnet, tuple(sorted(training.items())), float(record["au_threshold"]),
                         record["experiment"], record.get("compound_signatures", ""))


@functools.lru_cache(maxsize=2)
def _compounds(people: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    return compound_faces(n_identities=people, seed=seed)


def _fit(model: MultiTaskClassifier, checkpoint: Path, **data: Any) -> None:
    """Fit, resuming from ``checkpoint``; a checkpoint of another run is discarded once."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    try:
        model.fit(checkpoint_path=checkpoint, **data)
    except StateFileError:
        checkpoint.unlink(missing_ok=True)
        model.fit(checkpoint_path=checkpoint, **data)


def au_only_key(cell: MultiTaskCell, data_kind: str, au_names: list[str]) -> str:
    """Key of the one training an ``au_only`` cell shares with every fold and protocol of its seed."""
    return stable_hash({"kind": "multitask-au-only", "auxiliary": cell.auxiliary, "data": data_kind,
                        "config": config_key(_fold_free(cell.config)), "au_names": au_names,
                        "training": [[k, list(v) if isinstance(v, tuple) else v] for k, v in cell.training],
                        "au_threshold": cell.au_threshold})


def _fold_free(config: Config) -> Config:
    """``config`` with the paper's protocol and k: what a run that sees no target fold trains under."""
    return config.replace(protocol=PAPER.protocol, folds=PAPER.folds)


def run_multitask_cell(cell: MultiTaskCell, progress: bool = False) -> dict[str, Any]:
    """Compute one :class:`MultiTaskCell` and write its record; return the stored one if it exists."""
    existing = reuse_stored(cell)
    if existing is not None:
        return existing
    split = outer_split(cell.pathnet)
    kinds = dict(cell.data)
    target_au, target_names, _ = au_occurrence(split.samples, corpus_root(cell.target, kinds[cell.target],
                                                                          cell.config), cell.au_threshold)
    settings = dict(cell.training)
    aux_samples, people = settings.pop("aux_samples"), settings.pop("compound_people")
    parts_X, parts_y, parts_au = [], [], []
    if cell.method != "au_only":
        parts_X.append(split.features.X[split.train])
        parts_y.append(split.y[split.train])
        parts_au.append(np.full((len(split.train), len(target_names)), np.nan, dtype=np.float32))
    aux_provenance = None
    if cell.method != "emotion_only":
        aux = load_au_faces(cell.auxiliary, cell.config, data=kinds[cell.auxiliary], threshold=cell.au_threshold)
        check_same_aus({cell.target: target_names, cell.auxiliary: aux.au_names})
        rng = numpy_generator(cell.seed, "multitask-auxiliary")
        rows = np.sort(rng.choice(len(aux.au), size=min(aux_samples, len(aux.au)), replace=False))
        parts_X.append(aux.features.X[rows])
        parts_y.append(np.full(len(rows), -1, dtype=np.int64))  # the auxiliary corpus's emotions are withheld
        parts_au.append(aux.au[rows])
        aux_provenance = {**aux.provenance, "n_samples_used": int(len(rows))}
    X = np.concatenate(parts_X)
    scaler = Standardizer().fit(X)
    shared = cell.method == "au_only"  # trained once for every fold and protocol (module docstring)
    model = MultiTaskClassifier(_fold_free(cell.config) if shared else cell.config, tasks=_TASKS[cell.method],
                                n_classes=len(cell.classes), au_names=target_names, progress=progress, **settings)
    data = dict(X=scaler.transform(X), y=np.concatenate(parts_y), au=np.concatenate(parts_au))
    if shared:
        key = au_only_key(cell, kinds[cell.auxiliary], target_names)
        with file_lock(cache_dir() / "locks" / f"au-only-{key}.lock"):
            _fit(model, checkpoint_path(key, "au_only.pt"), **data)
    else:
        _fit(model, checkpoint_path(cell.key), **data)
    seconds = float(model.history_[-1]["elapsed"])
    held_out = split.samples.iloc[split.held_out]
    X_test = scaler.transform(split.features.X, split.held_out)
    compound_X, compound_y, compound_names = _compounds(people, cell.seed)
    compound_X = scaler.transform(compound_X)
    has_emotion = cell.method != "au_only"
    if has_emotion:
        metrics = evaluate(split.y[split.held_out], model.predict_proba(X_test), recording_keys(held_out), cell.classes)
    else:
        metrics = {"accuracy": None, "uar": None}
    au_proba = model.predict_au_proba(X_test)
    metrics["au"] = au_scores(target_au[split.held_out], au_proba, target_names)
    compound = {"n": int(len(compound_y)), "compounds": compound_names, "chance": 1.0 / len(COMPOUNDS)}
    compound_au = model.predict_au_proba(compound_X)
    compound["accuracy_au"] = float(np.mean(predict_compounds(compound_au, target_names, compound_names)
                                            == compound_y))
    if has_emotion:
        predicted = predict_compounds(compound_au, target_names, compound_names, model.predict_proba(compound_X),
                                      cell.classes, emotion_weight=1.0)
        compound["accuracy_au_emotion"] = float(np.mean(predicted == compound_y))
    metrics["compound"] = compound
    result = RunResult(
        metrics=metrics, n_train=len(X), n_test=len(split.held_out), n_folds=split.n_folds,
        provenance=split.provenance, target_seconds=seconds,
        test_speakers=sorted(map(str, held_out["speaker"].unique())) if "speaker" in held_out else None,
        learning_curve=[{k: r[k] for k in ("step", "loss", "emotion_loss", "au_loss")} for r in model.history_],
        notes=split.notes, device=describe_device(torch_device(cell.config)))
    record = build_record(cell, result, extra={
        "auxiliary": {"corpus": cell.auxiliary, "provenance": aux_provenance},
        "training": {k: list(v) if isinstance(v, tuple) else v for k, v in cell.training},
        "au_threshold": cell.au_threshold, "pathnet_cell_key": cell.pathnet.key,
        "compound_signatures": cell.compound_signatures})
    return store_record(cell.record_path, record, cell.key)


register_kind(MultiTaskCell, run_multitask_cell)

"""The paper's experiments as functions that write one result record per cell.

A *cell* (:class:`Cell`) is one unit of work: one method (``scratch``,
``finetune`` or ``transfer``), its source corpora, one target corpus, one
modality, one class set, one evaluation protocol, one seed and one fold, under
one :class:`~mtl.config.Config`. :func:`run_cell` computes it and writes its
record, a JSON file, atomically to ``results_dir()/runs/<experiment>/<key>.json``.
Everything a cell needs is in the cell; its only output is the record file
(plus caches), so cells can run in any order, in parallel processes, and a
rerun returns the stored record instead of recomputing.

The cell key (:attr:`Cell.key`) is a hash of everything that defines the
computation: method, sources, target, modality, classes, which data (real or
synthetic, per corpus), fold, and the configuration, which holds the seed,
the protocol and the number of folds. Two fields are left out because they do
not change any output: ``profile`` (a name) and ``checkpoint_every`` (how often
a run saves its progress). The experiment id is a *label*, not an input: the
same computation asked for by two experiments (Table 1's transfer rows are
also Table 2's) runs once, and the second experiment gets a copy of the
record. The key does not contain the data's content hash; the record does
(``data.provenance``), and :func:`mtl.results.summarise` keeps records of
different data copies apart.

Source models (for ``transfer`` and ``finetune``) are trained once per
(sources, modality, source classes, data, configuration minus protocol and
folds, seed) on *all* the source data -- the union of the corpora for
multi-source transfer -- and cached under ``cache_dir()/sources/<key>.pt``
with a JSON sidecar (learning curve, pathways, timings, data provenance).

Inputs are standardised per feature: the source data with its own statistics,
every target fold with the statistics of its training part only
(:class:`mtl.evaluation.Standardizer`). The held-out fold is passed to the
classifier as validation data only to record the learning curve
(``val_accuracy`` every ``eval_every`` generations); evolution and the choice
of the best pathway use training fitness only, as in the paper.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import functools
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mtl
from mtl.config import PROTOCOLS, Config, differences_from_defaults, get_profile
from mtl.corpora import CORPUS_FOLDERS, CORPUS_MODALITIES
from mtl.corpora.labels import CLASS_SETS, LabelError, canonical_order, shared_classes
from mtl.errors import ConfigError, MissingDataError
from mtl.evaluation import Standardizer, evaluate, make_folds, recording_keys
from mtl.io import file_digest, file_lock, read_json, stable_hash, write_json
from mtl.paths import cache_dir, data_root, project_root, results_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the record layout written by :func:`run_cell`."""

METHODS: tuple[str, ...] = ("scratch", "finetune", "transfer")
DATA_MODES: tuple[str, ...] = ("auto", "real", "synthetic")
MODALITIES: tuple[str, ...] = ("audio", "video")

# Config fields that change no output of a cell (left out of its key).
HOUSEKEEPING_FIELDS: frozenset[str] = frozenset({"profile", "checkpoint_every"})
# Fields that do not affect a source model (trained on all source data, no folds).
_SOURCE_IRRELEVANT: frozenset[str] = HOUSEKEEPING_FIELDS | {"protocol", "folds"}


@dataclass(frozen=True)
class CorpusInfo:
    """Where a corpus lives and what it offers."""

    name: str
    folder: str
    """Folder under :func:`mtl.paths.data_root` holding the real corpus."""
    modalities: tuple[str, ...]
    synthetic: bool
    """Whether :func:`mtl.synthetic.make_corpus` can generate a stand-in."""
    title: str


_TITLES = {"enterface": "eNTERFACE'05", "savee": "SAVEE", "emodb": "EMO-DB", "ravdess": "RAVDESS speech"}
_SYNTHETIC = frozenset({"enterface", "savee", "emodb"})  # what mtl.synthetic.make_corpus generates

CORPORA: dict[str, CorpusInfo] = {
    name: CorpusInfo(name, CORPUS_FOLDERS[name], CORPUS_MODALITIES[name], name in _SYNTHETIC, _TITLES[name])
    for name in CORPUS_FOLDERS
}
"""The corpora experiments can use (folders and modalities from :mod:`mtl.corpora`)."""


# ---------------------------------------------------------------------------
# parameter checks (one place)
# ---------------------------------------------------------------------------
def _check_corpus(name: str, modality: str | None = None) -> CorpusInfo:
    if name not in CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    info = CORPORA[name]
    if modality is not None and modality not in info.modalities:
        raise ConfigError(f"{info.title} ({name}) has no {modality} modality; it has {', '.join(info.modalities)}")
    return info


def _check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
    return value


def _check_classes(classes: Iterable[str], corpus: str) -> tuple[str, ...]:
    wanted = canonical_order(classes)
    if not wanted:
        raise ConfigError(f"empty class list for {corpus}")
    missing = [c for c in wanted if c not in CLASS_SETS[corpus]]
    if missing:
        raise LabelError(f"{corpus} has no class {', '.join(missing)}; its classes are "
                         f"{', '.join(CLASS_SETS[corpus])}")
    return tuple(wanted)


def resolve_data_kind(corpus: str, data: str = "auto") -> str:
    """``"real"`` or ``"synthetic"``: which copy of ``corpus`` a run with ``data`` uses.

    ``"auto"`` takes the real corpus when ``data_root()/<folder>`` exists, else
    the synthetic one; ``"real"`` insists on the real corpus
    (:class:`~mtl.errors.MissingDataError` when absent); ``"synthetic"`` on the
    generated one (RAVDESS has none).
    """
    info = _check_corpus(corpus)
    _check_choice(data, DATA_MODES, "data mode")
    real_root = data_root() / info.folder
    if data in ("auto", "real") and real_root.is_dir():
        return "real"
    if data == "real":
        raise MissingDataError(
            f"real {info.title} requested (data='real') but {real_root} does not exist: set MTL_DATA_ROOT "
            f"to the folder holding {info.folder}/" + (", or use data='auto' or 'synthetic'" if info.synthetic else ""))
    if not info.synthetic:
        raise MissingDataError(
            f"{info.title} exists only as real recordings and {real_root} does not exist: set MTL_DATA_ROOT "
            f"to the folder holding {info.folder}/ (there is no synthetic {corpus})")
    return "synthetic"


def corpus_root(corpus: str, kind: str, config: Config) -> Path:
    """The folder of the real corpus, or of the synthetic one (generated on first use)."""
    info = _check_corpus(corpus)
    if kind == "real":
        root = data_root() / info.folder
        if not root.is_dir():
            raise MissingDataError(f"real {info.title} not found at {root}: set MTL_DATA_ROOT")
        return root
    from mtl.synthetic import make_corpus

    return Path(make_corpus(corpus, size=config.synthetic_size))


# ---------------------------------------------------------------------------
# data provenance
# ---------------------------------------------------------------------------
_FULL_DIGEST_LIMIT = 256 * 2**20
_SAMPLED_DIGESTS = 32


def _describe_copy(corpus: str, kind: str, root: Path, paths: Sequence[Path], config: Config) -> str:
    """One line naming the copy of the corpus, from what a few files actually are."""
    if kind == "synthetic":
        manifest = root / "synthetic.json"
        version = read_json(manifest).get("version") if manifest.is_file() else None
        return (f"synthetic {CORPORA[corpus].title} ({config.synthetic_size}, seed 0"
                + (f", generator version {version}" if version is not None else "") + "), generated by mtl.synthetic")
    info = CORPORA[corpus]
    audio = [p for p in paths if p.suffix.lower() in (".wav", ".flac")]
    if not audio:
        return f"real {info.title} at {root}"
    import soundfile

    probes = [soundfile.info(str(p)) for p in audio[:: max(1, len(audio) // 8)][:8]]
    rates = sorted({int(p.samplerate) for p in probes})
    durations = [p.frames / p.samplerate for p in probes]
    suffixes = sorted({p.suffix.lower().lstrip(".") for p in audio})
    mono = " mono" if all(p.channels == 1 for p in probes) else ""
    text = f"real {info.title}:{mono} {'/'.join(suffixes).upper()} at {'/'.join(f'{r / 1000:g}' for r in rates)} kHz"
    if corpus == "emodb" and rates == [22050] and all(abs(d - 2.0) < 1e-3 for d in durations):
        text += (", every probed file exactly 2.000 s: the processed copy (original EMO-DB is 16 kHz, "
                 "1.2-8.9 s); results are not directly comparable with the original audio")
    elif corpus == "ravdess" and rates == [16000] and suffixes == ["flac"]:
        text += ": the 16 kHz mono FLAC conversion of the 48 kHz original"
    return text


@functools.lru_cache(maxsize=64)
def _content_hash(root: str, relative: tuple[str, ...], sizes: tuple[int, ...]) -> tuple[str, str]:
    base = Path(root)
    total = sum(sizes)
    if total <= _FULL_DIGEST_LIMIT:
        chosen, how = relative, "sha1 of every file"
    else:
        step = max(1, len(relative) // _SAMPLED_DIGESTS)
        chosen, how = relative[::step][:_SAMPLED_DIGESTS], f"sha1 of {_SAMPLED_DIGESTS} evenly spaced files"
    digests = [file_digest(base / r) for r in chosen]
    listing = stable_hash([list(relative), list(sizes)], length=40)
    return stable_hash({"listing": listing, "digests": digests}, length=16), f"(relative path, size) of every file + {how}"


def corpus_provenance(corpus: str, kind: str, root: Path, table: pd.DataFrame, config: Config) -> dict[str, Any]:
    """What data a run used: kind, copy, root, file count and a content hash.

    The content hash covers the sorted (relative path, size) of every file of
    the corpus table plus the SHA-1 of every file when they total at most
    256 MB (EMO-DB: 47 MB, well under a second), else of 32 evenly spaced
    files -- enough to tell copies apart without reading gigabytes of video.
    """
    root = Path(root)
    paths = [Path(p) for p in table["path"]]
    relative = tuple(sorted(os.path.relpath(p, root) for p in paths))
    sizes = tuple((root / r).stat().st_size for r in relative)
    digest, method = _content_hash(str(root), relative, sizes)
    skipped = list(table.attrs.get("skipped", []))
    return {
        "corpus": corpus,
        "kind": kind,
        "copy": _describe_copy(corpus, kind, root, sorted(paths), config),
        "root": str(root),
        "n_files": len(relative),
        "n_files_skipped": len(skipped),
        "content_hash": digest,
        "hash_method": method,
    }


# ---------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------
def load_dataset(corpus: str, modality: str = "audio", config: Config | None = None,
                 classes: Iterable[str] | None = None, data: str = "auto",
                 progress: bool = False, n_jobs: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Features of one corpus restricted to some classes, with their provenance.

    Parameters
    ----------
    corpus : {"enterface", "savee", "emodb", "ravdess"}
    modality : {"audio", "video"}
    config : Config
        Feature settings and ``synthetic_size``; default ``get_profile("default")``.
    classes : list of str, optional
        Emotion classes to keep (canonical names); default all of the corpus's.
    data : {"auto", "real", "synthetic"}
        Which copy, see :func:`resolve_data_kind`.
    progress : bool
        Show a progress bar while features are computed (cached afterwards).
    n_jobs : int, optional
        Feature extraction processes (default: one per core; 1 extracts in
        this process, faster for a handful of files).

    Returns
    -------
    (FeatureSet, dict)
        The features (all classes are extracted once and cached, then the
        requested ones selected) and the provenance dict of
        :func:`corpus_provenance` plus ``classes``, ``modality``,
        ``n_samples``, ``n_recordings`` and ``n_files_skipped_features``
        (files the feature extractor could not use).
    """
    from mtl.corpora import load_corpus
    from mtl.features.cache import build_features

    config = config or get_profile("default")
    _check_corpus(corpus, modality)
    kind = resolve_data_kind(corpus, data)
    wanted = _check_classes(classes if classes is not None else CLASS_SETS[corpus], corpus)
    root = corpus_root(corpus, kind, config)
    table = load_corpus(corpus, root=root, modality=modality)
    features = build_features(table, config, progress=progress, n_jobs=n_jobs)
    keep = features.samples["emotion"].isin(wanted).to_numpy()
    features = features.subset(keep)
    provenance = corpus_provenance(corpus, kind, root, table, config)
    provenance.update(
        classes=list(wanted),
        modality=modality,
        n_samples=int(len(features)),
        n_files_skipped_features=int(len(getattr(features, "skipped", []) or [])),
        n_recordings=int(len(np.unique(recording_keys(features.samples)))) if len(features) else 0,
    )
    return features, provenance


def class_indices(samples: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Index of each sample's emotion in ``classes`` (which must contain it)."""
    lookup = {c: i for i, c in enumerate(classes)}
    emotions = samples["emotion"].astype(str)
    unknown = sorted(set(emotions) - set(lookup))
    if unknown:
        raise LabelError(f"samples have classes {', '.join(unknown)} outside {', '.join(classes)}")
    return emotions.map(lookup).to_numpy(dtype=np.int64)


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


# ---------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _config_key(config: Config, drop: frozenset[str]) -> dict[str, Any]:
    """The fields of ``config`` that differ from the paper's defaults, ``drop`` left out.

    Only differences enter a key, so a field added later, whose default keeps
    the old behaviour, leaves every existing key (and record) valid.
    """
    return differences_from_defaults(config.to_dict(), drop)


@dataclass(frozen=True)
class Cell:
    """One method x sources x target x classes x protocol x seed x fold under one config.

    ``protocol`` and ``seed`` are copied into ``config`` (the single source of
    truth the classifier sees). ``data`` names the copy of every corpus used,
    ``(("emodb", "real"), ...)``; :func:`make_cell` resolves it.
    ``source_config``, when given, trains the source model of a transfer or
    fine-tuning cell instead of ``config`` (e.g. one source model shared by
    target settings that differ only in how the target trains).
    """

    experiment: str
    method: str
    target: str
    sources: tuple[str, ...]
    modality: str
    classes: tuple[str, ...]
    source_classes: tuple[str, ...]
    protocol: str
    seed: int
    fold: int
    config: Config
    data: tuple[tuple[str, str], ...]
    source_config: Config | None = None

    def __post_init__(self) -> None:
        if not _SAFE_ID.match(self.experiment):
            raise ConfigError(f"experiment id {self.experiment!r} must be letters, digits, '_', '-', '.'")
        _check_choice(self.method, METHODS, "method")
        _check_choice(self.protocol, PROTOCOLS, "protocol")
        _check_choice(self.modality, MODALITIES, "modality")
        _check_corpus(self.target, self.modality)
        for source in self.sources:
            _check_corpus(source, self.modality)
        if self.method == "scratch" and self.sources:
            raise ConfigError("method 'scratch' uses no source corpus; pass sources=()")
        if self.method != "scratch" and not self.sources:
            raise ConfigError(f"method {self.method!r} needs at least one source corpus")
        if self.target in self.sources:
            raise ConfigError(f"the target {self.target} cannot also be a source")
        if self.fold < 0:
            raise ConfigError(f"fold must be >= 0, got {self.fold}")
        object.__setattr__(self, "sources", tuple(sorted(self.sources)))
        object.__setattr__(self, "config", self.config.replace(protocol=self.protocol, seed=int(self.seed)))
        if self.source_config is not None:
            if not self.sources:
                raise ConfigError("source_config needs a source corpus (method 'scratch' has none)")
            source_config = self.source_config.replace(protocol=self.protocol, seed=int(self.seed))
            # A source configuration equal to the cell's is no choice: one spelling, one key.
            object.__setattr__(self, "source_config", None if source_config == self.config else source_config)
        kinds = dict(self.data)
        for corpus in (self.target, *self.sources):
            if kinds.get(corpus) not in ("real", "synthetic"):
                raise ConfigError(f"cell data must name the copy (real/synthetic) of {corpus}")

    @property
    def n_folds(self) -> int:
        """Requested number of folds (the speaker protocol may use fewer, see :func:`make_folds`)."""
        return self.config.folds

    @property
    def key(self) -> str:
        """Hash of everything that defines the computation (see the module docstring)."""
        return stable_hash({
            "schema": SCHEMA_VERSION, "method": self.method, "target": self.target, "sources": list(self.sources),
            "modality": self.modality, "classes": list(self.classes), "source_classes": list(self.source_classes),
            "fold": self.fold, "data": sorted(map(list, self.data)),
            "config": _config_key(self.config, HOUSEKEEPING_FIELDS),
            **({} if self.source_config is None else
               {"source_config": _config_key(self.source_config, _SOURCE_IRRELEVANT)}),
        })

    @property
    def source_training_config(self) -> Config:
        """The configuration the source model is trained with: ``source_config``, or the cell's own."""
        return self.source_config or self.config

    @property
    def source_key(self) -> str | None:
        """Key of the source model this cell uses (None for scratch)."""
        if not self.sources:
            return None
        kinds = dict(self.data)
        return stable_hash({
            "schema": SCHEMA_VERSION, "sources": list(self.sources), "modality": self.modality,
            "classes": list(self.source_classes), "data": [[s, kinds[s]] for s in self.sources],
            "config": _config_key(self.source_training_config, _SOURCE_IRRELEVANT),
        })

    @property
    def record_path(self) -> Path:
        return results_dir() / "runs" / self.experiment / f"{self.key}.json"

    def describe(self) -> str:
        arrow = f"{'+'.join(self.sources)}->" if self.sources else ""
        return (f"{self.experiment}: {self.method} {arrow}{self.target} ({self.modality}, {self.protocol}, "
                f"seed {self.seed}, fold {self.fold})")


def resolve_classes(target: str, sources: Sequence[str] = (), classes: str | Iterable[str] | None = None,
                    source_classes: Iterable[str] | None = None,
                    partners: Sequence[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Target and source class sets of one run.

    ``classes`` is a list of names, or a rule:

    ``"shared"`` (default)
        The classes shared by the target, its sources and ``partners`` (the
        other corpora an experiment pairs with this target, so that a
        scratch baseline uses the same classes as the transfer it is compared
        with); sources use the same classes. The paper's six common classes
        of eNTERFACE and SAVEE (§4.3.1).
    ``"target"``
        Every class of the target; the sources use every class of any source
        (a union: PathNet's output layer is task-specific, so source and
        target class sets may differ).

    With an explicit list, the sources use those of its classes they have.
    Either way the target and the sources must share at least one class.
    """
    sources = tuple(sources)
    if classes is None or classes == "shared":
        wanted = tuple(shared_classes(target, *sources, *partners))
        source_wanted = wanted if sources else ()
    elif classes == "target":
        wanted = tuple(CLASS_SETS[target])
        source_wanted = tuple(canonical_order({c for s in sources for c in CLASS_SETS[s]})) if sources else ()
    elif isinstance(classes, str):
        raise ConfigError(f"classes must be a list of emotion names, 'shared' or 'target', got {classes!r}")
    else:
        wanted = _check_classes(classes, target)
        available = {c for s in sources for c in CLASS_SETS[s]}
        source_wanted = tuple(c for c in wanted if c in available) if sources else ()
    if source_classes is not None and sources:
        available = {c for s in sources for c in CLASS_SETS[s]}
        source_wanted = tuple(canonical_order(source_classes))
        missing = [c for c in source_wanted if c not in available]
        if missing:
            raise LabelError(f"no source among {', '.join(sources)} has class {', '.join(missing)}")
    if sources and not set(wanted) & set(source_wanted):
        raise LabelError(f"{'+'.join(sources)} and {target} share no emotion class "
                         f"(target classes: {', '.join(wanted)}; source classes: {', '.join(source_wanted) or 'none'})")
    return wanted, source_wanted


def make_cell(experiment: str, method: str, target: str, sources: Sequence[str] = (), modality: str = "audio",
              config: Config | None = None, classes: str | Iterable[str] | None = None,
              source_classes: Iterable[str] | None = None, protocol: str | None = None, seed: int = 0,
              fold: int = 0, data: str = "auto", partners: Sequence[str] = ()) -> Cell:
    """A validated :class:`Cell`, with classes and data copies resolved (see :func:`resolve_classes`)."""
    config = config or get_profile("default")
    _check_choice(method, METHODS, "method")
    _check_choice(modality, MODALITIES, "modality")
    protocol = protocol or config.protocol
    _check_choice(protocol, PROTOCOLS, "protocol")
    _check_choice(data, DATA_MODES, "data mode")
    sources = tuple(sources) if method != "scratch" else ()
    for corpus in (target, *sources, *partners):
        _check_corpus(corpus, modality)
    wanted, source_wanted = resolve_classes(target, sources, classes, source_classes, partners)
    kinds = tuple((c, resolve_data_kind(c, data)) for c in (target, *sorted(sources)))
    return Cell(experiment=experiment, method=method, target=target, sources=sources, modality=modality,
                classes=wanted, source_classes=source_wanted, protocol=protocol, seed=int(seed), fold=int(fold),
                config=config, data=kinds)


# ---------------------------------------------------------------------------
# code version
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """Package version, and the git commit and dirty flag when running from a checkout."""
    version: dict[str, Any] = {"package": mtl.__version__, "commit": None, "dirty": None}
    root = project_root()
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        version.update(commit=commit, dirty=bool(status.strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    return version


# ---------------------------------------------------------------------------
# source models
# ---------------------------------------------------------------------------
def _history_frame(history: Any) -> pd.DataFrame:
    if history is None:
        return pd.DataFrame()
    if isinstance(history, pd.DataFrame):
        return history
    return history.to_frame()


def _learning_curve(history: Any) -> list[dict[str, Any]]:
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
    from mtl.pathnet import mutate, random_genotype
    from mtl.pathnet.checks import numpy_generator

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


def source_model(cell: Cell, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """The cell's source model, trained once on all source data and cached on disk.

    Returns ``(SourceModel, info)``; ``info`` is the sidecar: key, sources,
    classes, data provenance, learning curve, pathways, ``seconds`` (training
    time when it was trained) and ``cached`` (False only for the call that
    trained it). A lock file makes parallel cells wait for one training.
    """
    from mtl.pathnet import SourceModel, train_source

    if cell.source_key is None:
        raise ConfigError("a scratch cell has no source model")
    folder = cache_dir() / "sources"
    weights, sidecar = folder / f"{cell.source_key}.pt", folder / f"{cell.source_key}.json"
    with file_lock(folder / f"{cell.source_key}.lock"):
        if weights.is_file() and sidecar.is_file():
            info = read_json(sidecar)
            info["cached"] = True
            return SourceModel.load(weights), info
        kinds, config = dict(cell.data), cell.source_training_config
        parts, labels, provenance = [], [], {}
        for corpus in cell.sources:
            classes = [c for c in cell.source_classes if c in CLASS_SETS[corpus]]
            features, prov = load_dataset(corpus, cell.modality, config, classes, data=kinds[corpus])
            parts.append(features.X)
            labels.append(class_indices(features.samples, cell.source_classes))
            provenance[corpus] = prov
        X = Standardizer().fit_transform(_Stacked(parts))
        y = np.concatenate(labels)
        task = "+".join(cell.sources)
        checkpoint = cache_dir() / "checkpoints" / f"source-{cell.source_key}" / "source.pt"
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
            "learning_curve": _learning_curve(model.history),
            "pathways": _source_pathways(model),
            "best_fitness": float(model.best_fitness),
            "seconds": seconds,
            "config": _config_key(config, _SOURCE_IRRELEVANT),
            "created": _now(),
        }
        write_json(sidecar, info)
        _remove_checkpoint(checkpoint.parent)
        info["cached"] = False
        return model, info


def _resuming(train: Any, checkpoint: Path) -> Any:
    """Run ``train`` (which resumes from ``checkpoint``); a checkpoint of another run is discarded once."""
    from mtl.pathnet import StateFileError

    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    try:
        return train()
    except StateFileError as error:
        log.warning("discarding an unusable checkpoint and starting afresh: %s", error)
        _remove_checkpoint(checkpoint.parent)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        return train()


def _remove_checkpoint(folder: Path) -> None:
    if folder.is_dir():
        for item in folder.iterdir():
            with contextlib.suppress(OSError):
                item.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------
# running one cell
# ---------------------------------------------------------------------------
def _existing_record(cell: Cell) -> dict[str, Any] | None:
    """The cell's own record, or a copy of the same computation stored for another experiment."""
    own = cell.record_path
    if own.is_file():
        return read_json(own)
    runs = results_dir() / "runs"
    for other in sorted(runs.glob(f"*/{cell.key}.json")) if runs.is_dir() else []:
        record = read_json(other)
        record.update(experiment=cell.experiment, reused_from=record.get("reused_from") or str(other.parent.name))
        write_json(own, record)
        return record
    return None


def train_target(cell: Cell, features: Any, y: np.ndarray, train: np.ndarray, held_out: np.ndarray,
                 checkpoint: Path, progress: bool = False) -> tuple[Any, np.ndarray, float, dict[str, Any] | None]:
    """Train ``cell``'s classifier on rows ``train`` and score rows ``held_out``.

    Standardises on the training rows only, fetches (or trains) the cell's
    source model for transfer and fine-tuning, fits with the held-out rows as
    the learning curve's validation set, resuming from ``checkpoint``.

    Returns ``(classifier, proba, target_seconds, source_info)``: ``proba``
    has one row per held-out sample; ``source_info`` is None for scratch.
    """
    from mtl.pathnet import PathNetClassifier

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


def run_cell(cell: Cell, progress: bool = False) -> dict[str, Any]:
    """Compute one cell and write its record; return the stored record if it exists.

    Steps: load the target features (restricted to ``cell.classes``), build
    the folds (deterministic from the seed), standardise on the training part
    of ``cell.fold``, train (for transfer/finetune on top of the cached source
    model), evaluate the held-out part at segment and utterance level, write
    the record atomically. An interrupted evolution resumes from its
    checkpoint under ``cache_dir()/checkpoints/<cell key>/``.
    """
    existing = _existing_record(cell)
    if existing is not None:
        return existing
    kinds = dict(cell.data)
    features, target_prov = load_dataset(cell.target, cell.modality, cell.config, cell.classes,
                                         data=kinds[cell.target])
    samples = features.samples.reset_index(drop=True)
    y = class_indices(samples, cell.classes)
    folds = make_folds(samples, y, cell.protocol, cell.config.folds, cell.seed)
    if cell.fold >= len(folds):
        raise ConfigError(f"{cell.describe()}: fold {cell.fold} does not exist, the {cell.protocol} protocol gives "
                          f"{len(folds)} folds for {cell.target}")
    train, test = folds[cell.fold]
    checkpoint = cache_dir() / "checkpoints" / cell.key / "target.pt"
    classifier, proba, target_seconds, source_info = train_target(cell, features, y, train, test, checkpoint,
                                                                  progress)
    metrics = evaluate(y[test], proba, recording_keys(samples.iloc[test]), cell.classes)

    history = getattr(classifier, "history_", None)
    notes = []
    if len(folds) < cell.config.folds:
        notes.append(f"{cell.protocol} protocol: {len(folds)} groups for {cell.config.folds} folds, so "
                     f"{len(folds)} folds (leave-one-speaker-out)")
    provenance = {cell.target: target_prov}
    if source_info is not None:
        provenance.update(source_info["provenance"])
    record = {
        "schema": SCHEMA_VERSION,
        "cell_key": cell.key,
        "experiment": cell.experiment,
        "method": cell.method,
        "sources": list(cell.sources),
        "target": cell.target,
        "modality": cell.modality,
        "classes": list(cell.classes),
        "source_classes": list(cell.source_classes),
        "protocol": cell.protocol,
        "seed": cell.seed,
        "fold": cell.fold,
        "n_folds": len(folds),
        "n_folds_requested": cell.config.folds,
        "config": cell.config.to_dict(),
        "config_differences": {k: list(v) for k, v in cell.config.differences_from_paper().items()},
        "data": {"kinds": dict(cell.data), "provenance": provenance},
        "code": code_version(),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "test_speakers": sorted(map(str, samples["speaker"].iloc[test].unique())) if "speaker" in samples else None,
        "metrics": metrics,
        "learning_curve": _learning_curve(history),
        "pathways": {"target": _target_pathways(classifier, cell.config, cell.target),
                     "source": source_info["pathways"] if source_info else None},
        "source": None if source_info is None else {
            "key": source_info["key"], "classes": source_info["classes"], "n_samples": source_info["n_samples"],
            "best_fitness": source_info.get("best_fitness"), "learning_curve": source_info["learning_curve"],
            "cached": source_info["cached"], "config_differences": source_info.get("config"),
        },
        "notes": notes,
        "timings": {"source_seconds": source_info["seconds"] if source_info else None,
                    "source_cached": source_info["cached"] if source_info else None,
                    "target_seconds": target_seconds},
        "created": _now(),
    }
    record = _json_safe(record)
    write_json(cell.record_path, record)
    _remove_checkpoint(checkpoint.parent)
    return record


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None (standard JSON; e.g. the accuracy of a class absent from a fold)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------------------------
# the paper's experiments
# ---------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Experiment:
    """One of the paper's tables or figures, as runs with default arguments."""

    id: str
    title: str
    notebook: str
    modality: str
    runs: tuple[Run, ...]
    paper_ref: str
    classes_rule: str
    """Prose: how the class sets are chosen (each run's ``classes`` applies it)."""
    protocols: tuple[str, ...] = ("paper",)
    data: str = "auto"
    folds: tuple[int, ...] | None = None
    """Folds to run by default (None = all)."""
    notes: str = ""

    def partners(self, target: str) -> tuple[str, ...]:
        """Corpora paired with ``target`` in this experiment's shared-class runs."""
        return tuple(sorted({s for r in self.runs if r.target == target and r.classes == "shared"
                             for s in r.sources}))


_SHARED_RULE = ("the classes shared by the target and its source(s) in this experiment -- eNTERFACE and SAVEE share "
                "anger, disgust, fear, happiness, sadness, surprise (§4.3.1); scratch baselines use the same ones")
_TARGET_RULE = ("every class of the target (EMO-DB: anger, boredom, disgust, fear, happiness, neutral, sadness, the "
                "7 classes of §4.1); the source model is trained on every class of its sources (a new output layer "
                "is evolved for the target)")

EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in (
    Experiment(
        id="table1_visual_transfer",
        title="Transfer between visual eNTERFACE and visual SAVEE",
        notebook="table1_visual_transfer.md", modality="video",
        runs=(Run("transfer", "savee", ("enterface",)), Run("transfer", "enterface", ("savee",))),
        paper_ref="Table 1, Fig. 7", classes_rule=_SHARED_RULE),
    Experiment(
        id="table2_visual_baselines",
        title="Visual transfer against fine-tuning and training from scratch",
        notebook="table2_visual_baselines.md", modality="video",
        runs=(Run("finetune", "savee", ("enterface",)), Run("scratch", "savee"),
              Run("transfer", "savee", ("enterface",)),
              Run("finetune", "enterface", ("savee",)), Run("scratch", "enterface"),
              Run("transfer", "enterface", ("savee",))),
        paper_ref="Table 2", classes_rule=_SHARED_RULE),
    Experiment(
        id="table3_speech_transfer",
        title="Speech transfer: eNTERFACE to SAVEE, and eNTERFACE+SAVEE to EMO-DB",
        notebook="table3_speech_transfer.md", modality="audio",
        runs=(Run("transfer", "savee", ("enterface",)),
              Run("transfer", "emodb", ("enterface", "savee"), classes="target")),
        paper_ref="Table 3, Fig. 8", classes_rule=f"eNTERFACE->SAVEE: {_SHARED_RULE}. ->EMO-DB: {_TARGET_RULE}",
        notes=("Table 3 prints a 'Sur' (surprise) column for EMO-DB, which has no surprise class; EMO-DB has "
               "boredom and neutral instead. We use EMO-DB's own 7 classes (pass classes=... to change it).")),
    Experiment(
        id="table4_speech_baselines",
        title="Speech transfer against fine-tuning and training from scratch",
        notebook="table4_speech_baselines.md", modality="audio",
        runs=(Run("finetune", "savee", ("enterface",)), Run("scratch", "savee"),
              Run("transfer", "savee", ("enterface",)),
              Run("finetune", "emodb", ("enterface", "savee"), classes="target"),
              Run("scratch", "emodb", classes="target"),
              Run("transfer", "emodb", ("enterface", "savee"), classes="target")),
        paper_ref="Table 4", classes_rule=f"SAVEE: {_SHARED_RULE}. EMO-DB: {_TARGET_RULE}",
        notes="Table 4 gives 0.85 for A_eNTER->SAV where Table 3 gives 0.71 for the same model."),
    Experiment(
        id="fig9_10_pathways",
        title="Pathways before and after evolution, on the source (audio eNTERFACE) and the target (audio SAVEE)",
        notebook="fig9_10_pathways.md", modality="audio",
        runs=(Run("transfer", "savee", ("enterface",)),),
        paper_ref="Figs. 9-10", classes_rule=_SHARED_RULE, folds=(0,),
        notes=("Records keep the initial and final populations and the best pathways of the source and the "
               "target, and the frozen source pathway (record['pathways']).")),
    Experiment(
        id="convergence",
        title="Held-out accuracy against generation: transfer, fine-tuning and scratch on audio SAVEE",
        notebook="convergence.md", modality="audio",
        runs=(Run("transfer", "savee", ("enterface",)), Run("finetune", "savee", ("enterface",)),
              Run("scratch", "savee")),
        paper_ref="§3.3.2 claim (faster learning than scratch or fine-tuning)", classes_rule=_SHARED_RULE),
    Experiment(
        id="real_recordings",
        title="Real recordings: EMO-DB from scratch, fine-tuned and transferred from RAVDESS",
        notebook="real_recordings.md", modality="audio",
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
            "runs": "; ".join(f"{r.method} {'+'.join(r.sources) + '->' if r.sources else ''}{r.target}"
                              for r in entry.runs),
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
                              + "; ".join(f"{r.method} {'+'.join(r.sources) or '-'}->{r.target}" for r in entry.runs))
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
        _check_choice(protocol, PROTOCOLS, "protocol")
    _check_choice(data, DATA_MODES, "data mode")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("seeds is empty")

    cells = []
    for run in runs:
        partners = entry.partners(run.target) if entry is not None and run.classes == "shared" else ()
        rule = classes if classes is not None else run.classes
        for protocol in protocols:
            for seed in seeds:
                first = make_cell(experiment, run.method, run.target, run.sources, modality, config, rule,
                                  source_classes, protocol, seed, 0, data, partners)
                fold_ids = list(folds) if folds is not None else range(_n_folds(first))
                for fold in fold_ids:
                    cells.append(dataclasses.replace(first, fold=int(fold)))
    return cells


def _n_folds(cell: Cell) -> int:
    """Number of folds the cell's protocol yields for its target."""
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
    """Run (or load) every cell of an experiment in this process; return their records.

    ``run_experiment("table1_visual_transfer", config=get_profile("smoke"))``
    runs the registered experiment; ``run_experiment("mine", "transfer",
    "emodb", sources=("ravdess",))`` a custom one. Parameters as in
    :func:`experiment_cells`; ``progress`` shows a bar over cells. Cells whose
    record exists are loaded, not recomputed.
    """
    cells = experiment_cells(experiment, method, target, sources, modality, config, classes, source_classes,
                             protocols, seeds, folds, data)
    records = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), desc=experiment, unit="cell")
    try:
        for cell in cells:
            if bar is not None:
                bar.set_postfix_str(f"{cell.method} {'+'.join(cell.sources) or '-'}->{cell.target} "
                                    f"{cell.protocol} s{cell.seed} f{cell.fold}")
            records.append(run_cell(cell))
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return records

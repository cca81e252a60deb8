"""How many samples the ablation's cells see: the target's folds, its average training part, the sources.

The grid (``budget="equal_steps"``), the cost model and the nested selection
need sizes before anything trains. Sizes come from the feature cache (or, for
the sources, from the audio files' headers) and are memoised in this process,
keyed on the folders data and features come from (:func:`where`), so a test
that points ``MTL_DATA_ROOT`` elsewhere gets fresh numbers.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from mtl.config import Config, get_profile
from mtl.corpora import corpus_card, load_corpus
from mtl.datasets import class_indices, corpus_root, load_dataset
from mtl.evaluation import make_folds
from mtl.errors import BadInputError
from mtl.features.audio import SOUNDFILE_SUFFIXES, audio_info, frame_params, segment_count
from mtl.paths import cache_dir, data_root

__all__ = ["where", "feature_key_config", "mean_train_size", "outer_fold_sizes", "source_size"]

_FEATURE_FIELDS = ("input_shape", "sample_rate", "n_mels", "fmin", "fmax", "win_ms", "hop_ms", "segment_frames",
                   "segment_overlap", "face_size", "frame_step", "synthetic_size", "folds", "input_kind")
"""The Config fields that change a corpus's features or its folds; the others cannot change a size.
(``input_kind``: utterance functionals are one sample per recording, so their folds index other rows.)"""


def where() -> str:
    """Part of every in-memory cache key: the folders data and features come from."""
    return f"{data_root()}|{cache_dir()}"


def feature_key_config(config: Config) -> Config:
    """``config`` with the fields that cannot change features or folds reset (better cache hits)."""
    return get_profile("paper").replace(**{k: getattr(config, k) for k in _FEATURE_FIELDS})


@functools.lru_cache(maxsize=32)
def _dataset_size(corpus: str, classes: tuple[str, ...] | None, config: Config, data: str, where: str) -> int:
    features, _ = load_dataset(corpus, "audio", config, classes, data=data)
    return int(len(features))


def mean_train_size(corpus: str, config: Config, data: str) -> int:
    """Samples in the average training part of ``config.folds``-fold cross-validation over all of ``corpus``."""
    n = _dataset_size(corpus, None, feature_key_config(config), data, where())
    return max(1, round(n * (config.folds - 1) / config.folds))


@functools.lru_cache(maxsize=64)
def _fold_sizes(target: str, modality: str, classes: tuple[str, ...], kind: str, config: Config,
                protocol: str, seed: int, where: str) -> tuple[tuple[int, int], ...]:
    features, _ = load_dataset(target, modality, config, classes, data=kind)
    samples = features.samples.reset_index(drop=True)
    folds = make_folds(samples, class_indices(samples, classes), protocol, config.folds, seed)
    return tuple((len(train), len(test)) for train, test in folds)


def outer_fold_sizes(cell: Any) -> tuple[tuple[int, int], ...]:
    """``(n_train, n_test)`` of every outer fold of a cell's target, protocol and seed."""
    return _fold_sizes(cell.target, cell.modality, cell.classes, dict(cell.data)[cell.target],
                       feature_key_config(cell.config), cell.protocol, cell.seed, where())


def source_size(cell: Any) -> int:
    """Samples of a transfer cell's source corpora (its source classes only)."""
    kinds = dict(cell.data)
    return sum(_count_segments(source, tuple(c for c in cell.source_classes if c in corpus_card(source).classes),
                               feature_key_config(cell.config), kinds[source], where()) for source in cell.sources)


@functools.lru_cache(maxsize=32)
def _count_segments(corpus: str, classes: tuple[str, ...], config: Config, kind: str, where: str) -> int:
    """Log-Mel segments a corpus yields, from its files' durations (headers only, no decoding).

    Counting beats extracting for a cost estimate: RAVDESS's features take
    minutes to extract, its headers a second to read. Files that will be
    rejected for their samples (digital silence) are counted too; those
    rejected for their header (:func:`mtl.features.audio.audio_info`) are not.
    Containers soundfile cannot read (video) fall back to the extracted features.
    """
    table = load_corpus(corpus, root=corpus_root(corpus, kind, config), modality="audio")
    paths = table.loc[table["emotion"].isin(classes), "path"].astype(str)
    if not all(Path(path).suffix.lower() in SOUNDFILE_SUFFIXES for path in paths):
        return _dataset_size(corpus, classes, config, kind, where)
    win, hop, _ = frame_params(config)
    total = 0
    for path in paths:
        try:
            info = audio_info(path)
        except BadInputError:  # the features reject it too: no segments
            continue
        n = int(round(info.frames * config.sample_rate / info.samplerate))
        total += segment_count(1 + (n - win) // hop if n >= win else 0, config)
    return total

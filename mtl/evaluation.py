"""Cross-validation protocols, standardisation and metrics (paper §4.2).

The paper evaluates with k-fold cross-validation, k=5, "each data set was
randomly partitioned into k equal parts", and reports accuracy and confusion
matrices. The samples it partitions are the PathNet inputs: 655 ms log-Mel
segments (audio) or face crops of single video frames (video). Three protocols
are offered by :func:`make_folds`:

``"paper"``
    Stratified random folds over *samples* (segments or frames): the paper's
    protocol and the default. Overlapping segments of one utterance, and
    consecutive frames of one clip, are near-copies of each other and land in
    both the training and the test fold, so this protocol measures
    recognition of seen recordings and scores highest.
``"utterance"``
    Every sample of one recording (utterance or clip) is in the same fold
    (stratified group k-fold, groups = recording).
``"speaker"``
    Speaker-independent folds (groups = corpus + speaker), the usual practice
    in speech emotion recognition. When a corpus has fewer speakers than
    folds (SAVEE has 4), the number of folds becomes the number of speakers,
    i.e. leave-one-speaker-out, and a note is logged; fewer than two speakers
    is an error.

Metrics follow the paper's table cells: overall accuracy, and per-class
accuracy, which is the recall of each class (the diagonal of the row-normalised
confusion matrix). The unweighted average recall (UAR, balanced accuracy) is
reported beside them because the corpora are unbalanced. Utterance-level
scores pool the segment (or frame) probabilities of each recording, by their
mean and by majority vote, and are reported beside the segment-level ones.
Facial action-unit (AU) detection is scored per AU by F1 (:func:`au_scores`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from mtl.config import PROTOCOLS
from mtl.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "PROTOCOLS",
    "make_folds",
    "recording_keys",
    "Standardizer",
    "confusion",
    "segment_scores",
    "uar",
    "pool_utterances",
    "utterance_scores",
    "evaluate",
    "au_scores",
]


# ---------------------------------------------------------------------------
# folds
# ---------------------------------------------------------------------------
def recording_keys(samples: pd.DataFrame) -> np.ndarray:
    """One key per sample naming the recording (utterance or clip) it was cut from.

    The file path identifies a recording uniquely; utterance codes alone do
    not (SAVEE reuses ``a01`` for every speaker), so without a ``path`` column
    the key is corpus + speaker + utterance. A table whose recordings span
    several files (the frames of an image sequence, :mod:`mtl.corpora.cards`)
    has a ``recording`` column, which wins.
    """
    if "recording" in samples.columns:
        parts = [samples["recording"].astype(str)]
        if "corpus" in samples.columns:
            parts.insert(0, samples["corpus"].astype(str))
    elif "path" in samples.columns:
        parts = [samples["path"].astype(str)]
        if "corpus" in samples.columns:
            parts.insert(0, samples["corpus"].astype(str))
    else:
        missing = {"utterance"} - set(samples.columns)
        if missing:
            raise ConfigError("samples need a 'path' or an 'utterance' column to group by recording")
        parts = [samples[c].astype(str) for c in ("corpus", "speaker", "utterance") if c in samples.columns]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key.to_numpy()


def _speaker_keys(samples: pd.DataFrame) -> np.ndarray:
    if "speaker" not in samples.columns:
        raise ConfigError("the 'speaker' protocol needs a 'speaker' column in the samples table")
    speaker = samples["speaker"].astype(str)
    if "corpus" in samples.columns:
        speaker = samples["corpus"].astype(str) + "|" + speaker
    return speaker.to_numpy()


def make_folds(samples: pd.DataFrame, y: Sequence[int] | np.ndarray, protocol: str = "paper",
               n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split samples into cross-validation folds under one protocol.

    Parameters
    ----------
    samples : DataFrame
        One row per sample (segment or frame), with the corpus-table columns
        (``corpus``, ``path``, ``speaker``, ``utterance``...).
    y : array of int, shape (n,)
        Class index of each sample; folds are stratified by it.
    protocol : {"paper", "utterance", "speaker"}
        See the module docstring. Default ``"paper"``.
    n_folds : int
        k, default 5. For ``"speaker"`` it is lowered to the number of speakers
        when there are fewer (leave-one-speaker-out).
    seed : int
        Shuffling seed; the same seed gives the same folds.

    Returns
    -------
    list of (train_idx, test_idx)
        Sorted integer positions into ``samples``; the test parts are disjoint
        and together cover every sample.
    """
    y = np.asarray(y)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if len(y) != len(samples):
        raise ConfigError(f"y has {len(y)} labels but samples has {len(samples)} rows")
    if int(n_folds) < 2:
        raise ConfigError(f"n_folds must be >= 2, got {n_folds}")
    n_folds = int(n_folds)
    if len(y) < n_folds:
        raise ConfigError(f"cannot make {n_folds} folds from {len(y)} samples")
    index = np.arange(len(y))

    if protocol == "paper":
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            # A class smaller than k is legal, it just misses some test folds.
            warnings.filterwarnings("ignore", message=".*least populated class.*")
            splits = list(splitter.split(index, y))
    else:
        if protocol == "utterance":
            groups = recording_keys(samples)
            n_groups = len(np.unique(groups))
            if n_groups < n_folds:
                raise ConfigError(f"the 'utterance' protocol needs at least {n_folds} recordings for "
                                  f"{n_folds} folds, found {n_groups}")
        else:
            groups = _speaker_keys(samples)
            n_groups = len(np.unique(groups))
            if n_groups < 2:
                raise ConfigError(f"the 'speaker' protocol needs at least 2 speakers, found {n_groups}")
            if n_groups < n_folds:
                log.warning("speaker protocol: only %d speakers for %d folds; using %d folds "
                            "(leave-one-speaker-out)", n_groups, n_folds, n_groups)
                n_folds = n_groups
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*least populated class.*")
            splits = list(splitter.split(index, y, groups))
    return [(np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)) for train, test in splits]


# ---------------------------------------------------------------------------
# standardisation
# ---------------------------------------------------------------------------
class Standardizer:
    """Zero mean, unit variance per input element, fitted on the training fold only.

    The mean and standard deviation are statistics of the data; computing
    them on the test fold too would let test samples shape the inputs the
    model is trained on (leakage), so :meth:`fit` sees training samples only
    and :meth:`transform` applies the same numbers to both folds.

    Parameters
    ----------
    per : {"feature", "bin_channel"}
        ``"feature"`` (default): one mean/std per element of the (H, W, C)
        sample. ``"bin_channel"``: one per row and channel, pooled over the
        width axis -- for log-Mel images (Mel bands x frames x channels) a
        statistic per Mel band and per static/delta/delta-delta channel that
        does not depend on a frame's position in the 655 ms window.
    eps : float
        Standard deviations below ``eps`` (constant inputs, e.g. zero padding)
        are replaced by 1 so that such inputs map to 0.
    chunk : int
        Samples processed at a time; inputs may be memory-mapped arrays larger
        than memory.
    """

    def __init__(self, per: str = "feature", eps: float = 1e-6, chunk: int = 2048):
        if per not in ("feature", "bin_channel"):
            raise ConfigError(f"per must be 'feature' or 'bin_channel', got {per!r}")
        self.per = per
        self.eps = float(eps)
        self.chunk = int(chunk)

    def _reduce_axes(self, ndim: int) -> tuple[int, ...]:
        if self.per == "feature":
            return (0,)
        if ndim != 4:
            raise ConfigError(f"per='bin_channel' needs samples shaped (n, H, W, C), got {ndim} dimensions")
        return (0, 2)

    def fit(self, X: np.ndarray, indices: np.ndarray | None = None) -> "Standardizer":
        """Learn the statistics from ``X[indices]`` (all of ``X`` when ``indices`` is None)."""
        rows = np.arange(len(X)) if indices is None else np.asarray(indices)
        if len(rows) == 0:
            raise ConfigError("cannot fit a Standardizer on an empty training set")
        axes = self._reduce_axes(np.ndim(X))
        total = None
        total_sq = None
        count = 0
        for start in range(0, len(rows), self.chunk):
            block = np.asarray(X[rows[start:start + self.chunk]], dtype=np.float64)
            s = block.sum(axis=axes, keepdims=True)
            sq = np.square(block).sum(axis=axes, keepdims=True)
            total = s if total is None else total + s
            total_sq = sq if total_sq is None else total_sq + sq
            count += block.size // s.size
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        std = np.sqrt(var)
        std[std < self.eps] = 1.0
        self.mean_ = mean[0].astype(np.float32)
        self.scale_ = std[0].astype(np.float32)
        self.n_samples_seen_ = len(rows)
        return self

    def transform(self, X: np.ndarray, indices: np.ndarray | None = None) -> np.ndarray:
        """A new float32 array ``(X[indices] - mean) / std``."""
        if not hasattr(self, "mean_"):
            raise ConfigError("Standardizer.transform called before fit")
        rows = np.arange(len(X)) if indices is None else np.asarray(indices)
        out = np.empty((len(rows),) + tuple(np.shape(X)[1:]), dtype=np.float32)
        for start in range(0, len(rows), self.chunk):
            block = np.asarray(X[rows[start:start + self.chunk]], dtype=np.float32)
            out[start:start + len(block)] = (block - self.mean_) / self.scale_
        return out

    def fit_transform(self, X: np.ndarray, indices: np.ndarray | None = None) -> np.ndarray:
        return self.fit(X, indices).transform(X, indices)


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------
def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int,
              normalise: bool = False) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class (indices 0..n_classes-1).

    ``normalise=True`` divides each row by its total, so the diagonal is the
    per-class accuracy; rows of classes absent from ``y_true`` are NaN.
    """
    counts = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=np.arange(n_classes))
    if not normalise:
        return counts
    totals = counts.sum(axis=1, keepdims=True).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), np.nan)


def uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted average recall (balanced accuracy) of one set of predictions."""
    with warnings.catch_warnings():
        # A predicted class absent from this fold's truth is not a problem here.
        warnings.filterwarnings("ignore", message=".*y_pred contains classes not in y_true.*")
        return float(balanced_accuracy_score(y_true, y_pred))


def segment_scores(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, UAR, per-class accuracy and confusion matrix of one set of predictions.

    Returns a JSON-ready dict: ``accuracy``, ``uar``, ``per_class``
    (``{class: recall}``; NaN for a class absent from ``y_true``),
    ``confusion`` (counts, rows = true class in ``classes`` order),
    ``classes``, ``n``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise ConfigError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise ConfigError("no samples to score")
    classes = [str(c) for c in classes]
    counts = confusion(y_true, y_pred, len(classes))
    recall = np.diag(confusion(y_true, y_pred, len(classes), normalise=True))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uar": uar(y_true, y_pred),
        "per_class": {c: float(r) for c, r in zip(classes, recall)},
        "confusion": counts.tolist(),
        "classes": classes,
        "n": int(len(y_true)),
    }


def pool_utterances(proba: np.ndarray, groups: Sequence[Any], method: str = "mean",
                    y: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pool sample-level class probabilities into one decision per recording.

    Parameters
    ----------
    proba : array, shape (n, K)
        Class probabilities of each sample.
    groups : array-like, shape (n,)
        Recording key of each sample (see :func:`recording_keys`).
    method : {"mean", "vote"}
        ``"mean"``: the class with the highest mean probability.
        ``"vote"``: the class predicted for most samples; ties go to the tied
        class with the highest mean probability.
    y : array of int, optional
        Sample labels; every sample of one recording must carry the same one.

    Returns
    -------
    keys, predictions, labels
        Recording keys (sorted), the pooled class of each, and each
        recording's label (None when ``y`` is None).
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ConfigError(f"proba must be (n_samples, n_classes), got shape {proba.shape}")
    if method not in ("mean", "vote"):
        raise ConfigError(f"method must be 'mean' or 'vote', got {method!r}")
    groups = np.asarray(groups)
    if len(groups) != len(proba):
        raise ConfigError(f"{len(groups)} group keys for {len(proba)} samples")
    keys, inverse = np.unique(groups, return_inverse=True)
    n_groups, n_classes = len(keys), proba.shape[1]
    sizes = np.bincount(inverse, minlength=n_groups).astype(float)
    mean_proba = np.zeros((n_groups, n_classes))
    np.add.at(mean_proba, inverse, proba)
    mean_proba /= sizes[:, None]
    if method == "mean":
        predictions = mean_proba.argmax(axis=1)
    else:
        votes = np.zeros((n_groups, n_classes))
        np.add.at(votes, (inverse, proba.argmax(axis=1)), 1.0)
        tied = votes == votes.max(axis=1, keepdims=True)
        predictions = np.where(tied, mean_proba, -np.inf).argmax(axis=1)
    labels = None
    if y is not None:
        y = np.asarray(y)
        labels = np.full(n_groups, -1, dtype=np.int64)
        labels[inverse] = y
        if np.any(labels[inverse] != y):
            bad = keys[np.unique(inverse[labels[inverse] != y])][:3]
            raise ConfigError(f"samples of one recording carry different labels: {', '.join(map(str, bad))}")
    return keys, predictions, labels


def utterance_scores(y_true: Sequence[int], proba: np.ndarray, groups: Sequence[Any],
                     classes: Sequence[str]) -> dict[str, Any]:
    """Utterance-level scores by mean probability and by majority vote.

    Returns ``{"mean_prob": segment_scores(...), "vote": segment_scores(...),
    "n_utterances": int}`` computed over recordings instead of samples.
    """
    out: dict[str, Any] = {}
    for method, name in (("mean", "mean_prob"), ("vote", "vote")):
        keys, predictions, labels = pool_utterances(proba, groups, method, y=y_true)
        out[name] = segment_scores(labels, predictions, classes)
    out["n_utterances"] = int(len(keys))
    return out


def evaluate(y_true: Sequence[int], proba: np.ndarray, groups: Sequence[Any],
             classes: Sequence[str]) -> dict[str, Any]:
    """Every metric of one test fold, segment- and utterance-level.

    Segment-level predictions are ``argmax(proba)``. Returns the keys of
    :func:`segment_scores` plus ``"utterance"``: :func:`utterance_scores`.
    """
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ConfigError(f"proba must have one column per class ({len(classes)}), got shape {proba.shape}")
    scores = segment_scores(y_true, proba.argmax(axis=1), classes)
    scores["utterance"] = utterance_scores(y_true, proba, groups, classes)
    return scores


def au_scores(y_true: np.ndarray, proba: np.ndarray, au_names: Sequence[str], threshold: float = 0.5
              ) -> dict[str, Any]:
    """F1 of each action unit and their mean, over the entries that have a label.

    Parameters
    ----------
    y_true : (n, n_aus) array
        1 = the AU occurs, 0 = it does not, NaN = unknown (left out).
    proba : (n, n_aus) array
        Predicted probabilities of occurrence; ``>= threshold`` predicts an occurrence.
    au_names : the AUs, one per column.
    threshold : float, default 0.5

    Returns
    -------
    ``{"f1": {AU: F1}, "mean_f1": float, "n": {AU: labelled entries}, "positives": {AU: true occurrences}}``.
    F1 = 2 TP / (2 TP + FP + FN); it is NaN for an AU that neither occurs nor
    is predicted among its labelled entries (nothing to find), and ``mean_f1``
    averages the others (NaN when none is left).
    """
    y_true, proba = np.asarray(y_true, dtype=np.float64), np.asarray(proba, dtype=np.float64)
    names = [str(a) for a in au_names]
    if y_true.ndim != 2 or y_true.shape != proba.shape or y_true.shape[1] != len(names):
        raise ConfigError(f"y_true {y_true.shape} and proba {proba.shape} must both be (n, {len(names)}), "
                          f"one column per AU ({', '.join(names)})")
    known = np.isfinite(y_true)
    truth, predicted = (y_true == 1) & known, (proba >= threshold) & known
    tp = (truth & predicted).sum(axis=0)
    wrong = (truth != predicted).sum(axis=0)  # FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + wrong > 0, 2 * tp / (2 * tp + wrong), np.nan)
    defined = f1[np.isfinite(f1)]
    return {"f1": dict(zip(names, map(float, f1))),
            "mean_f1": float(defined.mean()) if len(defined) else float("nan"),
            "n": dict(zip(names, map(int, known.sum(axis=0)))),
            "positives": dict(zip(names, map(int, truth.sum(axis=0))))}

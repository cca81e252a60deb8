"""Linear models on the utterance-level functionals: a linear SVM and logistic regression (scikit-learn).

One sample per recording (:mod:`mtl.features.functionals`, 96 features),
standardised on the training recordings, classes weighted by the inverse of
their frequency (the corpora are unbalanced and the score is UAR). The
regularisation strength C is chosen among :data:`C_GRID` by the mean UAR on
inner folds of the training recordings (:func:`mtl.reference.base.inner_folds`),
then the model is refitted on every training recording.

Folds. Under the ``utterance`` and ``speaker`` protocols every segment of a
recording is on one side of the PathNet cell's fold, so the recordings of
its training and held-out segments are exactly its folds. Under the
``paper`` protocol segments of one recording fall on both sides, which an
utterance-level method cannot follow: its folds are then random stratified
folds over recordings (the same seed and k), the random k-fold protocol of
the utterance-level literature.

The SVM has no probabilities; its class scores are the softmax of its
decision values (the argmax, and so every metric, is the SVM's decision).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mtl.config import Config
from mtl.errors import ConfigError
from mtl.evaluation import make_folds, recording_keys, uar
from mtl.reference.base import ReferenceFit, inner_folds
from mtl.features.functionals import functionals_for

__all__ = ["C_GRID", "LINEAR_MODELS", "utterance_split", "fit_linear"]

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
"""Candidate regularisation strengths (inverse; scikit-learn's ``C``)."""


def _svm(c: float) -> Any:
    return make_pipeline(StandardScaler(), LinearSVC(C=c, class_weight="balanced", max_iter=20000))


def _logistic(c: float) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=5000))


LINEAR_MODELS = {"svm": _svm, "logreg": _logistic}
"""Reference name -> a function of C returning the unfitted pipeline."""


def _scores(model: Any, X: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    return softmax(model.decision_function(X), axis=1)


def _fit(name: str, c: float, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # C=10 on 96 features: close enough
        return LINEAR_MODELS[name](c).fit(X, y)


def utterance_split(split: Any, protocol: str, n_folds: int, fold: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, train, test)``: one segment row per recording, and the recordings (positions into it) of each side.

    See the module docstring for the folds of each protocol.
    """
    keys = recording_keys(split.samples)
    _, first, rows = np.unique(keys, return_index=True, return_inverse=True)
    if protocol == "paper":
        train, test = make_folds(split.samples.iloc[first], split.y[first], "paper", n_folds, seed)[fold]
        return first, train, test
    train, test = np.unique(rows[split.train]), np.unique(rows[split.held_out])
    if np.intersect1d(train, test).size:
        raise ConfigError(f"{protocol} protocol: a recording has segments on both sides of fold {fold}")
    return first, train, test


def fit_linear(name: str, split: Any, config: Config, fold: int, n_classes: int) -> ReferenceFit:
    """Fit reference ``name`` (``"svm"`` or ``"logreg"``) on the functionals of ``split``'s training recordings.

    ``fold`` is the outer fold (the paper protocol's recording folds need it); ``n_classes`` is unused (the
    classes are those of ``split.y``; every class has training recordings in every fold).
    """
    X_all, _ = functionals_for(split.samples, split.features.key, config)
    first, train, test = utterance_split(split, config.protocol, config.folds, fold, config.seed)
    y = split.y[first]
    samples = split.samples.iloc[first].reset_index(drop=True)
    inner, inner_notes = inner_folds(samples.iloc[train], y[train], config.protocol, config.seed)
    inner_uar = {}
    for c in C_GRID:
        uars = []
        for fit_rows, val_rows in inner:
            model = _fit(name, c, X_all[train[fit_rows]], y[train[fit_rows]])
            uars.append(uar(y[train[val_rows]], model.predict(X_all[train[val_rows]])))
        inner_uar[c] = float(np.mean(uars))
    best = max(C_GRID, key=lambda c: (inner_uar[c], -c))  # the stronger regularisation on a tie
    model = _fit(name, best, X_all[train], y[train])
    details = {"C": best, "inner_uar": {str(c): u for c, u in inner_uar.items()}, "n_inner_folds": len(inner),
               "n_features": int(X_all.shape[1]), "input": "utterance functionals"}
    if config.protocol == "paper":
        inner_notes += ("paper protocol: random stratified folds over recordings (an utterance-level method cannot "
                        "split the segments of one recording)",)
    return ReferenceFit(proba=_scores(model, X_all[test]), y=y[test], scored=samples.iloc[test], n_train=len(train),
                        details=details, notes=inner_notes)

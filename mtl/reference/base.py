"""What every reference method returns, and the inner folds they choose their settings on.

A reference method is a function ``fit(split, config, fold, n_classes) -> ReferenceFit``:
it trains on ``split.train`` (a :class:`mtl.runner.Split`, outer fold ``fold`` of
a PathNet cell) and returns class probabilities for the rows it scores. It
never reads the held-out rows before it predicts them: settings are chosen
on inner folds of the training part (:func:`inner_folds`), built by the
outer cell's protocol, so a speaker-independent outer fold is tuned
speaker-independently too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mtl.errors import ConfigError
from mtl.evaluation import make_folds

__all__ = ["ReferenceFit", "N_INNER", "inner_folds"]

N_INNER = 4
"""Inner folds of the training part on which a reference method chooses its settings."""


@dataclass(frozen=True)
class ReferenceFit:
    """Class probabilities of the scored rows, and what the method chose on the way."""

    proba: np.ndarray
    """``(n_scored, n_classes)``, rows in the order of ``scored``."""
    y: np.ndarray
    """True class index of each scored row."""
    scored: pd.DataFrame
    """The scored rows' samples (segments, or recordings for an utterance-level method)."""
    n_train: int
    """Training rows (segments or recordings)."""
    details: dict[str, Any] = field(default_factory=dict)
    """JSON-ready: the settings chosen and their inner scores, epochs, neighbour statistics."""
    notes: tuple[str, ...] = ()


def inner_folds(samples: pd.DataFrame, y: np.ndarray, protocol: str, seed: int,
                n_inner: int = N_INNER) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[str, ...]]:
    """``n_inner`` folds of a training part (positions into ``samples``) by the outer ``protocol``, and notes.

    The speaker protocol lowers ``n_inner`` to the number of training
    speakers when there are fewer (:func:`mtl.evaluation.make_folds`); a
    training part of one speaker (a corpus of few speakers) is split by
    utterance instead, and the note says so. Any protocol lowers ``n_inner``
    to the size of the largest class when that is smaller (a tiny corpus),
    never below 2.
    """
    samples = samples.reset_index(drop=True)
    notes: tuple[str, ...] = ()
    if protocol == "speaker" and samples["speaker"].nunique() < 2:
        protocol = "utterance"
        notes = ("the training part holds one speaker: inner folds grouped by utterance, not by speaker",)
    n_inner = max(2, min(n_inner, int(np.bincount(np.asarray(y)).max(initial=0))))
    try:
        return make_folds(samples, y, protocol, n_inner, seed), notes
    except (ConfigError, ValueError) as error:  # scikit-learn's splitters raise ValueError
        raise ConfigError(f"cannot build {n_inner} inner folds ({protocol} protocol) from a training part of "
                          f"{len(samples)} rows: {error}") from error



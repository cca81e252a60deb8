"""1-nearest-neighbour on the 64 x 64 x 3 segments: how much a protocol rewards remembering its neighbours.

Each held-out segment takes the label of the closest training segment
(Euclidean distance between the flattened inputs, standardised per element
on the training rows as PathNet's are). The method learns nothing; it can
only recall. Under the paper's protocol (random folds over segments) the
segments on either side of a held-out one -- windows overlap by 30 of their
64 frames -- are usually in the training fold, so 1-NN scores well by
finding the same audio again. Grouped by utterance or by speaker it cannot.
The record keeps how often the neighbour came from the same recording and
from the same speaker (``reference.same_recording``, ``reference.same_speaker``):
that fraction is the leakage the protocol lets in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtl.config import Config
from mtl.evaluation import Standardizer, recording_keys
from mtl.reference.base import ReferenceFit

__all__ = ["nearest_neighbours", "fit_nearest"]

_CHUNK = 256
"""Held-out rows compared at a time (a 256 x n_train distance block)."""


def nearest_neighbours(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row of ``train`` closest to each row of ``query`` (squared Euclidean distance; lowest row on a tie)."""
    train = train.reshape(len(train), -1).astype(np.float32)
    query = query.reshape(len(query), -1).astype(np.float32)
    norms = np.einsum("ij,ij->i", train, train)
    found = np.empty(len(query), dtype=np.int64)
    for start in range(0, len(query), _CHUNK):
        block = query[start:start + _CHUNK]
        # |q - t|^2 = |q|^2 - 2 q.t + |t|^2; |q|^2 is the same for every t, so it is left out.
        found[start:start + len(block)] = np.argmin(norms[None, :] - 2.0 * block @ train.T, axis=1)
    return found


def fit_nearest(split: Any, config: Config, fold: int, n_classes: int) -> ReferenceFit:
    """1-NN over the segments of ``split`` (every metric of its record; the neighbour statistics in ``details``)."""
    scaler = Standardizer().fit(split.features.X, split.train)
    neighbour = split.train[nearest_neighbours(scaler.transform(split.features.X, split.train),
                                               scaler.transform(split.features.X, split.held_out))]
    predicted = split.y[neighbour]
    proba = np.eye(n_classes)[predicted]
    recordings = recording_keys(split.samples)
    details = {"same_recording": float(np.mean(recordings[neighbour] == recordings[split.held_out])),
               "input": "log-Mel segments"}
    if "speaker" in split.samples:
        speakers = split.samples["speaker"].astype(str).to_numpy()
        details["same_speaker"] = float(np.mean(speakers[neighbour] == speakers[split.held_out]))
    return ReferenceFit(proba=proba, y=split.y[split.held_out], scored=split.samples.iloc[split.held_out],
                        n_train=len(split.train), details=details)

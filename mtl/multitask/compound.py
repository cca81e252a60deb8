"""Compound facial expressions: their AU signatures, synthetic renders, and prediction without their labels.

Du, Tao & Martinez (2014) :cite:`du2014compound` photographed 230 people
posing 21 categories -- the six basic emotions, neutral aside, and 15
*compound* ones such as "happily surprised" -- and coded the facial action
units (AUs) each category used: the AUs present in more than 70 % of their
subjects, and, in brackets, AUs a part of them added, with the share of
subjects who did (their Table 1). :data:`COMPOUNDS` holds the 15 compound
categories with ``aus`` (the prototype AUs), ``secondary`` (the added ones)
and ``secondary_percent`` (the share of subjects for each added one).

Where the numbers come from (:data:`SIGNATURE_SOURCE`). The paper's PDF
could not be read for this project; a copy of its text found by search
(https://sic.pm/s/40/compound-facial-expressions-of-emotion/cached/)
describes the table -- 70 %, brackets, percentages -- without holding it.
The table's rows were found in two public transcriptions that agree AU for
AU on all 21 categories, prototype and bracketed AUs alike: a comment in a
modified OpenFace source file (GitHub ``LieAnn/ACT409``,
``OpenFace/lib/local/Utilities/src/RecorderCSV.cpp``), which also gives the
percentages, and a Markdown file that cites the paper's PubMed Central copy
(PMC3992629) and lists the prototype and bracketed AUs (the code search that
found it did not name its repository). Some bracketed AUs carry an asterisk
in the first transcription, unexplained there; it is not kept.

An earlier version of this table followed, for the prototypes, a list of 23
categories that sorts the EmotioNet challenge's AU-annotated images (three
identical public files) and, for the bracketed AUs, memory. That list is a
third party's categories, not Table 1: it differs from the transcriptions in
sadly fearful (1, 4, 15, 25), sadly angry (4, 7, 15), appalled (4, 9, 10) and
hatred (4, 7, 10); from memory came a wrong bracketed AU of disgustedly
surprised (26 for 4) and of appalled and hatred. All now follow Table 1 as
transcribed. Compound-expression results depend on these signatures, so
their hash (:func:`signature_hash`) is part of every multi-task cell's key.

The synthetic face generator (:mod:`mtl.synthetic.faces`) draws 13 AUs
(:data:`mtl.synthetic.faces.AU_NUMBERS`); AU10 (upper lip raiser), AU11,
AU17 (chin raiser), AU24 (lip pressor) and AU25 (lips part) are not among
them, so a compound is rendered with the AUs of its signature the generator
has (:func:`rendered_aus`), the others listed in :data:`NOT_RENDERED`:
each prototype AU at the clip's apex level, each secondary one at half of it
(:func:`compound_apex`). Without those AUs, *angrily disgusted* (4, 10, 17
[7, 9, 24]) and *hatred* (4, 10 [7, 9, 17, 24]) are both drawn as AU4 with
AU7 and AU9 at half level, and both combine anger and disgust: on the
synthetic faces they are one expression (:data:`RENDERED_TWINS`), so at most
14 of the 15 compounds can be told apart.

Prediction without compound labels (:func:`predict_compounds`): a model
trained on the basic emotions and on AU occurrence gives, for a face, the
probability of every AU; the compound predicted is the one whose AU
prototype (1 for a prototype AU, 0.5 for a secondary one, 0 otherwise) is
nearest (squared Euclidean distance). Optionally the emotion outputs vote
too: ``emotion_weight`` times the summed probability of the two basic
emotions the compound combines is added to the score. Between twins the one
listed first in :data:`COMPOUNDS` wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mtl.errors import ConfigError
from mtl.features.faces import face_track
from mtl.io import stable_hash
from mtl.synthetic import faces

__all__ = ["Compound", "COMPOUNDS", "NOT_RENDERED", "RENDERED_TWINS", "SIGNATURE_SOURCE", "signature_hash",
           "rendered_aus", "compound_apex", "compound_faces", "prototypes", "predict_compounds"]


SIGNATURE_SOURCE = ("Du, Tao & Martinez (2014), Table 1, as transcribed identically by two public files: a comment in "
                    "GitHub LieAnn/ACT409, OpenFace/lib/local/Utilities/src/RecorderCSV.cpp (with the percentages), "
                    "and a Markdown file citing PMC3992629; the paper's PDF itself not read")
"""What :data:`COMPOUNDS` was checked against (module docstring)."""


@dataclass(frozen=True)
class Compound:
    """One compound expression of Du, Tao & Martinez (2014), a row of their Table 1."""

    name: str
    emotions: tuple[str, str]
    """The two basic emotions it combines (canonical names of :mod:`mtl.corpora.labels`)."""
    aus: tuple[int, ...]
    """AUs of the prototype (used by more than 70 % of the subjects)."""
    secondary: tuple[int, ...] = ()
    """AUs some subjects added (the table's brackets)."""
    secondary_percent: tuple[int, ...] = ()
    """Share of the subjects who added each of :attr:`secondary`, percent."""

    def __post_init__(self):
        if len(self.secondary_percent) != len(self.secondary):
            raise ConfigError(f"compound {self.name!r}: {len(self.secondary)} secondary AUs but "
                              f"{len(self.secondary_percent)} percentages")
        if set(self.aus) & set(self.secondary):
            raise ConfigError(f"compound {self.name!r}: AU(s) {sorted(set(self.aus) & set(self.secondary))} are "
                              f"both prototype and secondary")


COMPOUNDS: dict[str, Compound] = {c.name: c for c in (
    Compound("happily surprised", ("happiness", "surprise"), (1, 2, 12, 25), (5, 26), (64, 67)),
    Compound("happily disgusted", ("happiness", "disgust"), (10, 12, 25), (4, 6, 9), (32, 61, 59)),
    Compound("sadly fearful", ("sadness", "fear"), (1, 4, 20, 25), (2, 5, 6, 15), (46, 24, 34, 30)),
    Compound("sadly angry", ("sadness", "anger"), (4, 15), (6, 7, 11, 17), (26, 48, 20, 50)),
    Compound("sadly surprised", ("sadness", "surprise"), (1, 4, 25, 26), (2, 6), (27, 31)),
    Compound("sadly disgusted", ("sadness", "disgust"), (4, 10), (1, 6, 9, 11, 15, 17, 25),
             (49, 61, 20, 35, 54, 47, 43)),
    Compound("fearfully angry", ("fear", "anger"), (4, 20, 25), (5, 7, 10, 11), (40, 39, 30, 33)),
    Compound("fearfully surprised", ("fear", "surprise"), (1, 2, 5, 20, 25), (4, 10, 11, 26), (47, 35, 22, 51)),
    Compound("fearfully disgusted", ("fear", "disgust"), (1, 4, 10, 20, 25), (2, 5, 6, 9, 15), (64, 50, 26, 28, 33)),
    Compound("angrily surprised", ("anger", "surprise"), (4, 25, 26), (5, 7, 10), (35, 50, 34)),
    Compound("angrily disgusted", ("anger", "disgust"), (4, 10, 17), (7, 9, 24), (60, 57, 36)),
    Compound("disgustedly surprised", ("disgust", "surprise"), (1, 2, 5, 10), (4, 9, 17, 24), (45, 37, 66, 33)),
    Compound("appalled", ("disgust", "anger"), (4, 10), (6, 9, 17, 24), (25, 56, 67, 36)),
    Compound("hatred", ("anger", "disgust"), (4, 10), (7, 9, 17, 24), (57, 27, 63, 37)),
    Compound("awed", ("fear", "surprise"), (1, 2, 5, 25), (4, 20, 26), (21, 62, 56)),
)}
"""The 15 compound categories of Du, Tao & Martinez (2014), Table 1 (:data:`SIGNATURE_SOURCE`)."""


def signature_hash() -> str:
    """Hash of every compound's name, emotions and AUs: a key part of each record that scores compounds."""
    return stable_hash([[c.name, list(c.emotions), list(c.aus), list(c.secondary)] for c in COMPOUNDS.values()])


NOT_RENDERED: tuple[int, ...] = tuple(sorted({au for c in COMPOUNDS.values() for au in c.aus + c.secondary}
                                             - set(faces.AU_NUMBERS)))
"""AUs of the signatures that the synthetic faces cannot show (10, 11, 17, 24, 25)."""


def _compound(name: str) -> Compound:
    if name not in COMPOUNDS:
        raise ConfigError(f"unknown compound expression {name!r}; choose among {', '.join(COMPOUNDS)}")
    return COMPOUNDS[name]


def rendered_aus(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(prototype AUs, secondary AUs)`` of compound ``name`` that the synthetic faces draw."""
    compound = _compound(name)
    return (tuple(a for a in compound.aus if a in faces.AU_NUMBERS),
            tuple(a for a in compound.secondary if a in faces.AU_NUMBERS))


def _rendered_twins() -> tuple[tuple[str, ...], ...]:
    groups: dict[tuple, list[str]] = {}
    for name, compound in COMPOUNDS.items():
        groups.setdefault((rendered_aus(name), frozenset(compound.emotions)), []).append(name)
    return tuple(tuple(names) for names in groups.values() if len(names) > 1)


RENDERED_TWINS: tuple[tuple[str, ...], ...] = _rendered_twins()
"""Groups of compounds the synthetic faces draw alike, with the same two emotions (angrily disgusted, hatred)."""


def compound_apex(name: str, rng: np.random.Generator) -> np.ndarray:
    """Apex intensities (one per :data:`mtl.synthetic.faces.AU_NAMES`) of one performance of ``name``.

    The level is drawn from :data:`~mtl.synthetic.faces.APEX_RANGE`; each
    prototype AU gets the level times a factor in [0.85, 1.15], each
    secondary AU half of that, clipped to [0, 1].
    """
    main, secondary = rendered_aus(name)
    level = rng.uniform(*faces.APEX_RANGE)
    apex = np.zeros(len(faces.AU_NUMBERS), dtype=np.float32)
    for i, number in enumerate(faces.AU_NUMBERS):
        if number in main or number in secondary:
            share = 1.0 if number in main else 0.5
            apex[i] = min(1.0, share * level * rng.uniform(0.85, 1.15))
    return apex


def compound_faces(names: Sequence[str] | None = None, n_identities: int = 8, seed: int = 0,
                   face_size: int = 64) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Face crops of synthetic people posing every compound expression at its apex.

    Parameters
    ----------
    names : compounds to render, default every one of :data:`COMPOUNDS`.
    n_identities : people (drawn by :func:`mtl.synthetic.faces.random_identity`), each posing each compound once.
    seed : seed of the people, the intensities and the sensor noise.
    face_size : side of the crops, pixels (as ``Config.face_size``).

    Returns
    -------
    X : float32 ``(n_identities * len(names), face_size, face_size, 3)`` in [0, 1] (the feature cache's scale),
        cropped by the face detector of :mod:`mtl.features.faces` (a frame without a detection takes
        the person's previous box).
    labels : int64, the index of each crop's compound in ``names``.
    names : the compounds, in label order.
    """
    names = list(COMPOUNDS) if names is None else [_compound(n).name for n in names]
    rng = np.random.default_rng([seed, 13])
    crops, labels = [], []
    for _ in range(n_identities):
        identity = faces.random_identity(rng)
        frames = [faces.render_face(identity, dict(zip(faces.AU_NUMBERS, compound_apex(n, rng).tolist())), rng)
                  for n in names]
        person, _ = face_track(frames, size=face_size, source="synthetic compound faces")
        crops.append(person)
        labels.extend(range(len(names)))
    return (np.concatenate(crops).astype(np.float32) / 255.0, np.asarray(labels, dtype=np.int64), names)


def prototypes(names: Sequence[str], au_names: Sequence[str]) -> np.ndarray:
    """``(len(names), len(au_names))``: 1 for each prototype AU, 0.5 for each secondary AU, else 0."""
    numbers = [int(str(a).upper().removeprefix("AU")) for a in au_names]
    table = np.zeros((len(names), len(numbers)))
    for row, name in enumerate(names):
        compound = _compound(name)
        for column, number in enumerate(numbers):
            table[row, column] = 1.0 if number in compound.aus else 0.5 if number in compound.secondary else 0.0
    return table


def predict_compounds(au_proba: np.ndarray, au_names: Sequence[str], names: Sequence[str] | None = None,
                      emotion_proba: np.ndarray | None = None, emotion_classes: Sequence[str] = (),
                      emotion_weight: float = 0.0) -> np.ndarray:
    """Index (into ``names``) of the compound predicted for each face (module docstring).

    Parameters
    ----------
    au_proba : ``(n, len(au_names))`` probabilities of AU occurrence.
    names : candidate compounds, default every one of :data:`COMPOUNDS`.
    emotion_proba, emotion_classes : ``(n, C)`` emotion probabilities and their classes, optional.
    emotion_weight : float, default 0 (the AUs alone)
        Weight of the emotion outputs; a compound whose emotions are not among
        ``emotion_classes`` gets nothing from them.
    """
    names = list(COMPOUNDS) if names is None else list(names)
    au_proba = np.asarray(au_proba, dtype=np.float64)
    if au_proba.ndim != 2 or au_proba.shape[1] != len(au_names):
        raise ConfigError(f"au_proba must be (n, {len(au_names)}), one column per AU, got {au_proba.shape}")
    distance = ((au_proba[:, None, :] - prototypes(names, au_names)[None, :, :]) ** 2).sum(axis=2)
    score = -distance
    if emotion_proba is not None and emotion_weight:
        emotion_proba = np.asarray(emotion_proba, dtype=np.float64)
        lookup = {c: i for i, c in enumerate(emotion_classes)}
        for column, name in enumerate(names):
            for emotion in _compound(name).emotions:
                if emotion in lookup:
                    score[:, column] += emotion_weight * emotion_proba[:, lookup[emotion]]
    return score.argmax(axis=1).astype(np.int64)

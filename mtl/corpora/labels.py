"""Canonical emotion names, their spellings and the orders tables use.

Every loader writes canonical English names in the ``emotion`` column
(:data:`EMOTIONS`); the corpus's own code stays in ``code``. Class lists are
always returned in canonical order (alphabetical), so a class index means the
same emotion in every experiment. Tables use the paper's column order
(:data:`PAPER_ORDER`, abbreviations in :data:`ABBREVIATIONS`).

Each corpus's own class set is on its card (:mod:`mtl.corpora.registry`).
A corpus card (:mod:`mtl.corpora.cards`) may declare a class outside
:data:`EMOTIONS` (``contempt``): :func:`declare_emotion` makes it a name of
its own, kept by every function here and sorted among the others.

>>> normalise_emotion("Happy")
'happiness'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from mtl.errors import MtlError

EMOTIONS: tuple[str, ...] = (
    "anger", "boredom", "calm", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
)
"""Canonical emotion names, in canonical (alphabetical) order."""

PAPER_ORDER: tuple[str, ...] = (
    "anger", "surprise", "disgust", "fear", "happiness", "sadness", "neutral", "boredom", "calm",
)
"""Column order of the paper's tables (Ang Sur Dis Fea Hap Sad), then the classes it does not tabulate."""

ABBREVIATIONS: dict[str, str] = {
    "anger": "Ang", "surprise": "Sur", "disgust": "Dis", "fear": "Fea", "happiness": "Hap",
    "sadness": "Sad", "neutral": "Neu", "boredom": "Bor", "calm": "Cal",
}

# Every spelling a manifest or folder name may use (compared lower-case, stripped).
_ALIASES: dict[str, str] = {
    **{name: name for name in EMOTIONS},
    "angry": "anger", "ang": "anger", "mad": "anger",
    "bored": "boredom", "bor": "boredom",
    "calmness": "calm", "cal": "calm",
    "disgusted": "disgust", "dis": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear", "fea": "fear",
    "happy": "happiness", "joy": "happiness", "hap": "happiness",
    "neu": "neutral",
    "sad": "sadness", "sorrow": "sadness",
    "surprised": "surprise", "sur": "surprise",
}


_DECLARED: set[str] = set()
"""Names outside :data:`EMOTIONS` declared by corpus cards (:func:`declare_emotion`)."""
_NEW_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class LabelError(MtlError, ValueError):
    """An emotion name is unknown, or a set of corpora shares no class."""


def declare_emotion(name: str) -> str:
    """Accept ``name`` as an emotion from now on; returns its canonical name.

    A known name or synonym gives its canonical name (``"Happy"`` ->
    ``"happiness"``) and declares nothing; any other name, lower-cased, becomes
    a class of its own (``"Contempt"`` -> ``"contempt"``), which
    :func:`normalise_emotion`, :func:`canonical_order` and :func:`paper_order`
    keep. Raises :class:`LabelError` for a name that is not lower-case letters,
    digits and ``_`` after lower-casing (it becomes a table column and a file name).
    """
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if not _NEW_NAME.match(key):
        raise LabelError(f"emotion name {name!r} must be letters, digits and '_', starting with a letter")
    _ALIASES[key] = key
    _DECLARED.add(key)
    return key


def emotion_names() -> tuple[str, ...]:
    """Every accepted canonical name: :data:`EMOTIONS` and the declared ones, in canonical (alphabetical) order."""
    return tuple(sorted({*EMOTIONS, *_DECLARED}))


def normalise_emotion(name: str) -> str:
    """The canonical name of ``name`` (case-insensitive, common synonyms accepted).

    Raises :class:`LabelError` naming the value and the accepted names.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise LabelError(f"unknown emotion {name!r}; use one of {', '.join(emotion_names())} "
                         f"(or a synonym such as 'happy', 'angry', 'sad'; a corpus card's labels may declare others)")
    return _ALIASES[key]


def canonical_order(classes: Iterable[str]) -> list[str]:
    """``classes`` normalised, de-duplicated and sorted in canonical order."""
    names = {normalise_emotion(c) for c in classes}
    return [e for e in emotion_names() if e in names]


def paper_order(classes: Iterable[str]) -> list[str]:
    """``classes`` in the paper's table order (Ang Sur Dis Fea Hap Sad Neu Bor Cal), then declared ones alphabetically."""
    names = {normalise_emotion(c) for c in classes}
    return [e for e in (*PAPER_ORDER, *sorted(_DECLARED)) if e in names]


def restrict(df: pd.DataFrame, classes: Iterable[str]) -> pd.DataFrame:
    """Rows of ``df`` whose emotion is in ``classes``; index reset, ``attrs`` kept."""
    wanted = canonical_order(classes)
    if not wanted:
        raise LabelError("restrict: the list of classes is empty")
    out = df[df["emotion"].isin(wanted)].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


"""Canonical emotion names, each corpus's class set, and harmonisation between corpora.

Every loader writes canonical English names in the ``emotion`` column
(:data:`EMOTIONS`); the corpus's own code stays in ``code``. Class lists are
always returned in canonical order (alphabetical), so a class index means the
same emotion in every experiment. Tables use the paper's column order
(:data:`PAPER_ORDER`, abbreviations in :data:`ABBREVIATIONS`).

>>> shared_classes("enterface", "savee")
['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise']
>>> normalise_emotion("Happy")
'happiness'
"""

from __future__ import annotations

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

CLASS_SETS: dict[str, tuple[str, ...]] = {
    "emodb": ("anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"),
    "savee": ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
    "enterface": ("anger", "disgust", "fear", "happiness", "sadness", "surprise"),
    "ravdess": ("anger", "calm", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
}
"""The emotion classes of each known corpus, canonical order."""

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


class LabelError(MtlError, ValueError):
    """An emotion name is unknown, or a set of corpora shares no class."""


def normalise_emotion(name: str) -> str:
    """The canonical name of ``name`` (case-insensitive, common synonyms accepted).

    Raises :class:`LabelError` naming the value and the accepted names.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise LabelError(f"unknown emotion {name!r}; use one of {', '.join(EMOTIONS)} "
                         f"(or a synonym such as 'happy', 'angry', 'sad')")
    return _ALIASES[key]


def canonical_order(classes: Iterable[str]) -> list[str]:
    """``classes`` normalised, de-duplicated and sorted in canonical order."""
    names = {normalise_emotion(c) for c in classes}
    return [e for e in EMOTIONS if e in names]


def paper_order(classes: Iterable[str]) -> list[str]:
    """``classes`` in the paper's table order (Ang Sur Dis Fea Hap Sad Neu Bor Cal)."""
    names = {normalise_emotion(c) for c in classes}
    return [e for e in PAPER_ORDER if e in names]


def class_set(source: str | pd.DataFrame | Iterable[str]) -> list[str]:
    """The classes of a corpus name, a corpus table (its ``emotion`` column) or a list of names."""
    if isinstance(source, str):
        if source not in CLASS_SETS:
            raise LabelError(f"unknown corpus {source!r}; known corpora: {', '.join(CLASS_SETS)} "
                             "(or pass a table or a list of class names)")
        return list(CLASS_SETS[source])
    if isinstance(source, pd.DataFrame):
        if "emotion" not in source.columns:
            raise LabelError("the table has no 'emotion' column")
        return canonical_order(source["emotion"].unique())
    return canonical_order(source)


def shared_classes(*sources: str | pd.DataFrame | Iterable[str]) -> list[str]:
    """Classes present in every source (corpus names, tables or class lists), canonical order.

    Raises :class:`LabelError` when there is no source or the sources share no class.
    """
    if not sources:
        raise LabelError("shared_classes needs at least one corpus, table or class list")
    sets = [set(class_set(s)) for s in sources]
    common = set.intersection(*sets)
    if not common:
        described = "; ".join(f"{_describe(s)}: {', '.join(canonical_order(c))}" for s, c in zip(sources, sets))
        raise LabelError(f"these corpora share no emotion class ({described})")
    return [e for e in EMOTIONS if e in common]


def restrict(df: pd.DataFrame, classes: Iterable[str]) -> pd.DataFrame:
    """Rows of ``df`` whose emotion is in ``classes``; index reset, ``attrs`` kept."""
    wanted = canonical_order(classes)
    if not wanted:
        raise LabelError("restrict: the list of classes is empty")
    out = df[df["emotion"].isin(wanted)].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


def _describe(source: object) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, pd.DataFrame) and "corpus" in source.columns and len(source):
        return "/".join(sorted(map(str, source["corpus"].unique())))
    return "classes"

"""The corpora the package knows: one card per corpus, and the classes corpora share.

A :class:`CorpusCard` says everything the rest of the package needs to know
about a corpus: its name, the folder it lives in under
:func:`mtl.paths.data_root`, its modalities, its emotion classes, its title as
the paper and the book write it, the loader that reads its files into a table
(:mod:`mtl.corpora`) and the layout :mod:`mtl.synthetic` generates as a
stand-in (or none). Loaders, datasets, cells, the sweep and the synthetic
generator all read the cards; nothing else lists corpora.

>>> corpus_card("emodb").title
'EMO-DB'
>>> corpus_names(synthetic=True)
('enterface', 'savee', 'emodb')
>>> shared_classes("enterface", "savee")
['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise']

:func:`register_corpus` adds a card (a user's own corpus); :data:`CORPORA` is a
read-only view of every card, in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from mtl.corpora.emodb import load_emodb
from mtl.corpora.enterface import load_enterface
from mtl.corpora.labels import LabelError, canonical_order
from mtl.corpora.ravdess import load_ravdess
from mtl.corpora.savee import load_savee
from mtl.config import MODALITIES
from mtl.errors import ConfigError

Loader = Callable[[Path, str, bool], pd.DataFrame]
"""``loader(root, modality, strict)`` -> the corpus table (:data:`mtl.corpora.base.COLUMNS`)."""


@dataclass(frozen=True)
class CorpusCard:
    """One corpus: where it lives, what it holds, how it is read and whether it can be generated."""

    name: str
    """Identifier used everywhere (cells, records, the command line), e.g. ``"emodb"``."""
    folder: str
    """Folder of the real corpus under :func:`mtl.paths.data_root`."""
    modalities: tuple[str, ...]
    """``"audio"`` and/or ``"video"``."""
    classes: tuple[str, ...]
    """Its emotion classes, canonical names in canonical order."""
    title: str
    """Its name as the paper and the book write it, e.g. ``"eNTERFACE'05"``."""
    loader: Loader
    generator: str | None = None
    """Layout :func:`mtl.synthetic.make_corpus` writes as a stand-in; None: real recordings only."""
    faces_cropped: bool = False
    """Its images are face crops already: the features resize them, no face detection (a card's ``faces: cropped``)."""
    card: str | None = None
    """The corpus card that declared it, as records write it (:mod:`mtl.corpora.cards`); None for a built-in corpus."""
    card_digest: str | None = None
    """Hash of that card's content (the file's SHA-1; for an inferred card, of what was inferred)."""
    generated: bool = False
    """Its files are generated stand-ins, not recordings (a card's ``synthetic: true``): its data kind is synthetic."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            raise ConfigError(f"corpus name {self.name!r} must be lower-case letters, digits and '_'")
        if not self.modalities or set(self.modalities) - set(MODALITIES):
            raise ConfigError(f"corpus {self.name}: modalities must be among {', '.join(MODALITIES)}, "
                              f"got {self.modalities}")
        classes = tuple(canonical_order(self.classes))
        if not classes:
            raise ConfigError(f"corpus {self.name} has no emotion class")
        object.__setattr__(self, "classes", classes)

    @property
    def synthetic(self) -> bool:
        """Whether :mod:`mtl.synthetic` can generate a stand-in."""
        return self.generator is not None

    def check_modality(self, modality: str) -> str:
        """``modality`` if the corpus has it, else :class:`ConfigError` naming the ones it has."""
        if modality not in self.modalities:
            raise ConfigError(f"{self.title} ({self.name}) has no {modality} modality; it has "
                              f"{', '.join(self.modalities)}")
        return modality

    def check_classes(self, classes: Iterable[str]) -> tuple[str, ...]:
        """``classes`` canonicalised; :class:`LabelError` for an empty list or a class the corpus lacks."""
        wanted = canonical_order(classes)
        if not wanted:
            raise ConfigError(f"empty class list for {self.name}")
        missing = [c for c in wanted if c not in self.classes]
        if missing:
            raise LabelError(f"{self.name} has no class {', '.join(missing)}; its classes are "
                             f"{', '.join(self.classes)}")
        return tuple(wanted)


_CARDS: dict[str, CorpusCard] = {}
CORPORA = MappingProxyType(_CARDS)
"""Every registered card by name (read-only; add cards with :func:`register_corpus`)."""


def register_corpus(card: CorpusCard, replace: bool = False) -> CorpusCard:
    """Add ``card`` to the registry; a second card of the same name needs ``replace=True``."""
    if card.name in _CARDS and not replace:
        raise ConfigError(f"corpus {card.name!r} is already registered (pass replace=True to replace its card)")
    _CARDS[card.name] = card
    return card


_REFRESH: list[Callable[[], None]] = []


def on_unknown_corpus(refresh: Callable[[], None]) -> None:
    """Call ``refresh()`` (which may register cards) before :func:`corpus_card` reports a name as unknown.

    :mod:`mtl.corpora.cards` hooks in the re-reading of its environment
    variable: a worker forked before the parent registered a card learns of
    it when its task sets the variable (:func:`mtl.schedulers.prepare_worker`).
    """
    _REFRESH.append(refresh)


def corpus_card(name: str, modality: str | None = None) -> CorpusCard:
    """The card of ``name`` (checked to have ``modality`` when given); the error lists the known corpora."""
    card = _CARDS.get(str(name))
    for refresh in _REFRESH if card is None else ():
        refresh()
        card = _CARDS.get(str(name))
    if card is None:
        raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(_CARDS)}")
    if modality is not None:
        card.check_modality(modality)
    return card


def corpus_names(synthetic: bool | None = None, modality: str | None = None) -> tuple[str, ...]:
    """Registered corpus names, in order; only those with (without) a synthetic stand-in, or with ``modality``."""
    return tuple(name for name, card in _CARDS.items()
                 if (synthetic is None or card.synthetic == synthetic)
                 and (modality is None or modality in card.modalities))


def class_set(source: str | pd.DataFrame | Iterable[str]) -> list[str]:
    """The classes of a corpus name, a corpus table (its ``emotion`` column) or a list of names."""
    if isinstance(source, str):
        if source not in _CARDS:
            raise LabelError(f"unknown corpus {source!r}; known corpora: {', '.join(_CARDS)} "
                             "(or pass a table or a list of class names)")
        return list(_CARDS[source].classes)
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
    return canonical_order(common)


def _describe(source: Any) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, pd.DataFrame) and "corpus" in source.columns and len(source):
        return "/".join(sorted(map(str, source["corpus"].unique())))
    return "classes"


def _audio_only(load: Callable[..., pd.DataFrame]) -> Loader:
    """A loader of an audio-only corpus as a :data:`Loader` (the card has already checked the modality)."""
    return lambda root, modality, strict: load(root, strict=strict)


for _card in (
    CorpusCard("enterface", "enterface", ("audio", "video"),
               ("anger", "disgust", "fear", "happiness", "sadness", "surprise"), "eNTERFACE'05",
               lambda root, modality, strict: load_enterface(root, modality=modality, strict=strict), "enterface"),
    CorpusCard("savee", "savee", ("audio", "video"),
               ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"), "SAVEE",
               lambda root, modality, strict: load_savee(root, modality=modality, strict=strict), "savee"),
    CorpusCard("emodb", "emodb", ("audio",),
               ("anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"), "EMO-DB",
               _audio_only(load_emodb), "emodb"),
    CorpusCard("ravdess", "ravdess-speech-16k", ("audio",),
               ("anger", "calm", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"), "RAVDESS speech",
               _audio_only(load_ravdess)),
):
    register_corpus(_card)
del _card

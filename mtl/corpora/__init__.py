"""Tidy tables of the emotion corpora, read from the layouts they are distributed in.

One row per file, columns :data:`~mtl.corpora.base.COLUMNS`
(path corpus modality speaker utterance emotion code) plus ``gender`` and
``text`` where the corpus provides them. Files that cannot be used are
skipped and listed in ``df.attrs["skipped"]`` as ``(path, reason)`` pairs.

>>> df = load_corpus("emodb")                          # doctest: +SKIP
>>> df = load_corpus("enterface", root, modality="video")  # doctest: +SKIP
>>> df = load_corpus("my_corpus.csv")                   # a manifest  # doctest: +SKIP
>>> df = load_corpus("my_faces.yaml")                   # a corpus card  # doctest: +SKIP

A corpus card (:mod:`mtl.corpora.cards`) declares a corpus of your own;
:func:`resolve_corpus` registers it and gives its name, which then works
wherever a corpus name does. Cards registered in a parent process are
registered again here at import (from :data:`~mtl.corpora.cards.CARDS_ENV`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtl import paths
from mtl.corpora.base import COLUMNS, MODALITIES, OPTIONAL_COLUMNS
from mtl.corpora.cards import (CARDS_ENV, CardError, infer_card, read_card, register_card,
                               register_from_environment, resolve_corpus)
from mtl.corpora.custom import load_folder_tree, load_image_folder, load_manifest, load_pattern
from mtl.corpora.emodb import load_emodb
from mtl.corpora.enterface import load_enterface
from mtl.corpora.labels import (ABBREVIATIONS, EMOTIONS, PAPER_ORDER, LabelError, canonical_order, declare_emotion,
                                emotion_names, normalise_emotion, paper_order, restrict)
from mtl.corpora.ravdess import load_ravdess
from mtl.corpora.registry import (CORPORA, CorpusCard, class_set, corpus_card, corpus_names, register_corpus,
                                  shared_classes)
from mtl.corpora.savee import load_savee
from mtl.errors import ConfigError


def default_root(name: str) -> Path:
    """Where ``load_corpus(name)`` looks when no root is given: ``data_root()/<folder>``."""
    return paths.data_root() / corpus_card(name).folder


def load_corpus(name: str | Path, root: str | Path | None = None, modality: str | None = None,
                strict: bool = False, allow_outside: bool = False) -> pd.DataFrame:
    """The table of one corpus.

    Parameters
    ----------
    name : a registered corpus (:data:`mtl.corpora.registry.CORPORA`: "emodb", "ravdess",
        "savee", "enterface", ...), the path of a corpus card (.yaml, registered on first use),
        or the path of a manifest CSV or of a class-per-folder image tree.
    root : the corpus folder; default ``mtl.paths.data_root()/<folder>`` (the
        card's folder: emodb, ravdess-speech-16k, savee, enterface; set MTL_DATA_ROOT).
    modality : "audio" or "video", one of the card's modalities (default: its first).
        Ignored for manifests and image folders, whose modality follows each file.
    strict : raise :class:`~mtl.errors.BadInputError` on the first unusable file
        instead of skipping it and listing it in ``df.attrs["skipped"]``.
    allow_outside : a manifest may list files outside its own folder (by
        default they are skipped, see :func:`load_manifest`).
    """
    if Path(str(name)).suffix.lower() in (".yaml", ".yml"):
        name = resolve_corpus(name)
    if str(name) not in CORPORA:
        path = Path(name).expanduser()
        if path.suffix.lower() == ".csv":
            return load_manifest(path, strict=strict, allow_outside=allow_outside)
        if path.is_dir():
            return load_image_folder(path, strict=strict)
        raise ConfigError(f"unknown corpus {str(name)!r}: use one of {', '.join(CORPORA)}, "
                          "a manifest .csv file or an image folder")
    card = corpus_card(str(name), modality)
    modality = modality or card.modalities[0]
    return card.loader(default_root(card.name) if root is None else Path(root), modality, strict)


register_from_environment()

__all__ = [
    "ABBREVIATIONS", "CARDS_ENV", "COLUMNS", "CORPORA", "CardError", "CorpusCard", "EMOTIONS", "MODALITIES",
    "OPTIONAL_COLUMNS", "PAPER_ORDER", "LabelError", "canonical_order", "class_set", "corpus_card", "corpus_names",
    "declare_emotion", "default_root", "emotion_names", "infer_card", "load_corpus", "load_emodb", "load_enterface",
    "load_folder_tree", "load_image_folder", "load_manifest", "load_pattern", "load_ravdess", "load_savee",
    "normalise_emotion", "paper_order", "read_card", "register_card", "register_corpus", "resolve_corpus",
    "restrict", "shared_classes",
]

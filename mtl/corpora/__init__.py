"""Tidy tables of the emotion corpora, read from the layouts they are distributed in.

One row per file, columns :data:`~mtl.corpora.base.COLUMNS`
(path corpus modality speaker utterance emotion code) plus ``gender`` and
``text`` where the corpus provides them. Files that cannot be used are
skipped and listed in ``df.attrs["skipped"]`` as ``(path, reason)`` pairs.

>>> df = load_corpus("emodb")                          # doctest: +SKIP
>>> df = load_corpus("enterface", root, modality="video")  # doctest: +SKIP
>>> df = load_corpus("my_corpus.csv")                   # a manifest  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtl import paths
from mtl.corpora.base import COLUMNS, MODALITIES, OPTIONAL_COLUMNS
from mtl.corpora.custom import load_image_folder, load_manifest
from mtl.corpora.emodb import load_emodb
from mtl.corpora.enterface import load_enterface
from mtl.corpora.labels import (ABBREVIATIONS, EMOTIONS, PAPER_ORDER, LabelError, canonical_order,
                                normalise_emotion, paper_order, restrict)
from mtl.corpora.ravdess import load_ravdess
from mtl.corpora.registry import (CORPORA, CorpusCard, class_set, corpus_card, corpus_names, register_corpus,
                                  shared_classes)
from mtl.corpora.savee import load_savee
from mtl.errors import ConfigError


def default_root(name: str) -> Path:
    """Where ``load_corpus(name)`` looks when no root is given: ``data_root()/<folder>``."""
    return paths.data_root() / corpus_card(name).folder


def load_corpus(name: str | Path, root: str | Path | None = None, modality: str = "audio",
                strict: bool = False, allow_outside: bool = False) -> pd.DataFrame:
    """The table of one corpus.

    Parameters
    ----------
    name : a registered corpus (:data:`mtl.corpora.registry.CORPORA`: "emodb", "ravdess",
        "savee", "enterface", ...), or the path of a manifest CSV or of a class-per-folder image tree.
    root : the corpus folder; default ``mtl.paths.data_root()/<folder>`` (the
        card's folder: emodb, ravdess-speech-16k, savee, enterface; set MTL_DATA_ROOT).
    modality : "audio" or "video", one of the card's modalities.
        Ignored for manifests and image folders, whose modality follows each file.
    strict : raise :class:`~mtl.errors.BadInputError` on the first unusable file
        instead of skipping it and listing it in ``df.attrs["skipped"]``.
    allow_outside : a manifest may list files outside its own folder (by
        default they are skipped, see :func:`load_manifest`).
    """
    if str(name) not in CORPORA:
        path = Path(name).expanduser()
        if path.suffix.lower() == ".csv":
            return load_manifest(path, strict=strict, allow_outside=allow_outside)
        if path.is_dir():
            return load_image_folder(path, strict=strict)
        raise ConfigError(f"unknown corpus {str(name)!r}: use one of {', '.join(CORPORA)}, "
                          "a manifest .csv file or an image folder")
    card = corpus_card(str(name), modality)
    return card.loader(default_root(card.name) if root is None else Path(root), modality, strict)


__all__ = [
    "ABBREVIATIONS", "COLUMNS", "CORPORA", "CorpusCard", "EMOTIONS", "MODALITIES", "OPTIONAL_COLUMNS",
    "PAPER_ORDER", "LabelError", "canonical_order", "class_set", "corpus_card", "corpus_names", "default_root",
    "load_corpus", "load_emodb", "load_enterface", "load_image_folder", "load_manifest", "load_ravdess",
    "load_savee", "normalise_emotion", "paper_order", "register_corpus", "restrict", "shared_classes",
]

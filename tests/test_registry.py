"""mtl.corpora.registry: one card per corpus, read by loaders, cells and the synthetic generator."""

import pandas as pd
import pytest

from mtl.cells import make_cell
from mtl.corpora import CORPORA, CorpusCard, corpus_card, corpus_names, load_corpus, register_corpus
from mtl.corpora.labels import LabelError
from mtl.corpora.registry import _CARDS, class_set, shared_classes
from mtl.errors import ConfigError
from mtl.synthetic import make_corpus


def test_the_built_in_cards():
    assert list(CORPORA) == ["enterface", "savee", "emodb", "ravdess"]
    assert corpus_names(synthetic=True) == ("enterface", "savee", "emodb")
    assert corpus_names(modality="video") == ("enterface", "savee")
    emodb = corpus_card("emodb")
    assert (emodb.folder, emodb.title, emodb.modalities, len(emodb.classes)) == ("emodb", "EMO-DB", ("audio",), 7)
    assert corpus_card("ravdess").folder == "ravdess-speech-16k" and not corpus_card("ravdess").synthetic
    assert shared_classes("enterface", "savee") == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    assert class_set(pd.DataFrame({"emotion": ["sad", "anger"]})) == ["anger", "sadness"]


def test_errors_list_the_known_corpora_and_modalities():
    with pytest.raises(ConfigError, match="unknown corpus 'iemocap'; known corpora: enterface, savee, emodb, ravdess"):
        corpus_card("iemocap")
    with pytest.raises(ConfigError, match=r"EMO-DB \(emodb\) has no video modality; it has audio"):
        corpus_card("emodb", "video")
    with pytest.raises(LabelError, match="emodb has no class surprise"):
        corpus_card("emodb").check_classes(["surprise"])
    with pytest.raises(ConfigError, match="lower-case"):
        CorpusCard("My Corpus", "x", ("audio",), ("anger",), "X", lambda root, modality, strict: None)


def test_a_registered_card_is_a_corpus_everywhere(tmp_path, monkeypatch):
    """A user's corpus: its card is all the loaders and cells need (no synthetic stand-in)."""
    monkeypatch.setitem(_CARDS, "mine", None)  # removed again after the test
    loaded = []
    card = CorpusCard("mine", "my-corpus", ("audio",), ["happy", "sad"], "My corpus",
                      lambda root, modality, strict: loaded.append((root, modality)) or pd.DataFrame())
    with pytest.raises(ConfigError, match="already registered"):
        register_corpus(card)
    register_corpus(card, replace=True)
    assert card.classes == ("happiness", "sadness")
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path))
    load_corpus("mine")
    assert loaded == [(tmp_path / "my-corpus", "audio")]
    (tmp_path / "my-corpus").mkdir()
    cell = make_cell("unit", "scratch", "mine", (), "audio")
    assert cell.classes == ("happiness", "sadness") and cell.data == (("mine", "real"),)
    with pytest.raises(ConfigError, match="no synthetic corpus 'mine'; choose one of enterface, savee, emodb"):
        make_corpus("mine")

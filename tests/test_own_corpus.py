"""The chapter "Your own corpus" (mtl.own_corpus): ${VAR} roots, synthetic cards, the demonstration cards, the plan.

The chapter itself runs at the smoke profile in the smoke book (tests/test_notebooks.py, tests/test_book.py);
its records at the default profile are checked in tests/test_committed_records.py.
"""

from __future__ import annotations

import pytest

from mtl.cells import parse_run_spec
from mtl.chapters import plan_notebook
from mtl.corpora import CardError, load_corpus, read_card, resolve_corpus
from mtl.corpora.cards import expand_variables, load_card_table
from mtl.datasets import load_dataset, resolve_data_kind
from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.evaluation import make_folds, recording_keys
from mtl.experiments import grid_cells
from mtl.own_corpus import (CARDS, EXPERIMENT, MethodsTable, demo_runs, demo_speech_card, own_corpus_finding,
                            plan_own_corpus)
from mtl.paths import data_root
from mtl.synthetic import make_corpus
from mtl.synthetic.sequences import make_face_sequences

from test_cards import write_audio, write_face

pytestmark = pytest.mark.usefixtures("cards_stay_in_their_test")  # tests/conftest.py


def _face_card(folder, root: str, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faces.yaml").write_text(f"name: own_faces\nroot: {root}\nmodality: image\nfolders:\n"
                                       f"faces: cropped\n{extra}")


def test_a_card_root_reaches_shared_data_through_an_environment_variable(tmp_path, monkeypatch):
    write_face(tmp_path / "shared" / "faces" / "happy" / "0.png", "happiness", 0)
    _face_card(tmp_path / "cards", "${MY_CORPORA}/faces")
    monkeypatch.setenv("MY_CORPORA", str(tmp_path / "shared"))
    assert read_card(tmp_path / "cards" / "faces.yaml")["root"] == (tmp_path / "shared" / "faces").resolve()
    monkeypatch.delenv("MY_CORPORA")
    with pytest.raises(CardError) as error:
        read_card(tmp_path / "cards" / "faces.yaml")
    assert (error.value.key, str(tmp_path / "cards" / "faces.yaml")) == ("root", error.value.card)
    assert "MY_CORPORA" in error.value.reason and "not set" in error.value.reason
    monkeypatch.delenv("MTL_DATA_ROOT", raising=False)  # the package's folders: as mtl.paths resolves them
    assert expand_variables("${MTL_DATA_ROOT}/x", "card.yaml", "root") == str(data_root() / "x")


def test_a_synthetic_card_marks_its_runs_synthetic_whatever_the_data_mode(tmp_path):
    for k, emotion in enumerate(("happiness", "anger")):
        write_face(tmp_path / "faces" / emotion / f"{k}.png", emotion, k)
    _face_card(tmp_path, "faces", "synthetic: true\n")
    name = resolve_corpus(tmp_path / "faces.yaml")
    assert {resolve_data_kind(name, mode) for mode in ("auto", "real", "synthetic")} == {"synthetic"}
    _, provenance = load_dataset(name, "video", get_profile("smoke"), n_jobs=1)
    assert provenance["kind"] == "synthetic" and provenance["copy"].startswith("synthetic own_faces at ")
    _face_card(tmp_path, "faces", "synthetic: yes please\n")
    with pytest.raises(CardError, match="synthetic: 'yes please' must be true or false"):
        read_card(tmp_path / "faces.yaml")


def test_face_sequences_are_written_once_in_a_tree_of_coded_names(tmp_path):
    root = make_face_sequences(tmp_path / "a", size="tiny")
    frames = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert len(frames) == 36 and frames[:4] == ["S01/AN1/00.png", "S01/AN1/01.png", "S01/AN1/02.png",
                                                "S01/DI1/00.png"]
    stamp = (root / frames[0]).stat().st_mtime_ns
    assert make_face_sequences(root, size="tiny") == root and (root / frames[0]).stat().st_mtime_ns == stamp
    again = make_face_sequences(tmp_path / "b", size="tiny")
    assert all((root / f).read_bytes() == (again / f).read_bytes() for f in frames[::7])  # same seed, same pixels


def test_the_demonstration_face_card_reads_each_take_as_one_recording():
    make_face_sequences()
    table = load_corpus(CARDS / "face_sequences.yaml")
    assert (len(table), table["recording"].nunique(), table["speaker"].nunique()) == (288, 48, 4)
    assert sorted(table["emotion"].unique()) == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    y = table["emotion"].astype("category").cat.codes.to_numpy()
    keys = recording_keys(table)
    for train, test in make_folds(table, y, "utterance", n_folds=5):
        assert not set(keys[train]) & set(keys[test])  # no take in two folds


def test_the_speech_cards_read_what_their_globs_keep(tmp_path, monkeypatch):
    # RAVDESS names, each kept or not by the card's glob (actors 1-4, codes 03-08, statement 1, repetition 1)
    names = {"Actor_01/03-01-05-01-01-01-01.wav": True, "Actor_04/03-01-08-02-01-01-04.wav": True,
             "Actor_01/03-01-05-01-01-02-01.wav": False, "Actor_01/03-01-05-01-02-01-01.wav": False,
             "Actor_01/03-01-02-01-01-01-01.wav": False, "Actor_05/03-01-05-01-01-01-05.wav": False}
    for k, name in enumerate(names):
        write_audio(tmp_path / "data" / "ravdess-speech-16k" / name, 200 + 40 * k)
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "data"))
    table = load_card_table(read_card(demo_speech_card()))
    assert sorted(table["path"].map(lambda p: p.split("ravdess-speech-16k/")[1])) == sorted(
        n for n, kept in names.items() if kept)
    assert sorted(table["emotion"]) == ["anger", "surprise"] and sorted(table["speaker"]) == ["01", "04"]
    # without RAVDESS: the EMO-DB stand-in's card (its glob on a tiny copy written where the full one goes)
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "nothing"))
    monkeypatch.setenv("MTL_CACHE_DIR", str(tmp_path / "cache"))
    make_corpus("emodb", tmp_path / "cache" / "synthetic" / "emodb-full-seed0", size="tiny")
    card = read_card(CARDS / "emodb_speech_synthetic.yaml")
    assert demo_speech_card("synthetic") == CARDS / "emodb_speech_synthetic.yaml" and card["synthetic"]
    stand_in = load_card_table(card)
    assert set(stand_in["speaker"]) == {"03"} and len(stand_in) == 5  # tiny: speakers 03 09 16, texts a01 b01
    assert sorted(stand_in["emotion"].unique()) == ["anger", "disgust", "fear", "happiness", "sadness"]


def test_the_real_ravdess_card_reads_four_actors(real_data_root, monkeypatch):
    monkeypatch.setenv("MTL_DATA_ROOT", str(real_data_root))
    table = load_card_table(read_card(CARDS / "ravdess_speech.yaml"))
    assert (len(table), table["speaker"].nunique(), table["emotion"].nunique()) == (48, 4, 6)
    assert not table.attrs["skipped"]


def test_the_demonstration_plan_is_the_sweep_of_results_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-real-data"))
    monkeypatch.setattr("mtl.own_corpus.make_corpus", lambda *a, **k: None)  # the stand-in is not read here
    monkeypatch.setattr("mtl.own_corpus.demo_speech_card", lambda data=None: tmp_path / "speech.yaml")
    for k, code in enumerate(("W", "F")):
        write_audio(tmp_path / "speech" / f"03a01{code}a.wav", 200 + 50 * k)
    (tmp_path / "speech.yaml").write_text("name: own_speech\nroot: speech\nmodality: audio\npattern:\n"
                                          "  glob: '*.wav'\n  regex: '(?P<speaker>\\d\\d)...(?P<emotion>[A-Z]).\\.wav'\n"
                                          "labels: {W: anger, F: happiness}\n")
    plan = plan_own_corpus()
    assert plan.corpora == ("enterface->face_sequences", "enterface->own_speech") and len(plan.cells) == 30
    assert {cell.experiment for cell in plan.cells} == {EXPERIMENT}
    assert {(c.target, c.modality) for c in plan.cells} == {("face_sequences", "video"), ("own_speech", "audio")}
    # the keys mtl sweep gives (results/default/README.md), and Table 2's source model for the faces
    swept = {c.key for run, modality in zip(demo_runs(), ("video", "audio"))
             for c in grid_cells([EXPERIMENT], corpora=[run], methods=["finetune", "scratch", "transfer"],
                                 modality=modality)}
    assert swept == {c.key for c in plan.cells}
    table2 = plan_notebook("table2_visual_baselines", corpora=["enterface->savee"]).cells
    faces = {c.source_key for c in plan.cells if c.target == "face_sequences" and c.sources}
    assert faces == {c.source_key for c in table2 if c.target == "savee" and c.sources}


@pytest.mark.parametrize("corpora, message", [
    (["enterface->data/cards/face_sequences.yaml->x"], "bad corpus spec"),
    (["savee"], "names no source"),
    ([], "corpora is empty"),
    (["data/cards/face_sequences.yaml->emodb"], "no modality in common (face_sequences: video; emodb: audio)"),
], ids=["two-arrows", "no-source", "empty", "across-modalities"])
def test_a_bad_run_is_refused_with_the_reason(corpora, message):
    make_face_sequences()
    with pytest.raises(ConfigError) as error:
        plan_own_corpus([c.replace("data/cards/", f"{CARDS}/") for c in corpora])
    assert message in str(error.value)


def _record(method: str, accuracy: float, fold: int, target: str = "own_speech") -> dict:
    per_class = {"anger": accuracy + 0.1, "happiness": accuracy - 0.1}
    return {"experiment": EXPERIMENT, "method": method, "sources": [] if method == "scratch" else ["enterface"],
            "target": target, "modality": "audio", "classes": ["anger", "happiness"], "protocol": "paper",
            "seed": 0, "fold": fold, "n_folds": 2, "cell_key": f"{method}{fold}", "config": {"profile": "default"},
            "data": {"kinds": {target: "real", **({} if method == "scratch" else {"enterface": "synthetic"})},
                     "provenance": {target: {"copy": "real own speech", "card": "cards/own.yaml",
                                             "card_digest": "0123456789abcdef"}}},
            "metrics": {"accuracy": accuracy, "uar": accuracy, "per_class": per_class,
                        "utterance": {"mean_prob": {"accuracy": accuracy + 0.05}}},
            "timings": {"target_seconds": 60.0, "source_seconds": None if method == "scratch" else 600.0},
            "source": None if method == "scratch" else {"key": "src"}}


def test_the_chapters_table_and_box_come_from_the_records():
    records = [_record(m, a + 0.02 * fold, fold) for m, a in (("transfer", 0.6), ("scratch", 0.5),
                                                               ("finetune", 0.4)) for fold in (0, 1)]
    table = MethodsTable(records)
    shown = table.accuracy()
    assert list(shown["Method"]) == ["fine-tuning", "scratch", "transfer"]  # the paper's row order
    assert list(shown.loc[2, ["Overall", "Per recording", "Ang", "Hap"]]) == ["0.61 ± 0.01", "0.66 ± 0.01",
                                                                              "0.71 ± 0.01", "0.51 ± 0.01"]
    assert "cards/own.yaml (sha1 0123456789)" in table.provenance()["Card"].iloc[0]
    assert "What each number ran on" in table._repr_html_()
    text = str(own_corpus_finding(records))
    assert "On own_speech (real; source synthetic): fine-tuning 0.41 ± 0.01, scratch 0.51 ± 0.01" in text
    assert "The order here is transfer > scratch > fine-tuning; the paper's order on eNTERFACE → SAVEE " \
           "(Table 4: fine-tuning 0.69, scratch 0.81, transfer 0.85) is transfer > scratch > fine-tuning." in text
    assert "chance is 0.50 (2 classes)" in text and "took 16 core-minutes" in text  # 6 x 60 s + 600 s once
    assert "nothing to show" in str(own_corpus_finding([]))


def test_parse_run_spec_takes_the_bundled_card_paths():
    make_face_sequences()
    assert parse_run_spec(f"enterface->{CARDS / 'face_sequences.yaml'}").target == "face_sequences"


def test_the_committed_records_name_the_bundled_cards_as_they_are():
    """Cell keys name a card's corpus, not its content: a bundled card edited after its records were computed
    would be read with the old numbers. Its digest in every committed record says it was not."""
    from mtl.io import file_digest
    from mtl.paths import project_root
    from mtl.records import read_record

    digests = {f"data/cards/{card.name}": file_digest(card) for card in CARDS.glob("*.yaml")}
    records = [read_record(p) for p in sorted((project_root() / "results" / "default" / EXPERIMENT).glob("*.json"))]
    assert len(records) == 60
    for record in records:
        entry = record["data"]["provenance"][record["target"]]
        assert entry["card_digest"] == digests[entry["card"]], (entry["card"], "edited since its records were made")

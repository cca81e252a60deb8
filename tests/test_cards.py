"""Corpus cards: each kind of card, its errors, custom labels end to end, sequences, cards in grids and workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from mtl.cells import parse_run_spec
from mtl.cli import main
from mtl.config import get_profile
from mtl.corpora import (CARDS_ENV, CORPORA, CardError, load_corpus, normalise_emotion, paper_order, read_card,
                         resolve_corpus)
from mtl.datasets import load_dataset
from mtl.evaluation import make_folds, recording_keys
from mtl.paths import results_dir
from mtl.synthetic import faces

CODES = {"AN": "anger", "HA": "happiness", "CO": "contempt"}


pytestmark = pytest.mark.usefixtures("cards_stay_in_their_test")  # tests/conftest.py


def write_audio(path: Path, pitch: float, seconds: float = 1.0) -> None:
    t = np.arange(int(16000 * seconds)) / 16000
    noise = np.random.default_rng(int(pitch)).standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * pitch * t) + 0.01 * noise).astype(np.float32), 16000)


def write_face(path: Path, emotion: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    identity = faces.random_identity(rng)
    apex = dict(zip(faces.AU_NUMBERS, faces.expression_apex(emotion, rng)))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(faces.render_face(identity, apex, rng), cv2.COLOR_RGB2BGR))


def audio_card(folder: Path, name: str, speakers: int = 2, takes: int = 2) -> Path:
    """A flat folder of coded names (``s1_AN2.wav``) and a pattern card declaring contempt."""
    for s in range(1, speakers + 1):
        for i, code in enumerate(CODES):
            for k in range(1, takes + 1):
                write_audio(folder / "audio" / f"s{s}_{code}{k}.wav", 150 + 120 * i + 10 * k + 3 * s)
    card = folder / f"{name}.yaml"
    card.write_text(f"name: {name}\nroot: audio\nmodality: audio\n"
                    "pattern:\n  glob: '*.wav'\n  regex: '(?P<speaker>s\\d)_(?P<emotion>[A-Z]{2})(?P<take>\\d)\\.wav'\n"
                    f"labels: {json.dumps(CODES)}\nattributes: [take]\n")
    return card


def test_pattern_card_keeps_a_custom_label_into_the_features_and_names_itself_in_provenance(tmp_path):
    name = resolve_corpus(audio_card(tmp_path, "cards_audio"))
    assert name == "cards_audio" and CORPORA[name].classes == ("anger", "contempt", "happiness")
    assert normalise_emotion("Contempt") == "contempt" and paper_order(["contempt", "anger"]) == ["anger", "contempt"]
    features, provenance = load_dataset(name, "audio", get_profile("smoke"), n_jobs=1)
    assert set(features.samples["emotion"]) == {"anger", "contempt", "happiness"}
    assert set(features.samples["take"].astype(str)) == {"1", "2"}  # the card's attribute, kept per sample
    assert provenance["kind"] == "real" and provenance["card"].endswith("cards_audio.yaml")
    assert len(provenance["card_digest"]) == 40 and provenance["content_hash"]


def test_manifest_card_groups_an_image_sequence_into_one_recording(tmp_path):
    rows = ["path,emotion,speaker,utterance,au12"]
    for s in range(4):
        for code, emotion in (("HA", "happiness"), ("AN", "anger")):
            for frame in range(3):
                rows.append(f"frames/p{s}_{code}_{frame}.png,{code},p{s},{code}1,{frame / 2}")
                write_face(tmp_path / "frames" / f"p{s}_{code}_{frame}.png", emotion, 10 * s + frame)
    rows.append("frames/p0_HA_0.png,HA,p0,HA2,0")  # the same file again: refused
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "seq.yaml").write_text("name: cards_seq\nmodality: image\nmanifest: list.csv\n"
                                       "labels: {HA: happy, AN: angry}\nfaces: cropped\nattributes: [au12]\n")
    name = resolve_corpus(tmp_path / "seq.yaml")
    table = load_corpus(name)
    assert len(table) == 24 and table["recording"].nunique() == 8 and table["au12"].iloc[1] == "0.5"
    assert [r for _, r in table.attrs["skipped"]] == ["list.csv line 26: the same file twice (first as utterance 'HA1')"]
    features, _ = load_dataset(name, "video", get_profile("smoke"), n_jobs=1)
    assert set(features.samples["face_status"]) == {"given"}  # faces: cropped -> no detection
    y = (features.samples["emotion"] == "anger").to_numpy().astype(int)
    keys = recording_keys(features.samples)
    for protocol in ("utterance", "speaker"):
        for train, test in make_folds(features.samples, y, protocol, n_folds=2):
            assert not set(keys[train]) & set(keys[test])  # no sequence in two folds


def test_folder_card_with_coded_folder_names_skips_an_unknown_code_per_file(tmp_path):
    for s in range(2):
        for code in ("AN", "HA", "XX"):
            for k in range(2):
                write_face(tmp_path / "tree" / code / f"p{s}" / f"{k}.png", "anger" if code == "AN" else "happiness", s + k)
    (tmp_path / "tree.yaml").write_text("name: cards_tree\nroot: tree\nmodality: image\n"
                                        "folders: <emotion>/<speaker>/<file>\nlabels: {AN: anger, HA: happiness}\n")
    table = load_corpus(resolve_corpus(tmp_path / "tree.yaml"))
    assert len(table) == 8 and set(table["speaker"]) == {"p0", "p1"}
    assert len(table.attrs["skipped"]) == 4 and all("unknown code 'XX'" in r for _, r in table.attrs["skipped"])


@pytest.mark.parametrize("text, key, reason", [
    ("name: bad\nmodality: audio\nfolders:\nlabel: {}\n", "label", "unknown key"),
    ("name: bad\nroot: nowhere\nmodality: audio\nfolders:\n", "root", "is not a folder"),
    ("name: bad\nmodality: audio\npattern: {glob: '*.flac', regex: '(?P<emotion>x)'}\n", "pattern", "no usable file"),
    ("name: bad\nmodality: audio\npattern: {glob: '*.wav', regex: '(?P<emotion>[a-z]+)\\.wav'}\n",
     "pattern", "unknown emotion 'zz'"),
    ("name: bad\nmodality: audio\nfolders:\nlabels: {01: anger}\n", "labels", "quote it"),
    ("name: bad\nmodality: audio\nmanifest: a.csv\nfolders:\n", "manifest/folders", "exactly one"),
    ("name: Bad\nmodality: audio\nfolders:\n", "name", "lower-case"),
    ("name: bad\nmodality: smell\nfolders:\n", "modality", "is not one of"),
])
def test_a_bad_card_names_the_card_the_key_and_the_reason(tmp_path, text, key, reason):
    write_audio(tmp_path / "zz.wav", 200)
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(CardError, match=f"bad.yaml: {key}: .*{reason}"):
        resolve_corpus(tmp_path / "bad.yaml")


def test_a_folder_gets_an_inferred_card_and_run_specs_take_paths(tmp_path, capsys):
    for emotion in ("happy", "angry"):
        for k in range(2):
            write_face(tmp_path / "My Faces" / emotion / f"{k}.png", "happiness" if emotion == "happy" else "anger", k)
    spec = parse_run_spec(f"{audio_card(tmp_path, 'cards_spec')} -> {tmp_path / 'My Faces'}")
    assert spec.target == "my_faces" and spec.sources == ("cards_spec",)
    assert "inferred corpus card" in capsys.readouterr().err
    assert read_card(tmp_path / "cards_spec.yaml")["root"] == tmp_path / "audio"
    assert str(tmp_path / "My Faces") in os.environ[CARDS_ENV]


def test_sweep_between_two_cards_on_spawned_workers(tmp_path, capsys):
    source = audio_card(tmp_path / "a", "cards_src")
    for target in (audio_card(tmp_path / "b", "cards_tgt", speakers=3), audio_card(tmp_path / "c", "cards_late")):
        # The second card is registered after the first sweep started the pool's fork server: its workers
        # learn of it from the environment the task carries (MTL_CORPUS_CARDS).
        status = main(["sweep", "--experiments", "mine", "--corpora", f"{source}->{target}", "--methods",
                       "transfer", "--profile", "smoke", "--scheduler", "pool", "--workers", "2", "--no-progress",
                       "--protocols", "utterance"])
        assert status == 0, capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in (results_dir() / "runs" / "mine").glob("*.json")]
    assert sorted(r["target"] for r in records) == ["cards_late"] * 2 + ["cards_tgt"] * 2
    assert all(r["data"]["provenance"]["cards_src"]["card"].endswith("a/cards_src.yaml") for r in records)


def test_corpus_check_counts_skips_and_detects_faces(tmp_path, capsys):
    for k in range(3):
        write_face(tmp_path / "check" / "happy" / f"{k}.png", "happiness", k)
    (tmp_path / "check" / "happy" / "broken.png").write_bytes(b"")
    sheet = tmp_path / "sheet.png"
    assert main(["corpus", "check", str(tmp_path / "check"), "--output", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "check (check): 4 files" in out and "face detector: a face in 3 of 4" in out
    assert cv2.imread(str(sheet)).shape == (64, 512, 3)


def test_plan_notebook_takes_card_paths_as_a_chapter_takes_its_corpora(tmp_path):
    from mtl.chapters import plan_notebook

    source, target = audio_card(tmp_path / "a", "cards_plan_src"), audio_card(tmp_path / "b", "cards_plan_tgt")
    plan = plan_notebook("table4_speech_baselines", corpora=[f"{source}->{target}"], profile="smoke")
    assert {c.method for c in plan.cells} == {"scratch", "finetune", "transfer"}
    assert {c.target for c in plan.cells} == {"cards_plan_tgt"} and set(plan.data_kinds.values()) == {"real"}
    assert "contempt" in plan.cells[0].classes  # a declared class is shared by the two cards
    assert plan_notebook(corpora=[str(target)], profile="smoke").corpora == ("cards_plan_tgt",)


def test_a_chapter_runs_on_two_cards_with_mtl_run(tmp_path, capsys):
    """`mtl run <chapter> -p corpora` with card paths: the paper's comparison gains rows of the reader's own runs."""
    source, target = audio_card(tmp_path / "a", "cards_run_src"), audio_card(tmp_path / "b", "cards_run_tgt", speakers=3)
    output = tmp_path / "table4.ipynb"
    status = main(["run", "table4_speech_baselines", "--profile", "smoke", "-p", "corpora",
                   f"['{source}->{target}']", "--output", str(output)])
    assert status == 0, capsys.readouterr()
    text = output.read_text(encoding="utf-8")
    assert "not in the paper" in text and "cards_run_tgt" in text
    records = [json.loads(p.read_text()) for p in (results_dir() / "runs").glob("*-custom/*.json")]
    assert {r["method"] for r in records if r["target"] == "cards_run_tgt"} == {"scratch", "finetune", "transfer"}


def test_a_card_whose_root_has_gone_says_so_and_names_the_card(tmp_path):
    from mtl.corpora import resolve_corpus
    from mtl.datasets import resolve_data_kind
    from mtl.errors import MissingDataError

    card = audio_card(tmp_path / "a", "cards_moved")
    name = resolve_corpus(str(card))
    assert resolve_data_kind(name) == "real"
    (tmp_path / "a" / "audio").rename(tmp_path / "a" / "elsewhere")
    with pytest.raises(MissingDataError, match=r"cards_moved.*the root its corpus card .*cards_moved.yaml declares"):
        resolve_data_kind(name)

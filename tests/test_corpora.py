"""Corpus loaders, label harmonisation, and round trips through the synthetic corpora."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl.corpora import (CORPORA, COLUMNS, PAPER_ORDER, LabelError, load_corpus, load_image_folder,
                         load_manifest, normalise_emotion, paper_order, restrict, shared_classes)
from mtl.errors import BadInputError, ConfigError, MissingDataError
from mtl.io import file_digest
from mtl.synthetic import make_corpus
from mtl.synthetic.corpora import AU_LABELS, MANIFEST, MARKER


def touch(root: Path, *relative: str) -> None:
    """Empty placeholder files: the loaders read names, not contents."""
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def reasons(df: pd.DataFrame) -> dict[str, str]:
    return {Path(path).name: reason for path, reason in df.attrs["skipped"]}


# --------------------------------------------------------------------------- labels
def test_class_sets_and_the_papers_six_shared_classes():
    assert shared_classes("enterface", "savee") == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    assert [len(CORPORA[name].classes) for name in ("emodb", "savee", "ravdess")] == [7, 7, 8]
    assert "surprise" not in CORPORA["emodb"].classes and "boredom" in CORPORA["emodb"].classes
    assert shared_classes("emodb", "savee", "enterface") == ["anger", "disgust", "fear", "happiness", "sadness"]
    assert paper_order(shared_classes("enterface", "savee")) == list(PAPER_ORDER[:6])


def test_no_shared_class_is_a_clear_error():
    with pytest.raises(LabelError, match="share no emotion class"):
        shared_classes(["boredom"], ["calm", "surprise"])
    with pytest.raises(LabelError, match="unknown corpus"):
        shared_classes("iemocap")


def test_emotion_names_are_normalised():
    assert normalise_emotion("Happy") == "happiness" and normalise_emotion(" ANGRY ") == "anger"
    assert normalise_emotion("fearful") == "fear" and normalise_emotion("surprised") == "surprise"
    with pytest.raises(LabelError, match="unknown emotion 'contempt'"):
        normalise_emotion("contempt")


def test_restrict_keeps_attrs_and_resets_index():
    df = pd.DataFrame({"emotion": ["anger", "neutral", "fear", "boredom"], "x": range(4)})
    df.attrs["skipped"] = [("a", "b")]
    out = restrict(df, ["fear", "angry"])
    assert out["emotion"].tolist() == ["anger", "fear"] and out.index.tolist() == [0, 1]
    assert out.attrs["skipped"] == [("a", "b")]


# --------------------------------------------------------------------------- bad input
def test_missing_corpus_root_says_how_to_set_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(MissingDataError, match="MTL_DATA_ROOT") as error:
        load_corpus("emodb")
    assert str(tmp_path / "nowhere" / "emodb") in str(error.value)
    with pytest.raises(MissingDataError, match="enterface"):
        load_corpus("enterface", root=tmp_path / "absent")


def test_unknown_corpus_and_modality_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown corpus"):
        load_corpus("iemocap")
    touch(tmp_path, "wav/03a01Fa.wav")
    with pytest.raises(ConfigError, match="modality"):
        load_corpus("emodb", root=tmp_path, modality="video")


def test_emodb_skips_and_reports_bad_names(tmp_path, caplog):
    touch(tmp_path, "wav/03a01Fa.wav", "wav/16b10Wb.wav", "wav/03a01Xa.wav", "wav/readme.wav", "wav/3a01Fa.wav",
          "wav/notes.txt")
    with caplog.at_level(logging.WARNING, logger="mtl.corpora"):
        df = load_corpus("emodb", root=tmp_path)
    assert list(df.columns[:len(COLUMNS)]) == list(COLUMNS) and {"gender", "text"} <= set(df.columns)
    assert df["utterance"].tolist() == ["03a01Fa", "16b10Wb"]
    assert df["emotion"].tolist() == ["happiness", "anger"] and df["gender"].tolist() == ["m", "f"]
    assert all(Path(p).is_absolute() for p in df["path"])
    why = reasons(df)
    assert set(why) == {"03a01Xa.wav", "readme.wav", "3a01Fa.wav"}
    assert "unknown EMO-DB emotion code 'X'" in why["03a01Xa.wav"]
    assert "does not follow" in why["readme.wav"]
    assert "3 file(s) skipped" in caplog.text
    with pytest.raises(BadInputError, match="03a01Xa.wav: unknown EMO-DB emotion code"):
        load_corpus("emodb", root=tmp_path, strict=True)


def test_ravdess_accepts_wav_and_flac_and_skips_unknown_codes(tmp_path):
    touch(tmp_path, "Actor_01/03-01-05-02-01-01-01.wav", "Actor_02/03-01-01-01-02-02-02.flac",
          "Actor_02/03-01-09-01-01-01-02.flac", "Actor_02/03-01-01.flac", "Actor_02/03-01-01-01-02-02-02.mp4")
    df = load_corpus("ravdess", root=tmp_path)
    assert df["emotion"].tolist() == ["anger", "neutral"]
    assert df["speaker"].tolist() == ["01", "02"] and df["gender"].tolist() == ["m", "f"]
    assert df["text"].tolist() == ["01", "02"]
    why = reasons(df)
    assert "unknown RAVDESS emotion code '09'" in why["03-01-09-01-01-01-02.flac"]
    assert "does not follow" in why["03-01-01.flac"]


def test_savee_layouts_and_bad_names(tmp_path):
    touch(tmp_path, "AudioData/DC/a01.wav", "AudioData/DC/sa15.wav", "AudioData/KL/n30.wav", "AudioData/KL/x01.wav",
          "AudioData/KL/hello.wav", "AudioVisualClip/JE/su03.avi", "AudioVisualClip/JE/q03.avi")
    audio = load_corpus("savee", root=tmp_path)
    assert audio["utterance"].tolist() == ["DC_a01", "DC_sa15", "KL_n30"]
    assert audio["emotion"].tolist() == ["anger", "sadness", "neutral"] and set(audio["modality"]) == {"audio"}
    assert "unknown SAVEE emotion code 'x'" in reasons(audio)["x01.wav"]
    assert "does not follow" in reasons(audio)["hello.wav"]
    video = load_corpus("savee", root=tmp_path, modality="video")
    assert video["utterance"].tolist() == ["JE_su03"] and video["modality"].tolist() == ["video"]
    assert "unknown SAVEE emotion code 'q'" in reasons(video)["q03.avi"]
    flat = tmp_path / "flat"
    touch(flat, "DC_a01.wav", "JK_su07.wav", "JK_zz07.wav")
    df = load_corpus("savee", root=flat)
    assert df["utterance"].tolist() == ["DC_a01", "JK_su07"] and df["speaker"].tolist() == ["DC", "JK"]
    assert "unknown SAVEE emotion code 'zz'" in reasons(df)["JK_zz07.wav"]


def test_enterface_tolerates_irregular_folders_and_reports(tmp_path):
    clips = [f"subject 1/{w}/sentence {k}/s1_{c}_{k}.avi" for c, w in
             [("an", "anger"), ("di", "disgust"), ("fe", "fear"), ("ha", "happiness"), ("sa", "sadness"),
              ("su", "surprise")] for k in range(1, 6)]
    clips.remove("subject 1/fear/sentence 4/s1_fe_4.avi")
    touch(tmp_path, *clips, "Subject 2/Anger/S2_AN_1.avi", "subject 2/anger/deeper/nest/s2_an_2.avi",
          "subject 2/anger/s2_xx_3.avi", "subject 2/anger/clip.avi", "subject 2/copy/s2_an_1.avi")
    df = load_corpus("enterface", root=tmp_path, modality="video")
    assert len(df) == 31 and set(df["modality"]) == {"video"}
    assert set(df["speaker"]) == {"s1", "s2"} and "s2_an_1" in set(df["utterance"])
    why = reasons(df)
    assert "unknown eNTERFACE emotion code 'xx'" in why["s2_xx_3.avi"]
    assert "does not follow" in why["clip.avi"]
    assert "duplicate utterance id 's2_an_1'" in why["s2_an_1.avi"]
    missing = dict(df.attrs["missing"])
    assert any("subject 1, fear: 4 of 5 sentences (missing sentence 4)" == m for m in missing.values())
    assert sum(m.startswith("subject 2,") for m in missing.values()) == 6  # anger 2 of 5, others 0 of 5
    assert load_corpus("enterface", root=tmp_path, modality="audio")["modality"].eq("audio").all()


def test_manifest_csv(tmp_path):
    touch(tmp_path, "clips/a.wav", "clips/b.mp4", "faces/c.png", "clips/d.wav", "clips/e.xyz")
    (tmp_path / "mine.csv").write_text(
        "path,emotion,speaker,utterance\n"
        "clips/a.wav,Happy,p1,\n"
        "clips/b.mp4,angry,p2,u2\n"
        f"{tmp_path / 'faces/c.png'},SAD,p1,u3\n"
        "clips/d.wav,contempt,p2,u4\n"
        "clips/missing.wav,fear,p2,u5\n"
        "clips/e.xyz,fear,p2,u6\n")
    df = load_corpus(tmp_path / "mine.csv")
    assert df["corpus"].unique().tolist() == ["mine"]
    assert df["emotion"].tolist() == ["happiness", "anger", "sadness"]
    assert df["code"].tolist() == ["Happy", "angry", "SAD"]
    assert df["modality"].tolist() == ["audio", "video", "image"]
    assert df["utterance"].tolist() == ["clips/a", "u2", "u3"]
    assert df["path"].tolist()[0] == str(tmp_path / "clips" / "a.wav")
    why = reasons(df)
    assert "mine.csv line 5: unknown emotion 'contempt'" in why["d.wav"]
    assert "line 6: file not found" in why["missing.wav"]
    assert "unknown file type" in why["e.xyz"]
    with pytest.raises(BadInputError, match="line 5"):
        load_manifest(tmp_path / "mine.csv", strict=True)
    (tmp_path / "bad.csv").write_text("file,label\nx.wav,happy\n")
    with pytest.raises(BadInputError, match="lacks column"):
        load_manifest(tmp_path / "bad.csv")


def test_manifest_reads_only_its_own_folder_unless_allowed(tmp_path):
    touch(tmp_path, "corpus/clips/a.wav", "corpus/clips/b.wav", "elsewhere/c.wav", "elsewhere/d.wav")
    os.symlink(tmp_path / "elsewhere" / "d.wav", tmp_path / "corpus" / "clips" / "linked.wav")
    manifest = tmp_path / "corpus" / "mine.csv"
    manifest.write_text("path,emotion,speaker\n"
                        "clips/a.wav,happy,p1\n"
                        f"{tmp_path / 'corpus/clips/b.wav'},sad,p1\n"  # absolute, but inside: read
                        "../elsewhere/c.wav,angry,p2\n"
                        f"{tmp_path / 'elsewhere/d.wav'},fear,p2\n"
                        "clips/../../elsewhere/c.wav,angry,p3\n"
                        "clips/linked.wav,fear,p3\n")  # a symlink the folder's owner placed: followed
    df = load_corpus(manifest)
    assert df["utterance"].tolist() == ["clips/a", "clips/b", "clips/linked"]
    outside = [(Path(path).name, reason) for path, reason in df.attrs["skipped"]]
    assert [name for name, _ in outside] == ["c.wav", "d.wav", "c.wav"]
    assert all("outside the manifest's folder" in reason and "allow_outside=True" in reason for _, reason in outside)
    assert "mine.csv line 4" in outside[0][1]
    everything = load_corpus(manifest, allow_outside=True)
    assert len(everything) == 4  # the symlink names a file already listed: one file is one sample
    twice, linked = tmp_path / "elsewhere" / "c.wav", tmp_path / "elsewhere" / "d.wav"
    assert everything.attrs["skipped"] == [
        (str(twice), f"mine.csv line 6: the same file twice (first as utterance '{twice.with_suffix('')}')"),
        (str(linked), f"mine.csv line 7: the same file twice (first as utterance '{linked.with_suffix('')}')")]


def test_entries_that_are_not_regular_files_are_skipped_with_their_reason(tmp_path):
    touch(tmp_path, "wav/03a01Fa.wav", "wav/.03a01Wa.wav.tmp", "wav/.hidden/03a02Fa.wav")
    wav = tmp_path / "wav"
    os.mkfifo(wav / "03a02Wa.wav")  # a FIFO is never opened: opening it would block the walk
    os.symlink(wav / "gone.wav", wav / "03a04Wa.wav")
    os.symlink(wav / "03a05Wb.wav", wav / "03a05Wa.wav")
    os.symlink(wav / "03a05Wa.wav", wav / "03a05Wb.wav")
    (wav / "03a07Wa.wav").mkdir()
    df = load_corpus("emodb", root=tmp_path)
    assert df["utterance"].tolist() == ["03a01Fa"]  # hidden files and folders stay out silently
    assert reasons(df) == {
        "03a02Wa.wav": "not a regular file but a FIFO (named pipe)",
        "03a04Wa.wav": f"dangling symlink (its target {wav / 'gone.wav'} does not exist)",
        "03a05Wa.wav": "symlink loop (too many levels of symbolic links)",
        "03a05Wb.wav": "symlink loop (too many levels of symbolic links)",
        "03a07Wa.wav": "not a regular file but a folder"}
    (tmp_path / "list.csv").write_text("path,emotion,speaker\nwav/03a02Wa.wav,anger,03\nwav/03a05Wa.wav,anger,03\n")
    assert [reason for _, reason in load_manifest(tmp_path / "list.csv").attrs["skipped"]] == [
        "list.csv line 2: not a regular file but a FIFO (named pipe)",
        "list.csv line 3: symlink loop (too many levels of symbolic links)"]


def test_paths_that_are_not_utf8_are_skipped_and_reported_printably(tmp_path):
    touch(tmp_path, "wav/03a01Fa.wav")
    folder = os.path.join(os.fsencode(tmp_path / "wav"), b"take\xff")
    os.mkdir(folder)
    for name in (b"03a02Fa.wav", b"03a0\xffFa.wav"):
        open(os.path.join(folder, name), "wb").close()
    df = load_corpus("emodb", root=tmp_path)
    assert df["utterance"].tolist() == ["03a01Fa"]
    skipped = dict(df.attrs["skipped"])
    for path in skipped:
        path.encode("utf-8")  # every reported path can be written to a CSV, a log or a record
    assert skipped[f"{tmp_path}/wav/take\\xff/03a02Fa.wav"].startswith("path is not valid UTF-8")
    assert "does not follow" in skipped[f"{tmp_path}/wav/take\\xff/03a0\\xffFa.wav"]
    with pytest.raises(BadInputError, match=r"take\\xff/03a02Fa.wav: path is not valid UTF-8"):
        load_corpus("emodb", root=tmp_path, strict=True)


def test_image_folder(tmp_path):
    touch(tmp_path, "Happy/1.png", "angry/p7/2.JPG", "neutral/3.tiff", "contempt/4.png", "contempt/5.png",
          "loose.png", "neutral/readme.txt")
    df = load_image_folder(tmp_path)
    assert df["emotion"].tolist() == ["happiness", "anger", "neutral"]
    assert df["speaker"].tolist() == ["unknown", "p7", "unknown"] and set(df["modality"]) == {"image"}
    why = reasons(df)
    assert "emotion folder 'contempt': unknown emotion 'contempt'" in why["4.png"] and "5.png" in why
    assert "not inside an emotion folder" in why["loose.png"]
    assert len(load_corpus(tmp_path)) == 3


# --------------------------------------------------------------------------- synthetic round trips
def test_synthetic_emodb_round_trip_and_determinism(tmp_path):
    root = make_corpus("emodb", size="tiny")
    assert (root / MARKER).is_file() and (root / MANIFEST).is_file()
    df = load_corpus("emodb", root=root, strict=True)
    assert len(df) == 42 and sorted(df["emotion"].unique()) == list(CORPORA["emodb"].classes)
    assert df["speaker"].value_counts().to_dict() == {"03": 14, "09": 14, "16": 14}
    assert make_corpus("emodb", size="tiny") == root  # returns the existing folder
    again = make_corpus("emodb", root=tmp_path / "again", size="tiny", workers=1)
    files = sorted(p.relative_to(root) for p in (root / "wav").iterdir())
    assert files == sorted(p.relative_to(again) for p in (again / "wav").iterdir())
    assert all(file_digest(root / f) == file_digest(again / f) for f in files[:6])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.fixture(scope="module")
def tiny_savee() -> Path:
    pytest.importorskip("av")
    return make_corpus("savee", size="tiny")


@pytest.fixture(scope="module")
def tiny_enterface() -> Path:
    pytest.importorskip("av")
    return make_corpus("enterface", size="tiny")


def test_synthetic_savee_round_trip(tiny_savee, tmp_path):
    audio = load_corpus("savee", root=tiny_savee, strict=True)
    video = load_corpus("savee", root=tiny_savee, modality="video", strict=True)
    for df in (audio, video):
        assert len(df) == 28 and sorted(df["emotion"].unique()) == list(CORPORA["savee"].classes)
        assert df["speaker"].value_counts().to_dict() == {"DC": 14, "JE": 14}
    assert audio["utterance"].tolist() == video["utterance"].tolist()
    # The popular flat re-packaging: <speaker>_<code><nn>.wav in one folder.
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in audio["path"]:
        os.symlink(path, flat / f"{Path(path).parent.name}_{Path(path).name}")
    flat_df = load_corpus("savee", root=flat, strict=True)
    assert flat_df["utterance"].tolist() == audio["utterance"].tolist()
    au = pd.read_csv(tiny_savee / AU_LABELS)
    assert set(au["path"]) == {str(Path(p).relative_to(tiny_savee)) for p in video["path"]}


def test_synthetic_enterface_round_trip_with_irregular_folders(tiny_enterface):
    df = load_corpus("enterface", root=tiny_enterface, modality="video")
    assert len(df) == 59 and df.attrs["skipped"] == []
    assert sorted(df["emotion"].unique()) == list(CORPORA["enterface"].classes)
    assert df["speaker"].value_counts().to_dict() == {"s1": 30 - 1, "s6": 30}
    assert any("/subject 6/anger/s6_an_1.avi" in p for p in df["path"])  # no sentence folder
    (missing,) = df.attrs["missing"]
    assert "subject 1, surprise: 4 of 5 sentences (missing sentence 5)" == missing[1]
    au = pd.read_csv(tiny_enterface / AU_LABELS)
    assert au.groupby("path").size().eq(20).all() and len(au) == 59 * 20
    assert load_corpus("enterface", root=tiny_enterface, modality="audio")["utterance"].tolist() == \
        df["utterance"].tolist()


def test_synthetic_clips_have_speech_and_faces(tiny_enterface):
    from mtl.config import Config
    from mtl.features.audio import utterance_segments
    from mtl.media import read_audio_track

    clip = next((tiny_enterface / "subject 1" / "anger").rglob("*.avi"))
    signal, rate = read_audio_track(clip)
    assert rate == 48000 and abs(signal.size - 0.8 * 48000) < 480 and np.abs(signal).max() > 0.01
    assert utterance_segments(clip, Config()).shape == (1, 64, 64, 3)

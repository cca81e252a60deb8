"""The on-disk feature cache: keys, reuse, rebuilds, skip reports, atomic writes, parallel extraction."""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.features import cache
from mtl.features.cache import FeatureSet, build_features, feature_key
from mtl import media
from mtl.synthetic import faces

SMOKE = get_profile("smoke")  # frame_step 4


def _row(path, modality, speaker, emotion):
    return {"path": str(path), "corpus": "toy", "modality": modality, "speaker": speaker,
            "utterance": path.stem, "emotion": emotion, "code": emotion[:2]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three face clips, two utterances, one face image, and four unusable files, in one table."""
    folder = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    rows = []
    for k, emotion in enumerate(("anger", "fear", "happiness")):
        frames, _, _ = faces.render_clip(faces.random_identity(rng), emotion, 10, rng)
        path = media.write_avi(folder / f"clip{k}.avi", frames)
        rows.append(_row(path, "video", f"s{k}", emotion))
    for k, emotion in enumerate(("anger", "sadness")):
        path = folder / f"utt{k}.wav"
        sf.write(path, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)  # 1 s: 2 segments
        rows.append(_row(path, "audio", f"s{k}", emotion))
    image = folder / "still.png"
    cv2.imwrite(str(image), cv2.cvtColor(faces.render_clip(faces.random_identity(rng), "fear", 3, rng)[0][-1],
                                         cv2.COLOR_RGB2BGR))
    rows.append(_row(image, "image", "s9", "fear"))
    nobody = media.write_avi(folder / "nobody.avi", rng.integers(0, 256, (4, 96, 96, 3), dtype=np.uint8))
    rows.append(_row(nobody, "video", "s3", "anger"))
    (folder / "junk.avi").write_bytes(b"junk" * 50)
    rows.append(_row(folder / "junk.avi", "video", "s3", "fear"))
    (folder / "empty.wav").write_bytes(b"")
    rows.append(_row(folder / "empty.wav", "audio", "s3", "anger"))
    rows.append(_row(folder / "gone.wav", "audio", "s3", "anger"))
    return pd.DataFrame(rows)


def test_build_extracts_good_files_and_reports_bad_ones(corpus, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mtl.features"):
        features = build_features(corpus, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False)
    assert features.built
    assert isinstance(features.X, np.memmap) and features.X.dtype == np.float32
    # 3 clips x 3 kept frames (0, 4, 8) + 2 utterances x 2 segments + 1 image
    assert features.X.shape == (14, 64, 64, 3) and len(features) == 14
    samples = features.samples
    assert list(samples.columns[:7]) == list(corpus.columns)
    assert samples.groupby("path")["segment"].apply(list).to_dict()[str(corpus.path[0])] == [0, 1, 2]
    assert samples.loc[samples.modality == "video", "frame"].tolist() == [0, 4, 8] * 3
    assert set(samples.loc[samples.modality == "audio", "frame"]) == {-1}
    assert set(samples.loc[samples.modality != "audio", "face_status"]) <= {"detected", "carried", "backfilled"}
    faces_x = features.X[(samples.modality != "audio").to_numpy()]
    assert 0 <= faces_x.min() and faces_x.max() <= 1, "face crops are stored scaled to [0, 1]"

    reasons = {os.path.basename(path): reason for path, reason in features.skipped}
    assert set(reasons) == {"nobody.avi", "junk.avi", "empty.wav", "gone.wav"}
    assert reasons["nobody.avi"] == "no face detected in 1 frame"  # 4 frames, step 4: frame 0 only
    assert reasons["junk.avi"].startswith("cannot decode video")
    assert reasons["gone.wav"] == "file not found"
    assert "skipped 4 of 10 files under " in caplog.text  # the common folder once, then relative names
    assert "nobody.avi: no face detected in 1 frame" in caplog.text
    stored = pd.read_csv(features.folder / "skipped.csv")
    assert len(stored) == 4


def test_rerun_loads_and_parameter_or_source_changes_rebuild(corpus, tmp_path):
    good = corpus.iloc[[0, 3]].reset_index(drop=True)  # one clip, one utterance
    first = build_features(good, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False)
    again = build_features(good, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False)
    assert first.built and not again.built and again.key == first.key
    np.testing.assert_array_equal(again.X, first.X)
    pd.testing.assert_frame_equal(again.samples, first.samples)

    # fields that do not affect features (PathNet, evolution, evaluation) keep the key
    assert feature_key(good, SMOKE.replace(generations=99, population=7, folds=3, lr=0.5)) == first.key
    for changed in (SMOKE.replace(frame_step=2), SMOKE.replace(n_mels=32), SMOKE.replace(segment_overlap=20)):
        assert feature_key(good, changed) != first.key
    step2 = build_features(good, SMOKE.replace(frame_step=2), cache_dir=tmp_path, n_jobs=1, progress=False)
    assert step2.built and step2.samples["frame"].tolist()[:5] == [0, 2, 4, 6, 8]
    assert feature_key(good.iloc[[1]], SMOKE.replace(n_mels=32)) != feature_key(good.iloc[[1]], SMOKE)
    relabelled = good.assign(emotion=["fear", "fear"])
    assert feature_key(relabelled, SMOKE) != first.key

    clip = good.path[0]
    copy = tmp_path / "copy.avi"
    copy.write_bytes(open(clip, "rb").read())
    moved = good.assign(path=[str(copy), good.path[1]])
    before = build_features(moved, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False)
    frames = media.read_video_frames(copy)
    media.write_avi(copy, frames[::-1].copy())  # same clip reversed: new bytes and mtime
    after = build_features(moved, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False)
    assert after.built and after.key != before.key


def test_a_crash_leaves_no_partial_cache(corpus, tmp_path, monkeypatch):
    good = corpus.iloc[[0, 3]].reset_index(drop=True)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(cache, "_finish_array", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_features(good, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False)
    key = feature_key(good, SMOKE)
    assert not (tmp_path / key).exists()
    assert not list(tmp_path.glob(".tmp-*")), "the staging folder is removed"
    monkeypatch.undo()
    assert build_features(good, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False).built


def test_parallel_extraction_matches_serial(corpus, tmp_path):
    serial = build_features(corpus, SMOKE, cache_dir=tmp_path / "serial", n_jobs=1, progress=False)
    parallel = build_features(corpus, SMOKE, cache_dir=tmp_path / "parallel", n_jobs=2, progress=False)
    assert parallel.built and parallel.key == serial.key
    np.testing.assert_array_equal(parallel.X, serial.X)
    pd.testing.assert_frame_equal(parallel.samples, serial.samples)
    assert parallel.skipped == serial.skipped


def test_subsets_and_labels(corpus, tmp_path):
    features = build_features(corpus, SMOKE, cache_dir=tmp_path, n_jobs=1, progress=False)
    everything = features.subset(np.ones(len(features), bool))
    assert isinstance(everything.X, np.memmap), "a contiguous selection stays a memory-mapped view"
    first_clip = features.subset(np.arange(3))
    assert isinstance(first_clip.X, np.memmap) and len(first_clip) == 3

    fear = features.subset(features.samples["emotion"].eq("fear").to_numpy())
    assert set(fear.samples["emotion"]) == {"fear"} and len(fear) == 4  # 3 frames + the image
    np.testing.assert_array_equal(fear.X, features.X[features.samples["emotion"].eq("fear").to_numpy()])
    nested = fear.subset([0, 3])
    np.testing.assert_array_equal(nested.X, fear.X[[0, 3]])
    assert fear.labels(["anger", "fear"]).tolist() == [1, 1, 1, 1]
    with pytest.raises(ConfigError, match="sadness"):
        features.labels(["anger", "fear", "happiness"])
    assert isinstance(features, FeatureSet)


def test_bad_tables_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="lacks column"):
        build_features(pd.DataFrame({"path": ["a.wav"]}), SMOKE, cache_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="unknown modality"):
        build_features(pd.DataFrame({"path": ["a.txt"], "modality": ["text"]}), SMOKE, cache_dir=tmp_path,
                       progress=False)


def test_a_table_built_by_hand_with_a_non_utf8_path_is_cached_and_read_back(tmp_path):
    """Loaders skip such paths; a table made by hand may still hold one: it is reported, and the cache still works."""
    folder = os.path.join(os.fsencode(tmp_path), b"take\xff")
    os.mkdir(folder)
    sf.write(tmp_path / "utt.wav", (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 16000)
    os.rename(os.fsencode(tmp_path / "utt.wav"), os.path.join(folder, b"utt.wav"))
    path = os.fsdecode(os.path.join(folder, b"utt.wav"))  # a str with a surrogate escape, as os.listdir gives
    table = pd.DataFrame([{"path": path, "corpus": "toy", "modality": "audio", "speaker": "s0",
                           "utterance": "utt", "emotion": "anger", "code": "an"}])
    built = build_features(table, SMOKE, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    again = build_features(table, SMOKE, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert built.built and not again.built  # written, then read back: the odd name breaks neither
    assert [p for p, _ in again.skipped] == [path]  # the decoder cannot open it: reported, not a crash

"""The loaders and the audio features on the real EMO-DB and RAVDESS (skipped without MTL_DATA_ROOT).

Every file of both corpora goes through the feature extraction (about 3-4 ms a
file, some 7 s for the 1975 files on one core).
"""

from __future__ import annotations

import numpy as np
import pytest

from mtl.config import Config
from mtl.corpora import CORPORA, load_corpus
from mtl.features.audio import utterance_segments

pytestmark = pytest.mark.realdata

CONFIG = Config()


def test_emodb_counts(real_data_root):
    df = load_corpus("emodb", root=real_data_root / "emodb", strict=True)
    assert len(df) == 535 and df.attrs["skipped"] == []
    assert df["code"].value_counts().to_dict() == {"W": 127, "L": 81, "E": 46, "A": 69, "F": 71, "T": 62, "N": 79}
    assert sorted(df["emotion"].unique()) == list(CORPORA["emodb"].classes)
    assert sorted(df["speaker"].unique()) == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    assert sorted(df.loc[df["gender"] == "m", "speaker"].unique()) == ["03", "08", "10", "11", "15"]
    assert df["utterance"].is_unique and df["text"].nunique() == 10


def test_ravdess_counts(real_data_root):
    df = load_corpus("ravdess", root=real_data_root / "ravdess-speech-16k", strict=True)
    assert len(df) == 1440 and df.attrs["skipped"] == []
    counts = df["emotion"].value_counts().to_dict()
    assert counts.pop("neutral") == 96 and set(counts.values()) == {192} and len(counts) == 7
    assert sorted(df["emotion"].unique()) == list(CORPORA["ravdess"].classes)
    per_actor = df["speaker"].value_counts()
    assert len(per_actor) == 24 and set(per_actor) == {60}
    assert (df.groupby("gender")["speaker"].nunique().to_dict()) == {"f": 12, "m": 12}
    assert df["utterance"].is_unique


def test_default_root_follows_mtl_data_root(real_data_root, monkeypatch):
    monkeypatch.setenv("MTL_DATA_ROOT", str(real_data_root))
    assert len(load_corpus("emodb")) == 535


@pytest.mark.parametrize("corpus, folder", [("emodb", "emodb"), ("ravdess", "ravdess-speech-16k")])
def test_features_of_every_file(real_data_root, corpus, folder):
    df = load_corpus(corpus, root=real_data_root / folder)
    n_segments, lows, highs, medians = [], [], [], []
    for path in df["path"]:
        images = utterance_segments(path, CONFIG)
        assert images.shape[1:] == (64, 64, 3) and images.dtype == np.float32, path
        assert np.isfinite(images).all(), path
        static = images[..., 0]
        n_segments.append(len(images))
        lows.append(static.min())
        highs.append(static.max())
        medians.append(np.median(static))
    assert min(lows) >= -100.0 - 1e-3  # the log floor
    assert max(highs) < 40.0  # dB re full scale of a Mel band: no clipping artefacts beyond that
    assert -80.0 < np.median(medians) < 0.0
    assert np.percentile(highs, 1) > -40.0  # every utterance has speech in it
    if corpus == "emodb":  # this copy: every file exactly 2.000 s -> 198 frames -> 4 segments
        assert set(n_segments) == {4}
    else:
        assert min(n_segments) >= 3 and sum(n_segments) > 1440 * 4

"""The source-filter speech synthesiser: determinism, shapes, emotion not trivially separable, domain shift."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mtl.config import Config
from mtl.features.audio import log_mel
from mtl.synthetic.speech import CORPUS_STYLES, PROSODY, make_speaker, phone_content, synthesize

CONFIG = Config()
EMOTIONS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]


def speakers(seed: int = 0, n: int = 4):
    rng = np.random.default_rng(seed)
    return [make_speaker(f"p{i}", "mf"[i % 2], rng) for i in range(n)]


def band_statistics(signal: np.ndarray, corpus: str) -> np.ndarray:
    """Mean and standard deviation over time of each log-Mel band (128 features) at 16 kHz."""
    logmel = log_mel(soxr.resample(signal, CORPUS_STYLES[corpus].sample_rate, 16000), CONFIG)
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1)])


def test_same_generator_state_same_samples():
    (voice,) = speakers(n=1)
    a = synthesize("anger", voice, "a01", "savee", np.random.default_rng(3))
    b = synthesize("anger", voice, "a01", "savee", np.random.default_rng(3))
    c = synthesize("anger", voice, "a01", "savee", np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("corpus", ["emodb", "savee", "enterface"])
def test_output_is_clean_float32_at_the_corpus_rate(corpus):
    voice = speakers(1)[1]
    for emotion in PROSODY:
        signal = synthesize(emotion, voice, "b02", corpus, np.random.default_rng(0), duration=1.0)
        assert signal.dtype == np.float32 and signal.shape == (CORPUS_STYLES[corpus].sample_rate,)
        assert np.isfinite(signal).all() and 0.01 < np.abs(signal).max() <= 0.95
    free = synthesize("neutral", voice, "b02", corpus, np.random.default_rng(0))
    assert 1.0 < free.size / CORPUS_STYLES[corpus].sample_rate < 6.0


def test_phone_content_depends_on_sentence_and_language_only():
    style = CORPUS_STYLES["emodb"]
    assert phone_content("a01", style) == phone_content("a01", style)
    assert phone_content("a01", style) != phone_content("a02", style)
    assert phone_content("a01", style) != phone_content("a01", CORPUS_STYLES["savee"])


def test_unknown_emotion_is_an_error():
    with pytest.raises(ValueError, match="unknown emotion 'contempt'"):
        synthesize("contempt", speakers(n=1)[0], "a01", "emodb", np.random.default_rng(0))


def test_emotion_is_learnable_but_no_single_mel_feature_decides_it():
    """A classifier on all band statistics beats the best one-feature classifier by a wide margin."""
    voices = speakers(7)
    features, labels = [], []
    for label, emotion in enumerate(EMOTIONS):
        for k in range(30):
            rng = np.random.default_rng([label, k])
            signal = synthesize(emotion, voices[k % 4], f"t{k % 5}", "emodb", rng, duration=1.2)
            features.append(band_statistics(signal, "emodb"))
            labels.append(label)
    X, y = np.array(features), np.array(labels)
    multi = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), X, y, cv=5).mean()
    single = [cross_val_score(DecisionTreeClassifier(max_depth=3, random_state=0), X[:, [j]], y, cv=5).mean()
              for j in range(X.shape[1])]
    assert multi > 0.5, f"emotion barely learnable: {multi:.2f} (chance 0.17)"
    assert max(single) < multi - 0.15, f"one feature nearly decides: {max(single):.2f} vs {multi:.2f}"


def test_corpora_differ_domain_shift():
    """The same speakers and emotions recorded 'in' different corpora are easy to tell apart."""
    voices = speakers(11)
    features, labels, spectra = [], [], {}
    for label, corpus in enumerate(["emodb", "savee", "enterface"]):
        rows = []
        for k in range(12):
            signal = synthesize(EMOTIONS[k % 6], voices[k % 4], f"t{k}", corpus, np.random.default_rng([label, k]),
                                duration=1.0)
            rows.append(band_statistics(signal, corpus))
        features += rows
        labels += [label] * len(rows)
        spectra[corpus] = np.mean(rows, axis=0)[:64]
    accuracy = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                               np.array(features), np.array(labels), cv=3).mean()
    assert accuracy > 0.9
    assert np.abs(spectra["emodb"] - spectra["enterface"]).max() > 6.0  # dB, in some band
    assert np.abs(spectra["savee"] - spectra["enterface"]).max() > 6.0

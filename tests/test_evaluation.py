import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from mtl.errors import ConfigError
from mtl.evaluation import (Standardizer, confusion, evaluate, make_folds, pool_utterances, recording_keys,
                            segment_scores, utterance_scores)


def _samples(n_speakers=6, utterances_per_speaker=6, segments=4, n_classes=3, seed=0):
    """A samples table: speakers x utterances, each cut into a few segments (same label)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        for u in range(utterances_per_speaker):
            label = (s + u) % n_classes
            for k in range(segments + int(rng.integers(0, 3))):
                rows.append(dict(path=f"/data/spk{s}/utt{u}.wav", corpus="toy", speaker=f"{s:02d}",
                                 utterance=f"u{u}", emotion=f"c{label}", segment=k, label=label))
    frame = pd.DataFrame(rows)
    return frame, frame["label"].to_numpy()


def _check_partition(folds, n):
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests.tolist()) == list(range(n))
    for train, test in folds:
        assert not set(train) & set(test)
        assert len(train) + len(test) == n


def test_paper_protocol_is_stratified_random_and_deterministic():
    samples, y = _samples()
    folds = make_folds(samples, y, "paper", 5, seed=3)
    assert len(folds) == 5
    _check_partition(folds, len(y))
    overall = np.bincount(y) / len(y)
    for _, test in folds:
        share = np.bincount(y[test], minlength=3) / len(test)
        assert np.abs(share - overall).max() < 0.08
    again = make_folds(samples, y, "paper", 5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    other = make_folds(samples, y, "paper", 5, seed=4)
    assert any((a[1] != b[1]).any() for a, b in zip(folds, other))
    # random folds over segments split recordings: the leakage the grouped protocols remove
    keys = recording_keys(samples)
    assert any(set(keys[train]) & set(keys[test]) for train, test in folds)


def test_utterance_protocol_keeps_each_recording_in_one_fold():
    samples, y = _samples()
    folds = make_folds(samples, y, "utterance", 5, seed=0)
    _check_partition(folds, len(y))
    keys = recording_keys(samples)
    for train, test in folds:
        assert not set(keys[train]) & set(keys[test])


def test_recording_key_tells_apart_utterances_with_the_same_code():
    samples, _ = _samples(n_speakers=2, utterances_per_speaker=1)
    assert len(set(recording_keys(samples))) == 2  # both called "u0"
    assert len(set(recording_keys(samples.drop(columns="path")))) == 2


def test_speaker_protocol_is_speaker_independent():
    samples, y = _samples(n_speakers=6)
    folds = make_folds(samples, y, "speaker", 3, seed=1)
    assert len(folds) == 3
    _check_partition(folds, len(y))
    for train, test in folds:
        assert not set(samples.speaker.iloc[train]) & set(samples.speaker.iloc[test])


def test_speaker_protocol_with_fewer_speakers_than_folds_is_leave_one_speaker_out(caplog):
    samples, y = _samples(n_speakers=4)
    with caplog.at_level(logging.WARNING, logger="mtl.evaluation"):
        folds = make_folds(samples, y, "speaker", 5, seed=0)
    assert len(folds) == 4
    assert "leave-one-speaker-out" in caplog.text
    assert sorted(len(set(samples.speaker.iloc[test])) for _, test in folds) == [1, 1, 1, 1]
    one, y1 = _samples(n_speakers=1)
    with pytest.raises(ConfigError, match="at least 2 speakers"):
        make_folds(one, y1, "speaker", 5)


def test_make_folds_rejects_bad_parameters():
    samples, y = _samples()
    with pytest.raises(ConfigError, match="unknown protocol 'random'"):
        make_folds(samples, y, "random", 5)
    with pytest.raises(ConfigError, match="n_folds must be >= 2"):
        make_folds(samples, y, "paper", 1)
    with pytest.raises(ConfigError, match="labels but samples has"):
        make_folds(samples, y[:-1], "paper", 5)
    with pytest.raises(ConfigError, match="recordings"):
        make_folds(samples.iloc[:8], y[:8], "utterance", 5)


def test_standardizer_uses_training_rows_only():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4, 5, 3)).astype(np.float32)
    X[30:] += 100.0  # the "test" rows are far off: they must not move the statistics
    train = np.arange(30)
    scaler = Standardizer(chunk=7).fit(X, train)
    np.testing.assert_allclose(scaler.mean_, X[train].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(scaler.scale_, X[train].std(axis=0), rtol=1e-4)
    Z = scaler.transform(X, train)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-4)
    assert scaler.transform(X, np.arange(30, 40)).mean() > 10
    assert Z.dtype == np.float32


def test_standardizer_per_bin_and_channel_and_constant_inputs():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 4, 6, 3)).astype(np.float32)
    X[:, 0, :, 0] = 5.0  # a constant band: maps to 0, no division by zero
    scaler = Standardizer(per="bin_channel").fit(X)
    assert scaler.mean_.shape == (4, 1, 3)
    np.testing.assert_allclose(scaler.mean_[:, 0, :], X.mean(axis=(0, 2)), atol=1e-5)
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z[:, 0, :, 0], 0.0, atol=1e-6)
    with pytest.raises(ConfigError, match="before fit"):
        Standardizer().transform(X)
    with pytest.raises(ConfigError, match="per must be"):
        Standardizer(per="global")


def test_segment_scores_against_hand_computed_values():
    classes = ["anger", "fear", "sadness"]
    y_true = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
    scores = segment_scores(y_true, y_pred, classes)
    assert scores["accuracy"] == pytest.approx(7 / 10)
    assert scores["per_class"] == pytest.approx({"anger": 3 / 4, "fear": 1 / 2, "sadness": 3 / 4})
    assert scores["uar"] == pytest.approx((3 / 4 + 1 / 2 + 3 / 4) / 3)
    assert scores["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert scores["confusion"] == [[3, 1, 0], [0, 1, 1], [1, 0, 3]]
    normalised = confusion(y_true, y_pred, 3, normalise=True)
    np.testing.assert_allclose(np.diag(normalised), [0.75, 0.5, 0.75])
    np.testing.assert_allclose(normalised.sum(axis=1), 1.0)


def test_class_absent_from_the_fold_has_nan_accuracy_and_is_left_out_of_uar():
    scores = segment_scores([0, 0, 1, 1], [0, 2, 1, 1], ["a", "b", "c"])
    assert np.isnan(scores["per_class"]["c"])
    assert scores["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert np.isnan(confusion([0, 0], [0, 1], 3, normalise=True)[2]).all()


def test_pool_utterances_by_mean_probability_and_vote():
    proba = np.array([
        [0.9, 0.1], [0.4, 0.6], [0.4, 0.6],  # utterance a: votes say 1, mean says 0 (0.567 vs 0.433)
        [0.2, 0.8], [0.3, 0.7],              # utterance b: both say 1
        [0.55, 0.45], [0.3, 0.7],            # utterance c: a tie in votes, mean says 1 (0.575)
    ])
    groups = np.array(["a", "a", "a", "b", "b", "c", "c"])
    keys, mean_pred, labels = pool_utterances(proba, groups, "mean", y=[0, 0, 0, 1, 1, 0, 0])
    assert keys.tolist() == ["a", "b", "c"]
    assert mean_pred.tolist() == [0, 1, 1]
    assert labels.tolist() == [0, 1, 0]
    _, vote_pred, _ = pool_utterances(proba, groups, "vote")
    assert vote_pred.tolist() == [1, 1, 1]
    with pytest.raises(ConfigError, match="different labels"):
        pool_utterances(proba, groups, "mean", y=[0, 1, 0, 1, 1, 0, 0])
    with pytest.raises(ConfigError, match="method"):
        pool_utterances(proba, groups, "median")


def test_evaluate_reports_segment_and_utterance_levels():
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.55, 0.45], [0.3, 0.7]])
    groups = ["a", "a", "a", "b", "b", "c", "c"]
    y = [0, 0, 0, 1, 1, 0, 0]
    scores = evaluate(y, proba, groups, ["neutral", "anger"])
    assert scores["accuracy"] == pytest.approx(4 / 7)
    utt = scores["utterance"]
    assert utt["n_utterances"] == 3
    assert utt["mean_prob"]["accuracy"] == pytest.approx(2 / 3)
    assert utt["vote"]["accuracy"] == pytest.approx(1 / 3)
    assert utt == utterance_scores(y, proba, groups, ["neutral", "anger"])
    with pytest.raises(ConfigError, match="one column per class"):
        evaluate(y, proba, groups, ["neutral", "anger", "fear"])

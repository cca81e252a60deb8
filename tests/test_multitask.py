"""The multi-task residual CNN: masked loss, AU F1, learning, determinism, resume, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtl.config import get_profile
from mtl.errors import ConfigError, MtlError
from mtl.evaluation import au_scores
from mtl.multitask import MultiTaskClassifier, ResidualNet, multitask_loss

AUS = ["AU1", "AU2"]


def toy_task(n: int = 192, seed: int = 0):
    """Three classes marked by a bright corner patch; AU1 = class 0, AU2 = class 1 (half the AUs unknown)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 64, 64, 3)).astype(np.float32)
    X[:, :16, :16, 0] += 2.5 * (y == 0)[:, None, None]
    X[:, -16:, -16:, 1] += 2.5 * (y == 1)[:, None, None]
    au = np.stack([y == 0, y == 1], axis=1).astype(np.float32)
    return X, y, au


def classifier(**kwargs) -> MultiTaskClassifier:
    settings = dict(width=4, steps=40, record_every=10, au_names=AUS)
    return MultiTaskClassifier(get_profile("smoke", batch_size=32), **{**settings, **kwargs})


def test_masked_loss_is_the_sum_of_the_single_task_losses_where_both_labels_exist():
    torch.manual_seed(0)
    logits, au_logits = torch.randn(6, 3), torch.randn(6, 2)
    emotion, head, au = torch.tensor([0, 1, 2, 0, 1, 2]), torch.zeros(6, dtype=torch.long), torch.rand(6, 2).round()
    both, parts = multitask_loss({"e": logits}, au_logits, emotion, head, au)
    single = F.cross_entropy(logits, emotion) + F.binary_cross_entropy_with_logits(au_logits, au)
    assert torch.allclose(both, single)
    assert parts["emotion"] == pytest.approx(float(F.cross_entropy(logits, emotion)))
    weighted, _ = multitask_loss({"e": logits}, au_logits, emotion, head, au, emotion_weight=0.5, au_weight=2.0)
    assert torch.allclose(weighted, 0.5 * F.cross_entropy(logits, emotion)
                          + 2.0 * F.binary_cross_entropy_with_logits(au_logits, au))
    alone, _ = multitask_loss({"e": logits}, au_logits, emotion, head, au, tasks="emotion")
    assert torch.allclose(alone, F.cross_entropy(logits, emotion))


def test_a_missing_label_gives_zero_gradient():
    logits = torch.randn(4, 3, requires_grad=True)
    au_logits = torch.randn(4, 2, requires_grad=True)
    emotion = torch.tensor([0, -1, 2, -1])  # samples 1 and 3 have no emotion label
    au = torch.tensor([[1.0, 0.0], [float("nan"), 1.0], [float("nan"), float("nan")], [0.0, 1.0]])
    loss, _ = multitask_loss({"e": logits}, au_logits, emotion, torch.zeros(4, dtype=torch.long), au)
    loss.backward()
    assert torch.all(logits.grad[[1, 3]] == 0) and torch.all(logits.grad[[0, 2]].abs().sum(1) > 0)
    assert torch.all(au_logits.grad[~torch.isfinite(au)] == 0)
    assert torch.all(au_logits.grad[torch.isfinite(au)] != 0)


def test_per_corpus_heads_take_only_their_samples():
    a, b = torch.randn(3, 2, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    emotion, head = torch.tensor([1, 3, 0]), torch.tensor([0, 1, 0])
    loss, _ = multitask_loss({"a": a, "b": b}, None, emotion, head, None)
    expected = (F.cross_entropy(a[[0, 2]], emotion[[0, 2]], reduction="sum")
                + F.cross_entropy(b[[1]], emotion[[1]], reduction="sum")) / 3
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.all(a.grad[1] == 0) and torch.all(b.grad[[0, 2]] == 0)


def test_au_f1_on_hand_made_cases():
    truth = np.array([[1, 0, 0], [1, 0, np.nan], [0, 0, 1], [0, 0, np.nan]], dtype=float)
    proba = np.array([[0.9, 0.1, 0.2], [0.2, 0.0, 0.9], [0.7, 0.3, 0.8], [0.1, 0.4, 0.9]])
    scores = au_scores(truth, proba, ["AU1", "AU2", "AU4"])
    # AU1: TP 1, FN 1, FP 1 -> 2/4; AU2 never occurs nor is predicted -> undefined; AU4: labelled rows 0, 2 -> TP 1
    assert scores["f1"]["AU1"] == pytest.approx(0.5)
    assert np.isnan(scores["f1"]["AU2"])
    assert scores["f1"]["AU4"] == pytest.approx(1.0)
    assert scores["mean_f1"] == pytest.approx(0.75)
    assert scores["n"] == {"AU1": 4, "AU2": 4, "AU4": 2} and scores["positives"]["AU1"] == 2
    assert au_scores(np.zeros((2, 1)), np.ones((2, 1)), ["AU9"])["f1"]["AU9"] == 0.0
    with pytest.raises(ConfigError, match="one column per AU"):
        au_scores(truth, proba[:, :2], ["AU1", "AU2", "AU4"])


def test_both_heads_learn_a_small_synthetic_task():
    X, y, au = toy_task()
    au[::2] = np.nan  # half the samples without AU labels
    y_masked = np.where(np.arange(len(y)) % 3 == 0, -1, y)  # a third without an emotion label
    model = classifier(steps=80).fit(X, y_masked, au)
    X_test, y_test, au_test = toy_task(96, seed=1)
    assert model.score(X_test, y_test) > 0.8
    assert model.au_score(X_test, au_test) > 0.8
    assert model.predict_proba(X_test).shape == (96, 3) and model.predict_au(X_test).shape == (96, 2)
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]


def test_same_seed_same_weights_and_another_seed_others():
    X, y, au = toy_task(64)
    first, second = classifier(steps=12).fit(X, y, au), classifier(steps=12).fit(X, y, au)
    assert all(torch.equal(a, b) for a, b in zip(first.net_.state_dict().values(), second.net_.state_dict().values()))
    other = MultiTaskClassifier(get_profile("smoke", batch_size=32, seed=1), width=4, steps=12, au_names=AUS)
    other.fit(X, y, au)
    assert not torch.equal(first.net_.stem[0].weight, other.net_.stem[0].weight)


class Interrupt(Exception):
    pass


def test_resume_after_a_kill_ends_exactly_where_an_uninterrupted_run_ends(tmp_path):
    X, y, au = toy_task(96)
    straight = classifier().fit(X, y, au)

    def kill_at_20(record):
        if record["step"] == 20:
            raise Interrupt

    path = tmp_path / "fit.pt"
    with pytest.raises(Interrupt):
        classifier().fit(X, y, au, checkpoint_path=path, callback=kill_at_20)
    seen = []
    resumed = classifier().fit(X, y, au, checkpoint_path=path, callback=lambda r: seen.append(r["step"]))
    assert seen == [30, 40]
    for name, tensor in straight.net_.state_dict().items():
        assert torch.equal(resumed.net_.state_dict()[name], tensor), name
    assert [r["loss"] for r in resumed.history_] == [r["loss"] for r in straight.history_]
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))
    with pytest.raises(MtlError, match="checkpoint of a different run"):
        classifier(lr=0.01).fit(X, y, au, checkpoint_path=path)


def test_two_corpora_with_different_class_sets_get_two_heads():
    X, y, au = toy_task(96)
    corpus = np.where(np.arange(96) < 48, "savee", "enterface")
    labels = np.where(corpus == "savee", y, y % 2)
    model = classifier(steps=10).fit(X, labels, au, corpus=corpus)
    assert model.heads_ == {"enterface": 2, "savee": 3}
    assert model.predict_proba(X, "enterface").shape == (96, 2)
    with pytest.raises(MtlError, match="no emotion head 'emodb'"):
        model.predict(X, "emodb")


@pytest.mark.parametrize("y, au, tasks, message", [
    (None, "ok", "both", "no sample has an emotion label"),
    ("none", "ok", "emotion", "no sample has an emotion label"),
    ("ok", None, "both", "no sample has an AU label"),
    ("ok", "nan", "au", "no sample has an AU label"),
    ("ok", "intensity", "both", "AU labels must be 0 .absent., 1 .present. or NaN"),
    ("ok", "ok", "neither", "tasks must be one of both, emotion, au"),
])
def test_bad_labels_get_clear_errors(y, au, tasks, message):
    X, labels, aus = toy_task(16)
    y_value = {"ok": labels, "none": np.full(16, -1), None: None}[y]
    au_value = {"ok": aus, None: None, "nan": np.full_like(aus, np.nan), "intensity": aus * 0.7}[au]
    with pytest.raises(MtlError, match=message):
        classifier(tasks=tasks).fit(X, y_value, au_value)


def test_an_au_only_model_has_no_emotion_head():
    X, _, au = toy_task(32)
    model = classifier(tasks="au", steps=4).fit(X, None, au)
    assert model.predict_au_proba(X).shape == (32, 2)
    with pytest.raises(MtlError, match="no emotion head"):
        model.predict(X)


def test_network_default_size_and_output_shapes():
    net = ResidualNet({"savee": 6}, 13)
    emotions, aus = net(torch.zeros(2, 64 * 64 * 3))
    assert emotions["savee"].shape == (2, 6) and aus.shape == (2, 13)
    assert 70_000 < sum(p.numel() for p in net.parameters()) < 90_000  # the docstring says about 79,000


def test_balancing_weights_count_rare_positives_more():
    from mtl.multitask.loss import balancing_weights

    au = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, float("nan"), 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(balancing_weights(au).numpy(), [3.0, 20.0, 1.0])
    logits = torch.zeros(4, 3)
    weighted, _ = multitask_loss({}, logits, torch.full((4,), -1), torch.zeros(4, dtype=torch.long), au,
                                 tasks="au", au_pos_weight=balancing_weights(au))
    plain, _ = multitask_loss({}, logits, torch.full((4,), -1), torch.zeros(4, dtype=torch.long), au, tasks="au")
    assert weighted > plain

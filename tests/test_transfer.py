"""Source training, transfer, scratch and fine-tuning through PathNetClassifier; saved models."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.pathnet import (BadArgumentError, PathNetClassifier, SourceModel, StateFileError, active_modules,
                         frozen_modules, train_source)


def related_tasks(seed: int = 0, dim: int = 192):
    """Source and target share class structure: target classes are shifted, noisier source clusters."""
    centres = np.random.default_rng(42).normal(size=(5, dim)).astype(np.float32)

    def draw(n, classes, shift, rng_seed):
        rng = np.random.default_rng(rng_seed)
        y = rng.integers(0, classes, n)
        return (centres[(y + shift) % 5] + 1.0 * rng.normal(size=(n, dim))).astype(np.float32), y

    return draw(300, 4, 0, seed), draw(120, 3, 1, seed + 1), draw(150, 3, 1, seed + 2)


def small_config(**changes):
    values = dict(input_shape=(8, 8, 3), n_modules=6, units=8, max_active=2, population=5, generations=6,
                  steps_per_pathway=None, lr=0.1, checkpoint_every=2, eval_every=2, seed=3)
    values.update(changes)
    return get_profile("smoke", **values)


@pytest.fixture(scope="module")
def data():
    return related_tasks()


@pytest.fixture(scope="module")
def source(data):
    (X_src, y_src), _, _ = data
    return train_source(X_src, y_src, small_config(), task="source")


def test_source_training(source):
    assert source.n_classes == 4 and source.best_genotype.shape == (3, 2)
    assert len(source.history) == 6 and source.best_fitness > 0.8


def test_transfer_freezes_the_source_pathway_and_reinitialises_the_rest(data, source):
    _, (X, y), (X_val, y_val) = data
    config = small_config(momentum=0.9, weight_decay=1e-3)
    source_state = {k: v.clone() for k, v in source.net.state_dict().items()}
    clf = PathNetClassifier(config, method="transfer", source=source).fit(X, y, X_val, y_val)
    frozen = frozen_modules(source.best_genotype, source.config)
    assert clf.frozen_ == [layer.tolist() for layer in frozen]
    for layer in range(config.n_layers):
        kept = torch.as_tensor(frozen[layer])
        others = torch.as_tensor(np.setdiff1d(np.arange(config.n_modules), frozen[layer]))
        assert torch.equal(clf.net_.weight(layer)[kept], source_state[f"weight{layer}"][kept])
        assert torch.equal(clf.net_.bias(layer)[kept], source_state[f"bias{layer}"][kept])
        assert not torch.equal(clf.net_.weight(layer)[others], source_state[f"weight{layer}"][others])
    assert list(clf.net_.heads) == ["target"] and clf.net_.heads["target"].out_features == 3
    # the source model is untouched and still usable for other folds
    assert all(torch.equal(source.net.state_dict()[k], v) for k, v in source_state.items())
    # every target pathway ran with the frozen modules active
    for record in clf.history_:
        for genotype in record["genotypes"]:
            layers = active_modules(genotype, config, frozen)
            assert all(np.array_equal(fixed, f) for (_, fixed), f in zip(layers, frozen))
    assert clf.score(X_val, y_val) > 0.6
    proba = clf.predict_proba(X_val)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(1), 1)
    assert clf.predict(X_val.reshape(-1, 8, 8, 3)).dtype == np.int64


def test_frozen_counts_toward_n_limits_the_layer(data, source):
    _, (X, y), _ = data
    config = small_config(frozen_counts_toward_n=True, generations=3)
    clf = PathNetClassifier(config, method="transfer", source=source).fit(X, y)
    for record in clf.history_:
        for genotype in record["genotypes"]:
            for evolving, fixed in active_modules(genotype, config, clf.frozen_):
                assert len(evolving) + len(fixed) <= config.max_active


def test_scratch_ignores_the_source(data, source):
    _, (X, y), (X_val, y_val) = data
    config = small_config()
    with_source = PathNetClassifier(config, method="scratch", source=source).fit(X, y)
    without = PathNetClassifier(config, method="scratch").fit(X, y)
    np.testing.assert_array_equal(with_source.best_genotype_, without.best_genotype_)
    assert with_source.frozen_ is None and with_source.score(X_val, y_val) > 0.5


def test_finetune_trains_the_source_pathway_only(data, source):
    _, (X, y), (X_val, y_val) = data
    config = small_config()
    clf = PathNetClassifier(config, method="finetune", source=source).fit(X, y, X_val, y_val)
    np.testing.assert_array_equal(clf.best_genotype_, source.best_genotype)
    assert clf.frozen_ is None and clf.result_ is None
    frame = clf.history_.to_frame()
    steps = config.tournament * config.steps_for(len(X))
    assert list(frame["steps"]) == [g * steps for g in range(1, 7)]
    assert frame["val_accuracy"].notna().sum() == 3
    for layer, row in enumerate(source.best_genotype):
        used = np.unique(row)
        unused = np.setdiff1d(np.arange(config.n_modules), used)
        assert not torch.equal(clf.net_.weight(layer)[used], source.net.weight(layer)[used])
        assert torch.equal(clf.net_.weight(layer)[unused], source.net.weight(layer)[unused])


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_finetune_resume_with_momentum_is_exact(data, source, tmp_path, dropout):
    _, (X, y), _ = data
    config = small_config(momentum=0.9, generations=5, dropout=dropout)
    straight = PathNetClassifier(config, method="finetune", source=source).fit(X, y)

    def stop(record):
        if record["generation"] == 3:
            raise Interrupt

    path = tmp_path / "ft.pt"
    with pytest.raises(Interrupt):
        PathNetClassifier(config, method="finetune", source=source).fit(X, y, checkpoint_path=path, callback=stop)
    resumed = PathNetClassifier(config, method="finetune", source=source).fit(X, y, checkpoint_path=path)
    assert [r["best_fitness"] for r in resumed.history_] == [r["best_fitness"] for r in straight.history_]
    assert all(torch.equal(resumed.net_.state_dict()[k], v) for k, v in straight.net_.state_dict().items())


def test_transfer_resume_is_exact(data, source, tmp_path):
    _, (X, y), _ = data
    config = small_config(generations=5)
    straight = PathNetClassifier(config, method="transfer", source=source).fit(X, y)
    path = tmp_path / "tr.pt"

    def stop(record):
        if record["generation"] == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        PathNetClassifier(config, method="transfer", source=source).fit(X, y, checkpoint_path=path, callback=stop)
    resumed = PathNetClassifier(config, method="transfer", source=source).fit(X, y, checkpoint_path=path)
    np.testing.assert_array_equal(resumed.result_.population, straight.result_.population)
    assert [r["fitness"] for r in resumed.history_] == [r["fitness"] for r in straight.history_]
    assert all(torch.equal(resumed.net_.state_dict()[k], v) for k, v in straight.net_.state_dict().items())


def test_source_model_round_trip_is_safe(source, tmp_path):
    path = tmp_path / "source.pt"
    source.save(path)
    loaded = SourceModel.load(path)
    np.testing.assert_array_equal(loaded.best_genotype, source.best_genotype)
    assert loaded.config == source.config and loaded.n_classes == 4 and loaded.task == "source"
    assert [r["fitness"] for r in loaded.history] == [r["fitness"] for r in source.history]
    assert all(torch.equal(loaded.net.state_dict()[k], v) for k, v in source.net.state_dict().items())

    class Sneaky:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "mtl.pathnet.source/1", "payload": Sneaky()}, protocol=2))
    with pytest.raises(StateFileError, match="not a readable state file"):
        SourceModel.load(evil)
    with pytest.raises(StateFileError, match="expected a 'mtl.pathnet.source/1' file"):
        torch.save({"format": "other"}, tmp_path / "other.pt")
        SourceModel.load(tmp_path / "other.pt")


def test_classifier_argument_errors(data, source):
    _, (X, y), _ = data
    with pytest.raises(ConfigError, match="method must be one of"):
        PathNetClassifier(small_config(), method="magic").fit(X, y)
    with pytest.raises(ConfigError, match="needs source=SourceModel"):
        PathNetClassifier(small_config(), method="transfer").fit(X, y)
    with pytest.raises(ConfigError, match="architecture: n_modules=7"):
        PathNetClassifier(small_config(n_modules=7), method="transfer", source=source).fit(X, y)
    with pytest.raises(BadArgumentError, match="not fitted"):
        PathNetClassifier(small_config()).predict(X)
    with pytest.raises(BadArgumentError, match=r"expected samples of shape \(8, 8, 3\)"):
        PathNetClassifier(small_config()).fit(X[:, :100], y)
    with pytest.raises(BadArgumentError, match="labels must be in"):
        PathNetClassifier(small_config(), n_classes=2).fit(X, y)
    clf = PathNetClassifier(small_config(generations=1), n_classes=5).fit(X, y)
    assert clf.n_classes_ == 5 and clf.predict_proba(X).shape == (120, 5)


def test_conv_transfer_keeps_the_frozen_modules(data):
    (X_src, y_src), (X, y), _ = data
    config = small_config(module_type="conv", generations=3, momentum=0.9, weight_decay=1e-3)
    conv_source = train_source(X_src, y_src, config)
    clf = PathNetClassifier(config, method="transfer", source=conv_source).fit(X, y)
    for layer, kept in enumerate(clf.frozen_):
        assert torch.equal(clf.net_.weight(layer)[kept], conv_source.net.weight(layer)[kept])
    assert clf.predict_proba(X).shape == (120, 3)

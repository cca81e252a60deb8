"""Options beyond the paper (Config fields off by default): a held-out fitness, functionals input, SpecAugment
masks, dropout on module outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl.cells import make_cell
from mtl.config import LATER_FIELDS, PAPER, get_profile
from mtl.errors import ConfigError
from mtl.pathnet import PathNet, evolve
from mtl.pathnet.checks import BadArgumentError
from mtl.pathnet.evolution import fitness_split


def _config(**changes):
    return get_profile("smoke", input_shape=(8, 8, 3), n_modules=6, units=8, max_active=2, population=5,
                       generations=8, steps_per_pathway=None, lr=0.05, checkpoint_every=0, seed=5, **changes)


def _task(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (np.eye(3)[y] @ rng.normal(size=(3, 192)) * 2 + rng.normal(size=(n, 192))).astype(np.float32), y


def test_new_fields_are_off_by_default_and_leave_keys_and_records_as_they_were():
    assert (PAPER.fitness_on, PAPER.fitness_fraction) == ("train", 0.2)
    assert not LATER_FIELDS & set(PAPER.recorded_dict())  # at their defaults, a record does not hold them
    changed = PAPER.replace(fitness_on="validation")
    assert changed.recorded_dict()["fitness_on"] == "validation"
    plain = make_cell("x", "scratch", "emodb", config=get_profile("smoke"), data="synthetic")
    other = make_cell("x", "scratch", "emodb", config=get_profile("smoke", fitness_on="validation"), data="synthetic")
    assert plain.key != other.key
    with pytest.raises(ConfigError, match="fitness_on must be one of"):
        PAPER.replace(fitness_on="test")
    with pytest.raises(ConfigError, match="fitness_fraction"):
        PAPER.replace(fitness_fraction=1.0)


def test_the_fitness_split_is_stratified_disjoint_and_off_for_the_paper():
    X, y = (torch.from_numpy(a) for a in _task())
    same = fitness_split(X, y, _config(), "task")
    assert all(a is b for a, b in zip(same, (X, y, X, y)))
    X_train, y_train, X_fit, y_fit = fitness_split(X, y, _config(fitness_on="validation"), "task")
    assert len(y_train) + len(y_fit) == len(y) and len(y_fit) == pytest.approx(0.2 * len(y), abs=3)
    assert set(y_fit.tolist()) == set(y.tolist())
    rows = {tuple(r) for r in X_train.numpy().round(5)}
    assert not any(tuple(r) in rows for r in X_fit.numpy().round(5))
    with pytest.raises(BadArgumentError, match="nothing to"):
        fitness_split(X[:3], torch.tensor([0, 1, 2]), _config(fitness_on="validation"), "task")


def test_an_evolution_with_a_held_out_fitness_runs_and_keeps_the_papers_run_unchanged():
    X, y = _task()

    def run(config):
        net = PathNet(config)
        net.add_head("task", 3)
        return evolve(net, X, y, config)

    paper, again = run(_config()), run(_config())
    assert [r["fitness"] for r in paper.history] == [r["fitness"] for r in again.history]
    held = run(_config(fitness_on="validation"))
    assert len(held.history) == 8 and 0 <= held.best_fitness <= 1
    assert [r["picked"] for r in held.history] == [r["picked"] for r in paper.history]  # the GA's stream is the same


def test_pathnet_reads_utterance_functionals_when_asked(tmp_path, monkeypatch):
    from mtl.config import FUNCTIONALS_SHAPE
    from mtl.evaluation import recording_keys
    from mtl.runner import outer_split, run_cell

    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")
    with pytest.raises(ConfigError, match="needs input_shape=\\[1, 1, 96\\]"):
        get_profile("smoke", input_kind="functionals")
    config = get_profile("smoke", input_kind="functionals", input_shape=FUNCTIONALS_SHAPE)
    cell = make_cell("fx", "scratch", "emodb", config=config, classes="target", protocol="utterance",
                     data="synthetic")
    split = outer_split(cell)
    assert split.features.X.shape[1:] == FUNCTIONALS_SHAPE
    assert len(set(recording_keys(split.samples))) == len(split.samples)  # one sample per recording
    record = run_cell(cell)
    assert record["n_test"] == len(split.held_out) and record["config"]["input_kind"] == "functionals"


def test_spec_masks_zero_bands_of_frames_and_mel_bands_and_leave_the_ga_stream_alone():
    from mtl.pathnet.augment import mask_batch, masking

    config = _config(time_masks=2, freq_masks=1, mask_width=3)
    assert masking(config) and not masking(_config())
    x = torch.ones(50, 8 * 8 * 3)
    mask_batch(x, config, torch.Generator().manual_seed(0))
    images = x.view(50, 8, 8, 3)
    zero_columns = (images == 0).all(dim=3).all(dim=1).sum(dim=1)  # frames masked in every Mel band
    zero_rows = (images == 0).all(dim=3).all(dim=2).sum(dim=1)
    assert ((zero_columns >= 1) & (zero_columns <= 6)).all() and ((zero_rows >= 1) & (zero_rows <= 3)).all()
    assert torch.equal((images == 0).all(dim=3), (images == 0).any(dim=3))  # every channel alike
    with pytest.raises(ConfigError, match="need input_kind='segments'"):
        get_profile("smoke", time_masks=1, input_kind="functionals", input_shape=(1, 1, 96))
    X, y = _task()

    def run(config):
        net = PathNet(config)
        net.add_head("task", 3)
        return evolve(net, X, y, config)

    masked, plain = run(config), run(_config())
    assert [r["picked"] for r in masked.history] == [r["picked"] for r in plain.history]
    assert [r["fitness"] for r in masked.history] != [r["fitness"] for r in plain.history]


def test_dropout_on_module_outputs_changes_training_only_and_leaves_the_ga_stream_alone():
    assert PAPER.dropout == 0.0 and "dropout" not in PAPER.recorded_dict()
    assert PAPER.replace(dropout=0.2).recorded_dict()["dropout"] == 0.2
    with pytest.raises(ConfigError, match="dropout must be in"):
        PAPER.replace(dropout=1.0)
    X, y = _task()

    def run(config):
        net = PathNet(config)
        net.add_head("task", 3)
        return evolve(net, X, y, config), net

    (dropped, net), (again, _), (plain, _) = run(_config(dropout=0.3)), run(_config(dropout=0.3)), run(_config())
    assert [r["fitness"] for r in dropped.history] == [r["fitness"] for r in again.history]  # seeded masks
    assert [r["picked"] for r in dropped.history] == [r["picked"] for r in plain.history]
    assert [r["fitness"] for r in dropped.history] != [r["fitness"] for r in plain.history]
    best = dropped.population[int(np.nanargmax(dropped.fitness))]
    scores = [net.accuracy(torch.as_tensor(X), torch.as_tensor(y), best, "task") for _ in range(2)]
    assert scores[0] == scores[1]  # evaluation sees no dropout

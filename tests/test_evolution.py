"""Microbial GA: tournaments, learning, determinism, checkpoint/resume, history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl.config import get_profile
from mtl.pathnet import BatchStream, PathNet, StateFileError, best_individual, evolve, random_genotype
from mtl.pathnet.checks import BadArgumentError, numpy_generator


def toy_task(n: int, seed: int, n_classes: int = 3, dim: int = 192, spread: float = 1.0):
    """Gaussian clusters around fixed class centres: learnable in a few passes."""
    centres = np.random.default_rng(1234).normal(size=(n_classes, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    return (centres[y] + spread * rng.normal(size=(n, dim))).astype(np.float32), y


def small_config(**changes):
    values = dict(input_shape=(8, 8, 3), n_modules=6, units=8, max_active=2, population=5, generations=6,
                  steps_per_pathway=None, lr=0.05, checkpoint_every=2, eval_every=2, seed=7)
    values.update(changes)
    return get_profile("smoke", **values)


def new_net(config, n_classes=3, task="task"):
    net = PathNet(config)
    net.add_head(task, n_classes)
    return net


def test_loser_is_overwritten_by_the_winner():
    config = small_config(mutation_rate=0.0, generations=8)
    X, y = toy_task(150, 0)
    result = evolve(new_net(config), X, y, config)
    # replay the tournaments from the initial population: without mutation a loser becomes a copy of the winner
    rng = numpy_generator(config.seed, "evolve", "task")
    population = np.stack([random_genotype(config, rng) for _ in range(config.population)])
    for record in result.history:
        picked = record["picked"]
        assert len(set(picked)) == config.tournament
        assert record["genotypes"] == population[picked].tolist()
        position = picked.index(record["winner"])
        assert record["fitness"][position] == max(record["fitness"])
        for loser in picked:
            population[loser] = population[record["winner"]]
    np.testing.assert_array_equal(result.population, population)


def test_mutation_applies_to_losers_only():
    config = small_config(mutation_rate=1.0, mutation_range=1, generations=5)
    X, y = toy_task(100, 0)
    result = evolve(new_net(config), X, y, config)
    last = result.history[-1]
    loser = next(i for i in last["picked"] if i != last["winner"])
    winner_genotype = np.array(last["genotypes"][last["picked"].index(last["winner"])])
    assert np.abs(result.population[loser] - winner_genotype).max() <= 1
    np.testing.assert_array_equal(result.population[last["winner"]], winner_genotype)
    assert np.isnan(result.fitness[loser]) and not np.isnan(result.fitness[last["winner"]])


def test_evolution_learns_a_separable_task():
    config = small_config(generations=12, eval_every=4)
    X, y = toy_task(300, 1)
    X_val, y_val = toy_task(200, 2)
    net = new_net(config)
    result = evolve(net, X, y, config, X_val=X_val, y_val=y_val)
    assert result.best_fitness > 0.9
    assert net.accuracy(torch.from_numpy(X_val), torch.from_numpy(y_val), result.best_genotype, "task") > 0.9
    frame = result.history.to_frame()
    assert list(frame["generation"]) == list(range(1, 13))
    assert frame["val_accuracy"].notna().tolist() == [g % 4 == 0 for g in range(1, 13)]
    steps = config.steps_for(300)
    assert list(frame["steps"]) == [g * config.tournament * steps for g in range(1, 13)]
    assert frame["val_accuracy"].iloc[-1] > 0.9


def test_same_seed_gives_identical_runs():
    config = small_config(momentum=0.5)
    X, y = toy_task(120, 3)
    first, second = new_net(config), new_net(config)
    a, b = evolve(first, X, y, config), evolve(second, X, y, config)
    np.testing.assert_array_equal(a.population, b.population)
    np.testing.assert_array_equal(a.fitness, b.fitness)
    assert [r["fitness"] for r in a.history] == [r["fitness"] for r in b.history]
    assert all(torch.equal(first.state_dict()[k], second.state_dict()[k]) for k in first.state_dict())
    other = evolve(new_net(config.replace(seed=8)), X, y, config.replace(seed=8))
    assert [r["picked"] for r in other.history] != [r["picked"] for r in a.history]


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_resume_ends_exactly_where_an_uninterrupted_run_ends(tmp_path, dropout):
    config = small_config(generations=7, checkpoint_every=2, dropout=dropout)
    X, y = toy_task(130, 4)
    X_val, y_val = toy_task(40, 5)
    straight_net = new_net(config)
    straight = evolve(straight_net, X, y, config, X_val=X_val, y_val=y_val)

    def stop_after_five(record):
        if record["generation"] == 5:
            raise Interrupt

    path = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        evolve(new_net(config), X, y, config, X_val=X_val, y_val=y_val, checkpoint_path=path, callback=stop_after_five)
    resumed_net = new_net(config.replace(seed=99))  # weights come from the checkpoint (generation 4)
    seen = []
    resumed = evolve(resumed_net, X, y, config, X_val=X_val, y_val=y_val, checkpoint_path=path,
                     callback=lambda record: seen.append(record["generation"]))
    assert seen == [5, 6, 7]
    np.testing.assert_array_equal(resumed.population, straight.population)
    np.testing.assert_array_equal(resumed.fitness, straight.fitness)
    for key in ("picked", "genotypes", "fitness", "winner", "best_genotype", "val_accuracy"):
        assert [r[key] for r in resumed.history] == [r[key] for r in straight.history], key
    assert all(torch.equal(resumed_net.state_dict()[k], straight_net.state_dict()[k])
               for k in straight_net.state_dict())
    # a finished checkpoint is a finished run
    again = evolve(new_net(config), X, y, config, X_val=X_val, y_val=y_val, checkpoint_path=path)
    np.testing.assert_array_equal(again.population, straight.population)
    assert len(again.history) == 7


def test_checkpoint_of_another_run_is_refused(tmp_path):
    config = small_config(generations=2)
    X, y = toy_task(60, 6)
    path = tmp_path / "run.pt"
    evolve(new_net(config), X, y, config, checkpoint_path=path)
    with pytest.raises(StateFileError, match=r"different run \(differs in: config, config.lr\)"):
        evolve(new_net(config), X, y, config.replace(lr=0.1), checkpoint_path=path)
    with pytest.raises(StateFileError, match="differs in: data"):
        evolve(new_net(config), X[:50], y[:50], config, checkpoint_path=path)
    # checkpoints are tensors + JSON only
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"format", "meta", "tensors", "digest", "nonfinite"}


def test_no_generation_and_tie_rules():
    config = small_config(generations=0)
    X, y = toy_task(30, 7)
    result = evolve(new_net(config), X, y, config)
    assert len(result.history) == 0 and result.best_index == 0 and np.isnan(result.best_fitness)
    assert best_individual(np.array([np.nan, 0.5, 0.7, 0.7])) == 2


def test_batch_stream_sees_every_sample_once_per_pass():
    stream = BatchStream(torch.arange(10.0)[:, None], torch.arange(10), 4, torch.Generator().manual_seed(0))
    batches = [stream.next_indices() for _ in range(6)]
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    assert sorted(torch.cat(batches[:3]).tolist()) == list(range(10))
    assert sorted(torch.cat(batches[3:]).tolist()) == list(range(10))
    x, y = stream.next()
    assert x[:, 0].long().tolist() == y.tolist() == stream.order[:4].tolist()


def test_bad_arguments_to_evolve():
    config = small_config(generations=1)
    X, y = toy_task(30, 8)
    with pytest.raises(BadArgumentError, match=r"y: labels must be in \[0, 2\]"):
        evolve(new_net(config), X, y + 1, config)
    with pytest.raises(BadArgumentError, match="X: no samples"):
        evolve(new_net(config), X[:0], y[:0], config)
    with pytest.raises(BadArgumentError, match="give both or neither"):
        evolve(new_net(config), X, y, config, X_val=X)
    with pytest.raises(BadArgumentError, match="no head for it"):
        evolve(new_net(config), X, y, config, task="other")
    with pytest.raises(ValueError, match="does not match the network's architecture: units=9"):
        evolve(new_net(config), X, y, config.replace(units=9))


def test_conv_modules_evolve_and_learn():
    config = small_config(module_type="conv", generations=10, lr=0.1)
    X, y = toy_task(200, 9)
    X_val, y_val = toy_task(100, 10)
    net = new_net(config)
    result = evolve(net, X.reshape(-1, 8, 8, 3), y, config, X_val=X_val, y_val=y_val)
    assert result.history[-1]["val_accuracy"] > 0.8
    again = evolve(new_net(config), X, y, config, X_val=X_val, y_val=y_val)
    assert [r["fitness"] for r in again.history] == [r["fitness"] for r in result.history]

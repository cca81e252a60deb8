"""Genotypes: random draws, mutation (clip/wrap), active-module semantics, checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl.config import Config
from mtl.pathnet import BadArgumentError, active_modules, check_frozen, check_genotype, mutate, random_genotype
from mtl.pathnet.genotype import frozen_modules


@st.composite
def configs(draw, **fixed):
    n_modules = draw(st.integers(1, 25))
    values = dict(n_layers=draw(st.integers(1, 5)), n_modules=n_modules,
                  max_active=draw(st.integers(1, n_modules)), mutation_range=draw(st.integers(1, 4)),
                  mutation_rate=draw(st.sampled_from([None, 0.0, 0.5, 1.0])),
                  boundary=draw(st.sampled_from(["clip", "wrap"])),
                  frozen_counts_toward_n=draw(st.booleans()))
    values.update(fixed)
    return Config(**values)


@settings(max_examples=60, deadline=None)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_random_genotype_has_shape_and_range(config, seed):
    genotype = random_genotype(config, np.random.default_rng(seed))
    assert genotype.shape == (config.n_layers, config.max_active)
    assert genotype.dtype == np.int64
    assert genotype.min() >= 0 and genotype.max() < config.n_modules


@settings(max_examples=100, deadline=None)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_mutation_keeps_shape_range_and_step_size(config, seed):
    rng = np.random.default_rng(seed)
    genotype = random_genotype(config, rng)
    before = genotype.copy()
    mutated = mutate(genotype, config, rng)
    np.testing.assert_array_equal(genotype, before)  # the input is not modified
    assert mutated.shape == genotype.shape and mutated.dtype == np.int64
    assert mutated.min() >= 0 and mutated.max() < config.n_modules
    step = mutated - genotype
    if config.boundary == "clip":
        assert np.all(np.abs(step) <= config.mutation_range)
    else:  # a wrapped step is a step of at most mutation_range modulo M
        circular = np.minimum(np.mod(step, config.n_modules), np.mod(-step, config.n_modules))
        assert np.all(circular <= config.mutation_range)
    if config.per_gene_mutation_rate == 0:
        np.testing.assert_array_equal(mutated, genotype)


def test_clip_and_wrap_at_the_boundaries():
    genotype = np.array([[0, 9]])
    for boundary, allowed_low, allowed_high in [("clip", {0, 1, 2}, {7, 8, 9}), ("wrap", {8, 9, 0, 1, 2}, {7, 8, 9, 0, 1})]:
        config = Config(n_layers=1, n_modules=10, max_active=2, mutation_rate=1.0, boundary=boundary)
        rng = np.random.default_rng(0)
        seen = np.array([mutate(genotype, config, rng) for _ in range(400)])
        assert set(seen[:, 0, 0].tolist()) == allowed_low
        assert set(seen[:, 0, 1].tolist()) == allowed_high


def test_empirical_mutation_rate_is_one_over_n_l():
    config = Config(n_layers=3, n_modules=20, max_active=4, boundary="wrap")  # p = 1/12
    rng = np.random.default_rng(1)
    genotype = random_genotype(config, rng)
    trials = 4000
    changed = sum(int(np.sum(mutate(genotype, config, rng) != genotype)) for _ in range(trials))
    genes = trials * genotype.size
    # a mutating gene moves unless its step is 0 (1 of 2*range+1 steps); wrap never stalls when M > 2*range
    expected = config.per_gene_mutation_rate * (2 * config.mutation_range) / (2 * config.mutation_range + 1)
    sigma = np.sqrt(expected * (1 - expected) / genes)
    assert config.per_gene_mutation_rate == pytest.approx(1 / 12)
    assert abs(changed / genes - expected) < 4 * sigma


@settings(max_examples=100, deadline=None)
@given(config=configs(), seed=st.integers(0, 2**32 - 1), n_frozen=st.integers(0, 4))
def test_active_modules_are_distinct_genes_beside_frozen(config, seed, n_frozen):
    rng = np.random.default_rng(seed)
    genotype = random_genotype(config, rng)
    limit = config.max_active if config.frozen_counts_toward_n else config.n_modules
    frozen = [np.sort(rng.choice(config.n_modules, size=min(n_frozen, limit), replace=False))
              for _ in range(config.n_layers)]
    layers = active_modules(genotype, config, frozen)
    for row, fixed_given, (evolving, fixed) in zip(genotype, frozen, layers):
        np.testing.assert_array_equal(fixed, fixed_given)
        assert len(np.intersect1d(evolving, fixed)) == 0
        assert len(np.unique(evolving)) == len(evolving)
        assert set(evolving.tolist()) <= set(row.tolist())
        if config.frozen_counts_toward_n:
            assert len(evolving) + len(fixed) <= config.max_active
            # genes fill free places left to right: exactly the first distinct new genes are active
            new = list(dict.fromkeys(g for g in row.tolist() if g not in fixed))
            assert sorted(new[:config.max_active - len(fixed)]) == evolving.tolist()
        else:
            assert set(evolving.tolist()) == set(row.tolist()) - set(fixed.tolist())
    without = active_modules(genotype, config)
    for row, (evolving, fixed) in zip(genotype, without):
        assert evolving.tolist() == sorted(set(row.tolist())) and len(fixed) == 0


def test_frozen_modules_are_the_distinct_genes():
    config = Config(n_layers=2, n_modules=6, max_active=3)
    frozen = frozen_modules([[5, 1, 5], [0, 0, 0]], config)
    assert [layer.tolist() for layer in frozen] == [[1, 5], [0]]


@pytest.mark.parametrize("genotype, message", [
    (np.zeros((3, 3), dtype=int), r"expected an \(L, N\) = \(3, 4\) integer array, got shape \(3, 3\)"),
    (np.zeros((3, 4)), "genes must be integers, got dtype float64"),
    (np.full((3, 4), 20), r"module indices in \[0, 19\] \(M=20\), got values from 20 to 20"),
    (np.full((3, 4), -1), r"got values from -1 to -1"),
])
def test_bad_genotypes_are_named(genotype, message):
    with pytest.raises(BadArgumentError, match=message):
        check_genotype(genotype, Config())


def test_bad_frozen_sets_are_named():
    config = Config(n_layers=2, n_modules=5, max_active=2, frozen_counts_toward_n=True)
    with pytest.raises(BadArgumentError, match="one list of module indices per layer"):
        check_frozen([[0]], config)
    with pytest.raises(BadArgumentError, match="lists a module twice"):
        check_frozen([[0, 0], [1]], config)
    with pytest.raises(BadArgumentError, match="outside"):
        check_frozen([[0], [7]], config)
    with pytest.raises(BadArgumentError, match="more than N=2"):
        check_frozen([[0, 1, 2], [1]], config)

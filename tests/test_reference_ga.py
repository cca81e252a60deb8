"""The genetic algorithm's diagnostics (mtl.pathnet.ga_diagnostics) and the cells that record them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mtl.cells import CellKind, make_cell
from mtl.config import get_profile
from mtl.io import read_json
from mtl.pathnet import PathNet, evolve, ga_diagnostics
from mtl.records import RECORD_FIELDS, validate_record
from mtl.reference import DiagnosedCell
from mtl.sweep import run_sweep


@pytest.fixture(autouse=True)
def own_results(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-real-data"))
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")


def _generation(g, fitness, genotypes, best_fitness, best_genotype):
    return {"generation": g, "picked": [0, 1], "genotypes": genotypes, "fitness": fitness, "winner": 0,
            "best_fitness": best_fitness, "best_genotype": best_genotype}


A, B, C = [[0, 1], [2, 3]], [[0, 1], [2, 4]], [[5, 6], [7, 8]]


def test_diagnostics_of_a_hand_made_history():
    history = [_generation(1, [0.5, 0.4], [A, C], 0.5, A),
               _generation(2, [1.0, 0.6], [A, B], 1.0, A),  # the first perfect generation
               _generation(3, [1.0, 1.0], [A, B], 1.0, A),  # a tie
               _generation(4, [1.0, 1.0], [A, A], 1.0, B)]  # a tie; the best pathway moved
    found = ga_diagnostics(history)
    assert found["tournaments"] == 4 and found["tie_fraction"] == 0.5
    assert found["first_perfect_generation"] == 2 and found["tie_fraction_after_perfect"] == pytest.approx(2 / 3)
    assert found["best_changes_after_perfect"] == 1
    assert found["best_drift_after_perfect"] == pytest.approx((0 + 2 / 3) / 2)  # layer 2: {2,3} vs {2,4}
    assert found["pick_distance_before_perfect"] == 1.0  # A and C share no module
    assert found["pick_distance_after_perfect"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)


def test_a_run_that_never_reaches_fitness_one_and_fine_tuning_have_their_own_answers():
    never = ga_diagnostics([_generation(1, [0.5, 0.5], [A, B], 0.5, A)])
    assert never["first_perfect_generation"] is None and never["tie_fraction"] == 1.0
    assert never["tie_fraction_after_perfect"] is None and never["best_drift_after_perfect"] is None
    tuning = ga_diagnostics([{"generation": 1, "fitness": [], "winner": None, "best_fitness": 0.9}])
    assert tuning["tournaments"] == 0 and tuning["tie_fraction"] is None


def test_diagnostics_read_an_evolution_without_changing_it():
    config = get_profile("smoke", input_shape=(8, 8, 3), n_modules=6, units=8, max_active=2, population=5,
                         generations=12, steps_per_pathway=None, lr=0.05, checkpoint_every=0, seed=3)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    X = (np.eye(2)[y] @ rng.normal(size=(2, 192)) * 3 + rng.normal(size=(80, 192))).astype(np.float32)

    def run():
        net = PathNet(config)
        net.add_head("task", 2)
        return evolve(net, X, y, config)

    first = run()
    found = first.history.diagnostics()
    assert found["tournaments"] == 12 and 0 <= found["tie_fraction"] <= 1
    again = run()  # the same seed after diagnostics were read: the same run
    assert again.history.to_list() == [dict(r, seconds=s["seconds"], elapsed=s["elapsed"])
                                       for r, s in zip(first.history.to_list(), again.history.to_list())]


def test_diagnosed_cells_record_the_ga_and_the_plain_cells_numbers():
    outer = make_cell("refs-ga", "scratch", "emodb", config=get_profile("smoke"), classes="target",
                      protocol="utterance", data="synthetic")
    cell = DiagnosedCell(outer)
    assert isinstance(cell, CellKind) and cell.key != outer.key and cell.method == "scratch"
    report = run_sweep([outer, cell], scheduler="inline", progress=False)
    assert report.counts == Counter(done=2), report.summary()
    plain, diagnosed = (validate_record(read_json(c.record_path)) for c in (outer, cell))
    assert set(plain) == set(RECORD_FIELDS)  # a plain cell's record is as it was
    assert set(diagnosed) == set(RECORD_FIELDS) | {"stage", "outer_cell_key", "ga"}
    assert diagnosed["metrics"] == plain["metrics"] and diagnosed["outer_cell_key"] == outer.key
    assert diagnosed["ga"]["tournaments"] == outer.config.generations

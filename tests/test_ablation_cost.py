"""What a grid costs (mtl.ablation.cost): SGD steps per cell, totals, and seconds from the committed benchmark."""

from __future__ import annotations

import pytest

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation import cost
from mtl.config import get_profile
from mtl.cells import make_cell
from mtl.paths import project_root


def test_cost_counts_sgd_steps_and_source_models_once():
    paper = get_profile("paper")
    scratch = make_cell("ablation", "scratch", "emodb", config=paper, classes="target", data="synthetic")
    literal = make_cell("ablation", "scratch", "emodb", config=paper.replace(training_budget="literal_epochs"),
                        classes="target", data="synthetic")
    steps = cost.steps_per_cell(scratch, n_train=1712, n_held_out=428)
    assert steps["T"] == 27 and steps["target_steps"] == 200 * 2 * 27  # G x K x ceil(1712 / 64)
    assert steps["target_forward"] == 200 * 2 * 1712 + 20 * 428  # fitness + held-out every 10 generations
    assert steps["source_steps"] == 0 and steps["source_key"] is None
    assert cost.steps_per_cell(literal, n_train=1712, n_held_out=428)["target_steps"] == 27 * steps["target_steps"]

    transfers = [make_cell("ablation", "transfer", "emodb", ("savee",), config=paper, classes="target", fold=f,
                           data="synthetic") for f in range(3)]
    table = cost.estimate_cost([scratch, *transfers], step_seconds={"linear": (0.02, 1e-4)}, n_train=1712,
                               n_held_out=428, n_source=12_800)
    assert table["new_source"].tolist() == [False, True, False, False]
    assert table.loc[1, "source_steps"] == 200 * 2 * 200
    assert table.loc[1, "seconds"] == pytest.approx(table.loc[2, "seconds"] + 200 * 2 * (200 * 0.02 + 12_800 * 1e-4))
    totals = cost.cost_summary(table, workers=2).set_index("method")
    assert totals.loc["all", "cells"] == 4 and totals.loc["all", "source_steps"] == 200 * 2 * 200
    assert totals.loc["all", "steps"] == 4 * 200 * 2 * 27 + 200 * 2 * 200
    assert totals.loc["all", "wall_hours"] == pytest.approx(totals.loc["all", "cpu_hours"] / 2)


def test_step_seconds_are_measured_per_module_type_and_written_with_their_machine(tmp_path):
    config = get_profile("smoke", input_shape=(16, 16, 3), n_modules=4, max_active=2, units=4)
    seconds = cost.measure_step_seconds(config=config, steps=2, n_samples=32)
    assert set(seconds) == {"linear", "conv"}
    assert all(step > 0 and forward > 0 for step, forward in seconds.values())
    path = tmp_path / "step_seconds.json"
    written = cost.write_step_seconds(path, {m: [s, s] for m, s in seconds.items()}, threads=1, steps=2,
                                      note="a test")
    assert cost.read_step_seconds(path) == written
    assert all(cost.step_seconds(written)[m] == pytest.approx(s) for m, s in seconds.items())
    assert {"threads", "machine", "date", "code"} <= set(written)
    assert cost.read_step_seconds(tmp_path / "absent.json") is None
    assert "No step-time benchmark is committed" in cost.step_seconds_source(None)


def test_the_committed_benchmark_gives_seconds_for_every_module_type_at_one_thread():
    benchmark = cost.read_step_seconds(project_root() / cost.STEP_SECONDS_FILE)
    assert benchmark is not None, f"{cost.STEP_SECONDS_FILE} is committed (benchmarks/bench_ablation_steps.py)"
    assert benchmark["threads"] == 1 and set(cost.step_seconds(benchmark)) == {"linear", "conv"}
    assert benchmark["code"]["commit"] and "shared" in benchmark["note"]
    sentence = cost.step_seconds_source(benchmark)
    assert cost.STEP_SECONDS_FILE.as_posix() in sentence and benchmark["date"] in sentence

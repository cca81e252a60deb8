"""The ablation grid (mtl.ablation.grid): factors, one setting's configuration, the cells, on synthetic EMO-DB."""

from __future__ import annotations

import pandas as pd
import pytest

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation import grid
from mtl.ablation.cost import steps_per_cell
from mtl.errors import ConfigError
from mtl.paths import results_dir


def test_grid_lists_every_factor_combination_as_ablation_cells():
    cells = grid.ablation_cells("smoke", data="synthetic", sources=("savee",), seeds=(0,), folds=[0, 1],
                                generations={"literal_epochs": 1})
    assert len(cells) == 3 * 2 * 2 * 2 * 2  # protocols x modules x budgets x methods x folds
    assert len({c.key for c in cells}) == len(cells)
    assert {c.experiment for c in cells} == {"ablation"}
    assert all(c.record_path.parent == results_dir() / "runs" / "ablation" for c in cells)
    factors = pd.DataFrame([grid.cell_factors(c) for c in cells])
    assert factors.groupby(["protocol", "module_type", "training_budget", "method"]).size().eq(2).all()
    assert set(factors.loc[factors["training_budget"] == "literal_epochs", "generations"]) == {1}
    assert set(factors.loc[factors["training_budget"] == "one_pass", "generations"]) == {3}
    transfer = [c for c in cells if c.method == "transfer"]
    assert all(c.sources == ("savee",) and len(c.classes) == 7 for c in transfer)
    assert all(c.config.protocol == c.protocol for c in cells)


def test_both_t_readings_transfer_from_one_one_pass_source_model_by_default():
    kwargs = dict(factors={"method": ["transfer"], "protocol": ["paper"], "module_type": ["linear"]},
                  data="synthetic", sources=("savee",), folds=[0], generations={"literal_epochs": 1})
    shared = grid.ablation_cells("smoke", **kwargs)
    assert [c.config.training_budget for c in shared] == ["one_pass", "literal_epochs"]
    assert len({c.source_key for c in shared}) == 1
    assert all(c.source_training_config.training_budget == "one_pass" for c in shared)
    assert shared[1].source_training_config.generations == shared[0].config.generations
    own = grid.ablation_cells("smoke", source_budget="same", **kwargs)
    assert own[0].key == shared[0].key and own[1].key != shared[1].key
    assert own[1].source_training_config == own[1].config
    with pytest.raises(ConfigError, match="source_budget must be one of"):
        grid.ablation_cells("smoke", source_budget="cheap", **kwargs)


def test_grid_restricts_factors_and_rejects_unknown_ones():
    cells = grid.ablation_cells("smoke", factors={"module_type": "conv", "protocol": ["paper"],
                                                  "method": ["scratch"]}, data="synthetic", folds=[0])
    assert [(c.config.module_type, c.protocol, c.method) for c in cells] == [("conv", "paper", "scratch")] * 2
    with pytest.raises(ConfigError, match="unknown ablation factor 'decision'"):
        grid.ablation_cells("smoke", factors={"decision": ["segment"]}, data="synthetic")
    with pytest.raises(ConfigError, match="factor 'module_type'"):
        grid.ablation_cells("smoke", factors={"module_type": ["lstm"]}, data="synthetic")
    with pytest.raises(ConfigError, match="budget must be one of"):
        grid.ablation_cells("smoke", budget="cheap", data="synthetic")


def test_equal_steps_budget_shortens_literal_epochs_evolution():
    one_setting = {"protocol": ["paper"], "method": ["scratch"], "module_type": ["linear"]}
    cells = grid.ablation_cells("smoke", factors=one_setting, data="synthetic", folds=[0], generations=40,
                                budget="equal_steps", overrides={"steps_per_pathway": None})
    by_budget = {c.config.training_budget: c for c in cells}
    one_pass, literal = by_budget["one_pass"], by_budget["literal_epochs"]
    T = steps_per_cell(one_pass)["T"]
    assert one_pass.config.generations == 40 and literal.config.generations == max(1, round(40 / T))
    steps = {name: steps_per_cell(cell)["target_steps"] for name, cell in by_budget.items()}
    assert steps["literal_epochs"] <= 2 * steps["one_pass"]


def test_overrides_take_config_field_names_and_the_papers_symbols():
    assert grid.ablation_config("smoke", overrides={"S": 6}) == grid.ablation_config("smoke",
                                                                                     overrides={"population": 6})
    with pytest.raises(ConfigError, match="unknown parameter 'population_size'"):
        grid.ablation_config("smoke", overrides={"population_size": 6})

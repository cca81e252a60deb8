"""The chapter's façade (mtl.ablation.chapter): parameters, settings shown without machine paths, the cost table."""

from __future__ import annotations

import pytest

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation import chapter, cost
from mtl.ablation.budget import BUDGET
from mtl.ablation.grid import ablation_cells
from mtl.errors import ConfigError
from mtl.paths import project_root


def test_without_the_real_corpus_the_plan_has_no_cells_and_says_where_it_looked(tmp_path):
    plan = chapter.plan_ablation()
    assert plan.cells == [] and plan.profile == BUDGET.profile and plan.generations == BUDGET.generations
    shown = plan.settings().to_string()
    assert str(tmp_path) not in shown and "$MTL_DATA_ROOT" in shown
    assert "$MTL_DATA_ROOT" in plan.missing[0] and str(tmp_path) not in plan.missing[0]
    assert "No grid to cost" in plan.cost_table().data


def test_parameters_take_config_field_names_and_the_papers_symbols():
    plan = chapter.plan_ablation("smoke", generations=7, overrides={"S": 6})
    assert plan.generations == 7 and plan.overrides == {"population": 6}
    assert chapter.plan_ablation("smoke", overrides={"G": 9}).generations == 9
    with pytest.raises(ConfigError, match="given twice"):
        chapter.plan_ablation("smoke", generations=7, overrides={"G": 9})
    with pytest.raises(ConfigError, match="unknown parameter"):
        chapter.plan_ablation("smoke", overrides={"pop": 6})


def test_the_cost_table_reads_the_committed_benchmark_and_times_nothing(monkeypatch):
    def no_timing(*args, **kwargs):
        raise AssertionError("the chapter must not time SGD steps while the book builds")

    monkeypatch.setattr(cost, "measure_step_seconds", no_timing)
    cells = ablation_cells("smoke", factors={"protocol": ["paper"], "method": ["scratch"]}, data="synthetic")
    plan = chapter.AblationPlan("smoke", {}, (0,), 2, 3, "as_configured", project_root() / "data", {}, [], cells)
    styled = plan.cost_table()
    assert styled.caption == cost.step_seconds_source(cost.read_step_seconds())
    assert styled.data["cpu_hours"].notna().all() and styled.data.iloc[-1]["cells"] == len(cells)

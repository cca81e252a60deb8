"""The budget of the committed records (mtl.ablation.budget), declared once and read by the grid and the prose."""

from __future__ import annotations

import pytest

from mtl.ablation import budget
from mtl.ablation.grid import ABLATION, NESTED, budget_cells
from mtl.ablation.nested import budget_selections
from mtl.ablation.records import find_record, record_index, with_factors
from mtl.config import PAPER, get_profile
from mtl.corpora import corpus_card
from mtl.io import read_json
from mtl.paths import project_root
from mtl.results import load_records

COMMITTED = project_root() / "results" / "real"


def test_the_budget_in_words_quotes_the_declared_numbers():
    text = budget.describe_budget(budget.BUDGET, T=27, literal_generations=2)
    assert f"**G = {budget.BUDGET.generations} generations**" in text and f"paper's {PAPER.generations}" in text
    assert "T = 27" in text and "`literal_epochs` runs G = 2 generations" in text
    assert f"on {budget.BUDGET.n_inner} inner folds grouped by speaker" in text
    assert "T read literally" in budget.describe_budget(budget.AblationBudget(budget="as_configured"))


@pytest.mark.skipif(not (COMMITTED / ABLATION).is_dir(), reason="no ablation records are committed")
def test_committed_ablation_records_are_the_declared_grid_on_real_emodb():
    records = with_factors(load_records(COMMITTED / ABLATION))
    assert set(records["data_kind"]) == {"real"} and set(records["target"]) == {"emodb"}
    assert set(records["classes"]) == {",".join(corpus_card("emodb").classes)}
    assert set(records["seed"]) == set(budget.BUDGET.seeds)
    settings = records.groupby(["protocol", "module_type", "training_budget", "method"])["fold"].nunique()
    assert len(settings) == 3 * 2 * 2 * 2 and set(settings) == {5}
    paper = get_profile(budget.BUDGET.profile).to_dict()
    for record in records["record"]:
        config, training = record["config"], record["config"]["training_budget"]
        assert config["generations"] == {"one_pass": budget.BUDGET.generations, "literal_epochs": 2}[training]
        changed = {k for k, v in config.items() if k in paper and v != paper[k]}
        assert changed <= {"generations", "module_type", "training_budget", "protocol"}, changed
        assert record["code"]["dirty"] is False, "computed by committed code"
        if record["method"] == "transfer":
            source = record["source"]["config_differences"]
            assert source.get("training_budget", "one_pass") == "one_pass"
            assert source["generations"] == budget.BUDGET.generations


@pytest.mark.skipif(not (COMMITTED / ABLATION).is_dir(), reason="no ablation records are committed")
def test_the_scripts_grid_and_selections_are_the_committed_ones(real_data_root, monkeypatch, tmp_path):
    monkeypatch.setenv("MTL_DATA_ROOT", str(real_data_root))
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path))
    cells = budget_cells()
    committed = {path.stem for path in (COMMITTED / ABLATION).glob("*.json")}
    assert {cell.key for cell in cells} == committed
    saved = {read_json(path)["selection"]["protocol"]: path.stem
             for path in (COMMITTED / NESTED / "selections").glob("*.json")}
    assert {s.protocol: s.id for s in budget_selections(cells)} == saved


@pytest.mark.skipif(not (COMMITTED / NESTED).is_dir(), reason="no nested-selection records are committed")
def test_the_budgets_inner_cells_are_all_done_among_the_committed_records(real_data_root, monkeypatch, tmp_path):
    """Inner-cell keys are those the committed records were written under, so nothing would be rerun."""
    monkeypatch.setenv("MTL_DATA_ROOT", str(real_data_root))
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path))
    inner = [cell for selection in budget_selections(budget_cells()) for cell in selection.inner_cells()]
    committed = {path.stem for path in (COMMITTED / NESTED).glob("*.json")}
    assert len(inner) == len(committed) and {cell.key for cell in inner} == committed
    index = record_index()
    assert all(find_record(cell, index).parent == COMMITTED / NESTED for cell in inner)

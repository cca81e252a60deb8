"""The chapter's selection of PathNet variants on inner folds (mtl.reference.selection), on the tiny synthetic EMO-DB."""

from __future__ import annotations

from collections import Counter

import pytest

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation.nested import saved_selections
from mtl.paths import results_dir
from mtl.reference import selection as variants
from mtl.reference.diagnosed import DiagnosedCell
from mtl.runner import outer_split
from mtl.sweep import run_sweep


def test_the_candidates_start_with_the_papers_settings_and_change_one_field_each():
    assert variants.VARIANTS[0] == {}
    assert all(len(candidate) == 1 for candidate in variants.VARIANTS[1:])
    names = variants.VariantSelection(data="synthetic", profile="smoke", protocol="utterance").names
    assert names[0] == "the paper's settings" and "dropout=0.5" in names


def test_a_variant_is_chosen_on_inner_folds_and_its_refit_is_a_diagnosed_pathnet_cell():
    selection = variants.VariantSelection([{}, {"dropout": 0.5}], profile="smoke", protocol="utterance",
                                          seeds=[0], outer_folds=[0], n_inner=2, data="synthetic")
    inner = selection.inner_cells()
    assert len(inner) == 2 * 2
    assert all(c.record_path.parent == results_dir() / "runs" / variants.INNER_EXPERIMENT for c in inner)
    assert all(c.config.input_kind == "functionals" and c.config.training_budget == "literal_epochs" for c in inner)
    # the inner split never reads the outer test fold
    split, outer = inner[0].split(), inner[0].outer
    assert not (set(split.train) | set(split.held_out)) & set(outer_split(outer).held_out)

    results = selection.run(workers=1)
    row = results.iloc[0]
    assert row["status"] == "scored" and 0 <= row["utt_uar"] <= 1
    assert row["chosen"] in selection.names

    refit = selection.refit_cells()
    assert len(refit) == 1 and isinstance(refit[0], DiagnosedCell)
    assert refit[0].experiment == variants.PATHNET_EXPERIMENT and refit[0].record_path.is_file()
    assert refit[0].key == row["refit_key"]

    assert run_sweep(inner, workers=1, progress=False).counts == Counter(skipped=4)
    # saved apart from the ablation's selections, and read back as a variant selection
    assert saved_selections() == []
    [saved] = variants.saved_variant_selections()
    assert isinstance(saved, variants.VariantSelection) and saved.id == selection.id
    assert saved.results()["utt_uar"].tolist() == pytest.approx(results["utt_uar"].tolist())

    # the chapter's rows: the selection is one more method of its tables; the inner runs only count as cost
    from mtl.reference import analysis

    rows = analysis.selected_variants()
    assert len(rows) == 1 and rows.iloc[0]["label"] == analysis.SELECTED_LABEL
    assert rows.iloc[0]["utt_uar"] == pytest.approx(row["utt_uar"]) and rows.iloc[0]["cell_key"] == refit[0].key
    assert len(analysis.load_inner_runs(results_dir() / "runs")) == 4

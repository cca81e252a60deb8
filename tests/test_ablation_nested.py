"""Nested model selection (mtl.ablation.nested), end to end on the tiny synthetic EMO-DB."""

from __future__ import annotations

from collections import Counter

import pytest

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation import nested
from mtl.ablation.records import load_ablation_records
from mtl.evaluation import make_folds, recording_keys
from mtl.errors import ConfigError
from mtl.paths import results_dir
from mtl.sweep import run_sweep


def test_candidate_grid_lists_every_combination_in_order():
    assert nested.candidate_grid(module_type=["linear", "conv"], lr=[0.02]) == [
        {"module_type": "linear", "lr": 0.02}, {"module_type": "conv", "lr": 0.02}]
    assert len(nested.DEFAULT_CANDIDATES) == 4
    with pytest.raises(ConfigError, match="fixed by the procedure"):
        nested.NestedSelection([{"protocol": "paper"}], data="synthetic")


def test_nested_selection_chooses_on_inner_folds_and_scores_the_outer_fold_once():
    candidates = nested.candidate_grid(module_type=["linear", "conv"])
    selection = nested.NestedSelection(candidates, profile="smoke", protocol="utterance", outer_folds=[0],
                                       n_inner=2, data="synthetic", metric="accuracy")
    inner = selection.inner_cells()
    assert len(inner) == 2 * 2 and len({c.key for c in inner}) == 4
    assert all(c.record_path.parent == results_dir() / "runs" / "ablation-nested" for c in inner)

    # Inner folds come from the outer training part only, grouped by recording.
    split = inner[0].split()
    train, held_out, samples = split.train, split.held_out, split.samples
    outer_train, outer_test = make_folds(samples, split.y, "utterance", 2, 0)[0]
    assert set(train) | set(held_out) == set(outer_train) and not set(held_out) & set(outer_test)
    keys = recording_keys(samples)
    assert not set(keys[train]) & set(keys[held_out])

    assert selection.results()["status"].tolist() == ["inner runs missing"]
    results = selection.run()
    row = results.iloc[0]
    assert row["status"] == "scored" and 0 <= row["accuracy"] <= 1

    choice = selection.selection()
    assert choice["inner_done"].tolist() == [2, 2] and choice["complete"].all()
    best = choice.sort_values(["score", "candidate_index"], ascending=[False, True]).iloc[0]
    assert choice["chosen"].sum() == 1 and choice.loc[choice["chosen"], "candidate"].item() == best["candidate"]
    assert row["chosen"] == best["candidate"] and row["inner_score"] == pytest.approx(best["score"])

    refit = selection.refit_cells()
    assert len(refit) == 1 and refit[0].fold == 0 and refit[0].experiment == "ablation"
    assert refit[0].key == row["refit_key"] and refit[0].record_path.is_file()
    record = load_ablation_records(refit).iloc[0]
    assert record["accuracy"] == pytest.approx(row["accuracy"])

    inner_records = load_ablation_records(inner)
    assert len(inner_records) == 4 and inner_records["inner_fold"].notna().all()
    assert set(inner_records["experiment"]) == {"ablation-nested"}
    assert run_sweep(inner, workers=1, progress=False).counts == Counter(skipped=4)
    assert [s.id for s in nested.saved_selections()] == [selection.id]

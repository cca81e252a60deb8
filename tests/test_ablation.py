"""The ablation grid on EMO-DB: listing, cost, paired tests, nested model selection.

Nothing here needs the real corpora: the grid is listed on the synthetic
EMO-DB (``data="synthetic"``), the tables are computed from hand-made
records, and the nested selection runs end to end on the tiny synthetic
EMO-DB at the smoke profile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mtl import ablation as ab
from mtl.config import get_profile
from mtl.corpora.labels import CLASS_SETS
from mtl.errors import ConfigError
from mtl.experiments import make_cell
from mtl.io import write_json
from mtl.paths import project_root, results_dir


@pytest.fixture(autouse=True)
def _own_results(tmp_path, monkeypatch):
    """Fresh records per test; the feature cache stays shared (the tiny synthetic EMO-DB is built once)."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-real-data"))
    # records committed to the checkout's results/real must not enter the hand-made tables
    monkeypatch.setattr("mtl.results.project_root", lambda: tmp_path / "checkout")


# ---------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------
def test_grid_lists_every_factor_combination_as_ablation_cells():
    cells = ab.ablation_cells("smoke", data="synthetic", sources=("savee",), seeds=(0,), folds=[0, 1],
                              generations={"literal_epochs": 1})
    assert len(cells) == 3 * 2 * 2 * 2 * 2  # protocols x modules x budgets x methods x folds
    assert len({c.key for c in cells}) == len(cells)
    assert {c.experiment for c in cells} == {"ablation"}
    assert all(c.record_path.parent == results_dir() / "runs" / "ablation" for c in cells)
    factors = pd.DataFrame([ab.cell_factors(c) for c in cells])
    assert factors.groupby(["protocol", "module_type", "training_budget", "method"]).size().eq(2).all()
    assert set(factors.loc[factors["training_budget"] == "literal_epochs", "generations"]) == {1}
    assert set(factors.loc[factors["training_budget"] == "one_pass", "generations"]) == {3}
    transfer = [c for c in cells if c.method == "transfer"]
    assert all(c.sources == ("savee",) and len(c.classes) == 7 for c in transfer)
    assert all(c.config.protocol == c.protocol for c in cells)


def test_both_t_readings_transfer_from_one_one_pass_source_model_by_default():
    kwargs = dict(factors={"method": ["transfer"], "protocol": ["paper"], "module_type": ["linear"]},
                  data="synthetic", sources=("savee",), folds=[0], generations={"literal_epochs": 1})
    shared = ab.ablation_cells("smoke", **kwargs)
    assert [c.config.training_budget for c in shared] == ["one_pass", "literal_epochs"]
    assert len({c.source_key for c in shared}) == 1
    assert all(c.source_training_config.training_budget == "one_pass" for c in shared)
    assert shared[1].source_training_config.generations == shared[0].config.generations
    own = ab.ablation_cells("smoke", source_budget="same", **kwargs)
    assert own[0].key == shared[0].key and own[1].key != shared[1].key
    assert own[1].source_training_config == own[1].config
    with pytest.raises(ConfigError, match="source_budget must be one of"):
        ab.ablation_cells("smoke", source_budget="cheap", **kwargs)


def test_run_cells_starts_every_source_model_first_and_keeps_the_order_otherwise():
    from types import SimpleNamespace as Cell

    cells = [Cell(name=n, source_key=k) for n, k in
             [("s1", None), ("a1", "A"), ("s2", None), ("a2", "A"), ("b1", "B"), ("b2", "B")]]
    assert [c.name for c in ab._source_first_order(cells)] == ["a1", "b1", "s1", "s2", "a2", "b2"]


def test_grid_restricts_factors_and_rejects_unknown_ones():
    cells = ab.ablation_cells("smoke", factors={"module_type": "conv", "protocol": ["paper"], "method": ["scratch"]},
                              data="synthetic", folds=[0])
    assert [(c.config.module_type, c.protocol, c.method) for c in cells] == [("conv", "paper", "scratch")] * 2
    with pytest.raises(ConfigError, match="unknown ablation factor 'decision'"):
        ab.ablation_cells("smoke", factors={"decision": ["segment"]}, data="synthetic")
    with pytest.raises(ConfigError, match="factor 'module_type'"):
        ab.ablation_cells("smoke", factors={"module_type": ["lstm"]}, data="synthetic")
    with pytest.raises(ConfigError, match="budget must be one of"):
        ab.ablation_cells("smoke", budget="cheap", data="synthetic")


def test_equal_steps_budget_shortens_literal_epochs_evolution():
    one_setting = {"protocol": ["paper"], "method": ["scratch"], "module_type": ["linear"]}
    cells = ab.ablation_cells("smoke", factors=one_setting, data="synthetic", folds=[0], generations=40,
                              budget="equal_steps", overrides={"steps_per_pathway": None})
    by_budget = {c.config.training_budget: c for c in cells}
    one_pass, literal = by_budget["one_pass"], by_budget["literal_epochs"]
    T = ab.steps_per_cell(one_pass)["T"]
    assert one_pass.config.generations == 40 and literal.config.generations == max(1, round(40 / T))
    steps = {name: ab.steps_per_cell(cell)["target_steps"] for name, cell in by_budget.items()}
    assert steps["literal_epochs"] <= 2 * steps["one_pass"]


# ---------------------------------------------------------------------------
# cost
# ---------------------------------------------------------------------------
def test_cost_counts_sgd_steps_and_source_models_once():
    paper = get_profile("paper")
    scratch = make_cell("ablation", "scratch", "emodb", config=paper, classes="target", data="synthetic")
    literal = make_cell("ablation", "scratch", "emodb", config=paper.replace(training_budget="literal_epochs"),
                        classes="target", data="synthetic")
    cost = ab.steps_per_cell(scratch, n_train=1712, n_held_out=428)
    assert cost["T"] == 27 and cost["target_steps"] == 200 * 2 * 27  # G x K x ceil(1712 / 64)
    assert cost["target_forward"] == 200 * 2 * 1712 + 20 * 428  # fitness + held-out every 10 generations
    assert cost["source_steps"] == 0 and cost["source_key"] is None
    assert ab.steps_per_cell(literal, n_train=1712, n_held_out=428)["target_steps"] == 27 * cost["target_steps"]

    transfers = [make_cell("ablation", "transfer", "emodb", ("savee",), config=paper, classes="target", fold=f,
                           data="synthetic") for f in range(3)]
    table = ab.estimate_cost([scratch, *transfers], step_seconds={"linear": (0.02, 1e-4)}, n_train=1712,
                             n_held_out=428, n_source=12_800)
    assert table["new_source"].tolist() == [False, True, False, False]
    assert table.loc[1, "source_steps"] == 200 * 2 * 200
    assert table.loc[1, "seconds"] == pytest.approx(table.loc[2, "seconds"] + 200 * 2 * (200 * 0.02 + 12_800 * 1e-4))
    totals = ab.cost_summary(table, workers=2).set_index("method")
    assert totals.loc["all", "cells"] == 4 and totals.loc["all", "source_steps"] == 200 * 2 * 200
    assert totals.loc["all", "steps"] == 4 * 200 * 2 * 27 + 200 * 2 * 200
    assert totals.loc["all", "wall_hours"] == pytest.approx(totals.loc["all", "cpu_hours"] / 2)


def test_step_seconds_are_measured_per_module_type():
    config = get_profile("smoke", input_shape=(16, 16, 3), n_modules=4, max_active=2, units=4)
    seconds = ab.measure_step_seconds(config=config, steps=2, n_samples=32)
    assert set(seconds) == {"linear", "conv"}
    assert all(step > 0 and forward > 0 for step, forward in seconds.values())


# ---------------------------------------------------------------------------
# paired tests and the table, on hand-made records
# ---------------------------------------------------------------------------
SCRATCH = [0.40, 0.45, 0.42, 0.47, 0.44]
TRANSFER = [0.46, 0.47, 0.49, 0.50, 0.45]


def _record(method, fold, accuracy, module_type="linear", protocol="paper", utterance=None):
    config = get_profile("paper", module_type=module_type, protocol=protocol).to_dict()
    utterance = accuracy + 0.05 if utterance is None else utterance
    key = f"{method}-{module_type}-{protocol}-{fold}"
    return {
        "schema": 1, "cell_key": key, "experiment": "ablation", "method": method,
        "sources": ["ravdess"] if method == "transfer" else [], "target": "emodb", "modality": "audio",
        "classes": ["anger", "boredom"], "protocol": protocol, "seed": 0, "fold": fold, "n_folds": 5,
        "config": config, "data": {"kinds": {"emodb": "real"}, "provenance": {"emodb": {"copy": "test copy",
                                                                                        "content_hash": "abc"}}},
        "metrics": {"accuracy": accuracy, "uar": accuracy - 0.02, "per_class": {},
                    "utterance": {"mean_prob": {"accuracy": utterance, "uar": utterance - 0.02},
                                  "vote": {"accuracy": utterance}}},
    }


def _write(records):
    for record in records:
        write_json(results_dir() / "runs" / "ablation" / f"{record['cell_key']}.json", record)


def test_paired_test_matches_scipy_and_handles_degenerate_cases():
    result = ab.paired_test(SCRATCH, TRANSFER)
    assert result["n"] == 5
    assert result["mean_difference"] == pytest.approx(np.mean(np.subtract(TRANSFER, SCRATCH)))
    assert result["t_p"] == pytest.approx(stats.ttest_rel(TRANSFER, SCRATCH).pvalue)
    assert result["wilcoxon_p"] == pytest.approx(stats.wilcoxon(TRANSFER, SCRATCH).pvalue)
    assert np.isnan(ab.paired_test([0.5], [0.6])["t_p"])
    same = ab.paired_test(SCRATCH, SCRATCH)
    assert same["mean_difference"] == 0 and np.isnan(same["t_p"]) and np.isnan(same["wilcoxon_p"])
    with pytest.raises(ConfigError, match="as many values"):
        ab.paired_test([0.1, 0.2], [0.1])


def test_table_gives_mean_sd_per_setting_and_decision_with_paired_tests():
    _write([_record("scratch", f, a) for f, a in enumerate(SCRATCH)]
           + [_record("transfer", f, a) for f, a in enumerate(TRANSFER)]
           + [_record("scratch", f, 0.6, module_type="conv") for f in range(3)]
           + [_record("transfer", f, 0.7, module_type="conv") for f in range(1, 4)])
    records = ab.load_ablation_records()
    assert len(records) == 16 and set(records["module_type"]) == {"linear", "conv"}
    table = ab.ablation_table(records)
    linear = table[(table["module_type"] == "linear") & (table["decision"] == "segment")].iloc[0]
    assert linear["scratch_mean"] == pytest.approx(np.mean(SCRATCH))
    assert linear["scratch_sd"] == pytest.approx(np.std(SCRATCH, ddof=1))
    assert linear["scratch"] == f"{np.mean(SCRATCH):.2f} ± {np.std(SCRATCH, ddof=1):.2f}"
    assert linear["n_pairs"] == 5
    assert linear["t_p"] == pytest.approx(stats.ttest_rel(TRANSFER, SCRATCH).pvalue)
    assert linear["wilcoxon_p"] == pytest.approx(stats.wilcoxon(TRANSFER, SCRATCH).pvalue)
    utterance = table[(table["module_type"] == "linear") & (table["decision"] == "utterance (mean prob.)")].iloc[0]
    assert utterance["scratch_mean"] == pytest.approx(np.mean(SCRATCH) + 0.05)
    conv = table[(table["module_type"] == "conv") & (table["decision"] == "segment")].iloc[0]
    assert conv["scratch_n"] == 3 and conv["transfer_n"] == 3 and conv["n_pairs"] == 2  # folds 1 and 2 only
    assert conv["difference"] == pytest.approx(0.1)


def test_factor_effects_pair_records_that_differ_in_one_factor_only():
    _write([_record("scratch", f, a) for f, a in enumerate(SCRATCH)]
           + [_record("transfer", f, a) for f, a in enumerate(TRANSFER)]
           + [_record("scratch", f, a + 0.1, module_type="conv") for f, a in enumerate(SCRATCH[:3])]
           + [_record("scratch", f, a - 0.05, protocol="speaker") for f, a in enumerate(SCRATCH)])
    effects = ab.factor_effects(ab.load_ablation_records()).set_index("comparison")
    method = effects.loc["scratch -> transfer"]
    assert (method["settings"], method["pairs"]) == (1, 5)
    assert method["mean_difference"] == pytest.approx(np.mean(np.subtract(TRANSFER, SCRATCH)))
    assert method["b_better"] == pytest.approx(np.mean(np.subtract(TRANSFER, SCRATCH) > 0))
    module = effects.loc["linear -> conv"]
    assert module["pairs"] == 3 and module["mean_difference"] == pytest.approx(0.1)
    assert effects.loc["one_pass -> literal_epochs", "pairs"] == 0
    decision = effects.loc["segment -> utterance (mean prob.)"]
    assert decision["pairs"] == 18 and decision["mean_difference"] == pytest.approx(0.05)
    speaker = effects.loc["paper -> speaker"]  # between setting means: the folds differ
    assert speaker["pairs"] == 1 and speaker["mean_difference"] == pytest.approx(-0.05)
    assert effects.loc["paper -> utterance", "pairs"] == 0
    with pytest.raises(ConfigError, match="metric must be one of"):
        ab.factor_effects(ab.load_ablation_records(), metric="f1")


def test_anchor_records_and_overview_name_what_each_result_was_computed_with():
    anchors = [dict(_record(m, f, 0.5), experiment="anchor_test", cell_key=f"anchor-{m}-{f}",
                    classes=list(CLASS_SETS["emodb"])) for m in ("scratch", "finetune") for f in range(2)]
    for record in anchors:
        write_json(results_dir() / "runs" / "anchor_test" / f"{record['cell_key']}.json", record)
    found = ab.anchor_records(["anchor_test"])
    assert found["method"].tolist() == ["scratch", "scratch"]  # fine-tuning is no ablation setting
    _write([_record("scratch", f, a) for f, a in enumerate(SCRATCH)])
    overview = ab.records_overview(pd.concat([ab.load_ablation_records(), found], ignore_index=True))
    assert overview[["experiment", "runs", "folds", "seeds"]].values.tolist() == [["ablation", 5, 5, "0"],
                                                                                  ["anchor_test", 2, 2, "0"]]
    assert set(overview["data"]) == {"real (content abc)"} and set(overview["stage"]) == {"outer"}


def test_ablation_bars_draw_one_panel_per_protocol():
    from mtl.plots import ablation_bars

    _write([_record("scratch", f, a) for f, a in enumerate(SCRATCH)]
           + [_record("transfer", f, a, protocol="speaker") for f, a in enumerate(TRANSFER)])
    figure = ablation_bars(ab.ablation_table(ab.load_ablation_records()), paper={"scratch": 0.89}, chance=1 / 7)
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["paper protocol", "speaker protocol"]
    dashed = [[line for line in ax.lines if line.get_linestyle() == "--"] for ax in panels]
    assert [len(lines) for lines in dashed] == [1, 0]  # the paper's number only under the paper's protocol
    with pytest.raises(ConfigError, match="no rows"):
        ablation_bars(ab.ablation_table(ab.load_ablation_records()), decision="utterance (vote)")


def test_summary_says_plainly_whether_the_paper_is_reached():
    assert "No ablation records" in ab.ablation_summary(ab.load_ablation_records()).text
    _write([_record("scratch", f, a) for f, a in enumerate(SCRATCH)]
           + [_record("scratch", f, 0.90, module_type="conv", utterance=0.95) for f in range(5)])
    summary = ab.ablation_summary(ab.load_ablation_records())
    assert summary.reaching == ["scratch, conv modules, one_pass, G=200 (segment decisions: 0.90)",
                                "scratch, conv modules, one_pass, G=200 (utterance (mean prob.) decisions: 0.95)"]
    assert "Settings that reach the paper's EMO-DB accuracy" in summary.text
    nested = pd.DataFrame([{"seed": 0, "fold": f, "protocol": "speaker", "metric": "uar", "status": "scored",
                            "chosen": "module_type=conv", "uar": u} for f, u in enumerate([0.30, 0.40])])
    text = ab.ablation_summary(ab.load_ablation_records(), nested).text
    assert "speaker-independent unweighted average recall" in text and "0.35 ± 0.07" in text
    paper_nested = pd.DataFrame([{"seed": 0, "fold": f, "protocol": "paper", "metric": "accuracy",
                                  "status": "scored", "chosen": "module_type=conv", "accuracy": a,
                                  "utt_accuracy_mean_prob": a + 0.02} for f, a in enumerate([0.50, 0.60])])
    summary = ab.ablation_summary(ab.load_ablation_records(), nested, paper_nested=paper_nested)
    assert summary.nested_accuracy["mean"] == pytest.approx(0.55)
    assert "Under the paper's own protocol, with the setting chosen on inner validation folds" in summary.text
    assert "0.55 ± 0.07" in summary.text and "stays below the paper's 0.89" in summary.text


# ---------------------------------------------------------------------------
# nested model selection, end to end on the tiny synthetic EMO-DB
# ---------------------------------------------------------------------------
def test_nested_selection_chooses_on_inner_folds_and_scores_the_outer_fold_once():
    candidates = ab.candidate_grid(module_type=["linear", "conv"])
    selection = ab.NestedSelection(candidates, profile="smoke", protocol="utterance", outer_folds=[0], n_inner=2,
                                   data="synthetic", metric="accuracy")
    inner = selection.inner_cells()
    assert len(inner) == 2 * 2 and len({c.key for c in inner}) == 4
    assert all(c.record_path.parent == results_dir() / "runs" / "ablation-nested" for c in inner)

    # Inner folds come from the outer training part only, grouped by recording.
    train, held_out, samples, _ = inner[0].split()
    from mtl.evaluation import make_folds, recording_keys
    from mtl.experiments import class_indices

    outer_train, outer_test = make_folds(samples, class_indices(samples, inner[0].classes), "utterance", 2, 0)[0]
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
    record = ab.load_ablation_records(refit).iloc[0]
    assert record["accuracy"] == pytest.approx(row["accuracy"])

    inner_records = ab.load_ablation_records(inner)
    assert len(inner_records) == 4 and inner_records["inner_fold"].notna().all()
    assert set(inner_records["experiment"]) == {"ablation-nested"}
    again = ab.run_cells(inner)
    assert set(again["status"]) == {"skipped"}


# ---------------------------------------------------------------------------
# the committed records: what the chapter says they are
# ---------------------------------------------------------------------------
COMMITTED = project_root() / "results" / "real"


@pytest.mark.skipif(not (COMMITTED / ab.ABLATION).is_dir(), reason="no ablation records are committed")
def test_committed_ablation_records_are_the_declared_grid_on_real_emodb():
    from mtl.results import load_records

    records = ab._with_factors(load_records(COMMITTED / ab.ABLATION))
    assert set(records["data_kind"]) == {"real"} and set(records["target"]) == {"emodb"}
    assert set(records["classes"]) == {",".join(CLASS_SETS["emodb"])} and set(records["seed"]) == {0}
    settings = records.groupby(["protocol", "module_type", "training_budget", "method"])["fold"].nunique()
    assert len(settings) == 3 * 2 * 2 * 2 and set(settings) == {5}
    paper = get_profile("paper").to_dict()
    for record in records["record"]:
        config, budget = record["config"], record["config"]["training_budget"]
        assert config["generations"] == {"one_pass": 50, "literal_epochs": 2}[budget]
        changed = {k for k, v in config.items() if k in paper and v != paper[k]}
        assert changed <= {"generations", "module_type", "training_budget", "protocol"}, changed
        assert record["code"]["dirty"] is False, "computed by committed code"
        if record["method"] == "transfer":
            source = record["source"]["config_differences"]
            assert source.get("training_budget", "one_pass") == "one_pass" and source["generations"] == 50

"""Tables and statistics of the ablation (mtl.ablation.analysis), on hand-made records."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ablation_records import SCRATCH, TRANSFER, own_results, record, write  # noqa: F401  (own_results: autouse)
from mtl.ablation import analysis
from mtl.ablation.records import load_ablation_records
from mtl.errors import ConfigError


def test_paired_test_matches_scipy_and_handles_degenerate_cases():
    result = analysis.paired_test(SCRATCH, TRANSFER)
    assert result["n"] == 5
    assert result["mean_difference"] == pytest.approx(np.mean(np.subtract(TRANSFER, SCRATCH)))
    assert result["t_p"] == pytest.approx(stats.ttest_rel(TRANSFER, SCRATCH).pvalue)
    assert result["wilcoxon_p"] == pytest.approx(stats.wilcoxon(TRANSFER, SCRATCH).pvalue)
    assert np.isnan(analysis.paired_test([0.5], [0.6])["t_p"])
    same = analysis.paired_test(SCRATCH, SCRATCH)
    assert same["mean_difference"] == 0 and np.isnan(same["t_p"]) and np.isnan(same["wilcoxon_p"])
    with pytest.raises(ConfigError, match="as many values"):
        analysis.paired_test([0.1, 0.2], [0.1])


def test_table_gives_mean_sd_per_setting_and_decision_with_paired_tests():
    write([record("scratch", f, a) for f, a in enumerate(SCRATCH)]
          + [record("transfer", f, a) for f, a in enumerate(TRANSFER)]
          + [record("scratch", f, 0.6, module_type="conv") for f in range(3)]
          + [record("transfer", f, 0.7, module_type="conv") for f in range(1, 4)])
    records = load_ablation_records()
    assert len(records) == 16 and set(records["module_type"]) == {"linear", "conv"}
    table = analysis.ablation_table(records)
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


def test_records_differing_only_in_result_neutral_fields_are_one_setting():
    write([record("scratch", f, a) for f, a in enumerate(SCRATCH[:3])]
          + [record("scratch", f, a, profile="default", checkpoint_every=3) for f, a in enumerate(SCRATCH[3:], 3)])
    table = analysis.ablation_table(load_ablation_records(), ["segment"])
    assert len(table) == 1 and table.loc[0, "scratch_n"] == 5


def test_factor_effects_pair_records_that_differ_in_one_factor_only():
    write([record("scratch", f, a) for f, a in enumerate(SCRATCH)]
          + [record("transfer", f, a) for f, a in enumerate(TRANSFER)]
          + [record("scratch", f, a + 0.1, module_type="conv") for f, a in enumerate(SCRATCH[:3])]
          + [record("scratch", f, a - 0.05, protocol="speaker") for f, a in enumerate(SCRATCH)])
    effects = analysis.factor_effects(load_ablation_records()).set_index("comparison")
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
        analysis.factor_effects(load_ablation_records(), metric="f1")


def test_ablation_bars_draw_one_panel_per_protocol():
    from mtl.plots import ablation_bars

    write([record("scratch", f, a) for f, a in enumerate(SCRATCH)]
          + [record("transfer", f, a, protocol="speaker") for f, a in enumerate(TRANSFER)])
    figure = ablation_bars(analysis.ablation_table(load_ablation_records()), paper={"scratch": 0.89}, chance=1 / 7)
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["paper protocol", "speaker protocol"]
    dashed = [[line for line in ax.lines if line.get_linestyle() == "--"] for ax in panels]
    assert [len(lines) for lines in dashed] == [1, 0]  # the paper's number only under the paper's protocol
    with pytest.raises(ConfigError, match="no rows"):
        ablation_bars(analysis.ablation_table(load_ablation_records()), decision="utterance (vote)")

"""The ablation's conclusions (mtl.ablation.verdict): on hand-made records, and tied to the committed records.

The chapter shows :func:`ablation_summary` and :func:`ablation_findings` as they
come out; the last tests pin the numbers they give on the records committed
under ``results/real/ablation*`` -- the numbers the chapter's conclusions
quote.
"""

from __future__ import annotations

import pandas as pd
import pytest

from ablation_records import SCRATCH, TRANSFER, record, write
from mtl.ablation import verdict
from mtl.ablation.analysis import factor_effects
from mtl.ablation.grid import ABLATION
from mtl.ablation.nested import saved_selections
from mtl.ablation.records import load_ablation_records, with_anchors
from mtl.paths import project_root

COMMITTED = project_root() / "results" / "real"


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """No records but the test's own (none committed, none local)."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")


@pytest.fixture
def committed(tmp_path, monkeypatch):
    """The committed records only (local runs of this checkout left out)."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    if not (COMMITTED / ABLATION).is_dir():
        pytest.skip("no ablation records are committed")
    records = with_anchors(load_ablation_records())
    return records, saved_selections()


def test_summary_says_plainly_whether_the_paper_is_reached(fresh):
    assert "No ablation records" in verdict.ablation_summary(load_ablation_records()).text
    write([record("scratch", f, a) for f, a in enumerate(SCRATCH)]
          + [record("scratch", f, 0.90, module_type="conv", utterance=0.95) for f in range(5)])
    summary = verdict.ablation_summary(load_ablation_records())
    assert summary.reaching == ["scratch, conv modules, one_pass, G=200 (segment decisions: 0.90)",
                                "scratch, conv modules, one_pass, G=200 (utterance (mean prob.) decisions: 0.95)"]
    assert "Settings that reach the paper's EMO-DB accuracy" in summary.text
    nested = pd.DataFrame([{"seed": 0, "fold": f, "protocol": "speaker", "metric": "uar", "status": "scored",
                            "chosen": "module_type=conv", "uar": u} for f, u in enumerate([0.30, 0.40])])
    text = verdict.ablation_summary(load_ablation_records(), nested).text
    assert "speaker-independent unweighted average recall" in text and "0.35 ± 0.07" in text
    assert "module_type=conv in 2 of 2 outer folds" in text
    paper_nested = pd.DataFrame([{"seed": 0, "fold": f, "protocol": "paper", "metric": "accuracy",
                                  "status": "scored", "chosen": "module_type=conv", "accuracy": a,
                                  "utt_accuracy_mean_prob": a + 0.02} for f, a in enumerate([0.50, 0.60])])
    summary = verdict.ablation_summary(load_ablation_records(), nested, paper_nested=paper_nested)
    assert summary.nested_accuracy["mean"] == pytest.approx(0.55)
    assert "Under the paper's own protocol, with the setting chosen on inner validation folds" in summary.text
    assert "0.55 ± 0.07" in summary.text and "stays below the paper's 0.89" in summary.text
    assert summary._repr_markdown_() == str(summary) == summary.text


def test_findings_rank_the_factors_and_say_how_much_of_the_gap_closes(fresh):
    assert "No two records" in verdict.ablation_findings(load_ablation_records()).text
    write([record("scratch", f, a) for f, a in enumerate(SCRATCH)]
          + [record("transfer", f, a) for f, a in enumerate(TRANSFER)]
          + [record("scratch", f, a + 0.1, module_type="conv") for f, a in enumerate(SCRATCH)])
    findings = verdict.ablation_findings(load_ablation_records())
    lines = findings.text.splitlines()
    conv = next(i for i, line in enumerate(lines) if "**Convolutional modules**" in line)
    transfer = next(i for i, line in enumerate(lines) if "**Transfer from RAVDESS**" in line)
    assert conv < transfer  # the larger effect first
    assert "+0.10 accuracy and +0.10 UAR against the paired linear runs, better in 5 of 5 pairs" in lines[conv]
    assert "is not reproduced here (+0.038)" in findings.text
    gap = 0.89 - sum(SCRATCH) / 5
    assert findings.gap_closed == pytest.approx(0.1 / gap) and f"closes {0.1 / gap:.0%} of that gap" in findings.text


def test_findings_quote_what_the_analysis_computes_from_the_committed_records(committed):
    records, _ = committed
    findings = verdict.ablation_findings(records)
    accuracy, uar = factor_effects(records, "accuracy").set_index("comparison"), \
        factor_effects(records, "uar").set_index("comparison")
    for comparison in ("linear -> conv", "segment -> utterance (mean prob.)", "paper -> speaker"):
        a, u = accuracy.loc[comparison], uar.loc[comparison]
        assert (f"{a['mean_difference']:+.2f} accuracy and {u['mean_difference']:+.2f} UAR" in findings.text)
        assert f"better in {round(a['b_better'] * a['pairs'])} of {a['pairs']}" in findings.text
    # the numbers the chapter's conclusions have always quoted
    assert "**Convolutional modules**: +0.07 accuracy and +0.09 UAR" in findings.text
    assert "better in 54 of 60 pairs" in findings.text
    assert "**Utterance decisions (mean probability)**: +0.05 accuracy" in findings.text
    assert "**Speaker-independent folds**: -0.07 accuracy" in findings.text
    for small in ("Reading T literally", "Transfer from RAVDESS", "Folds grouped by utterance"):
        assert f"**{small}**: less than 0.01 on average" in findings.text
    assert "**G = 200 instead of 50** (the anchors) changes mean segment accuracy by +0.01 to +0.08" in findings.text
    assert findings.gap_closed < 0.2 and "is not reproduced here" in findings.text


def test_summary_quotes_the_committed_nested_selections(committed):
    records, selections = committed
    results = {s.protocol: s.results() for s in selections}
    summary = verdict.ablation_summary(records, results["speaker"], paper_nested=results["paper"])
    speaker, paper = results["speaker"], results["paper"]
    assert f"{speaker['uar'].mean():.2f} ± {speaker['uar'].std():.2f} on the outer test folds" in summary.text
    assert f"segment accuracy {paper['accuracy'].mean():.2f} ± {paper['accuracy'].std():.2f}" in summary.text
    assert "0.39 ± 0.06" in summary.text and "0.52 ± 0.02" in summary.text
    assert summary.text.count("module_type=conv in 5 of 5") == 2
    assert "No setting reaches" in summary.text and "best of 10 settings" in summary.text

"""The tables of the chapter "Where could 0.89 come from?" (mtl.reference.analysis), on hand-made records."""

from __future__ import annotations

import numpy as np
import pytest

from ablation_records import ablation_cell, own_results  # noqa: F401  (autouse fixture)
from mtl.records import RunResult, build_record, write_record
from mtl.reference import ReferenceCell, analysis

SCRATCH = [0.40, 0.38, 0.42, 0.36, 0.39]
SVM = [0.60, 0.55, 0.62, 0.58, 0.61]


def _record(cell, uar, reference=None, curve=()):
    metrics = {"accuracy": uar + 0.01, "uar": uar, "per_class": {},
               "utterance": {"mean_prob": {"accuracy": uar + 0.03, "uar": uar + 0.02}, "vote": {"accuracy": uar}}}
    result = RunResult(metrics=metrics, n_train=400, n_test=100, n_folds=5, target_seconds=36.0,
                       provenance={"kind": "real", "copy": "test copy", "content_hash": "abc"},
                       learning_curve=list(curve))
    extra = None if reference is None else {"stage": "reference", "outer_cell_key": cell.outer.key,
                                            "reference": reference}
    return build_record(cell, result, extra=extra)


@pytest.fixture
def folder(tmp_path):
    """Committed-like records: PathNet scratch and the SVM and 1-NN on the same five speaker folds."""
    root = tmp_path / "real"
    curve = [{"generation": g, "best_fitness": min(1.0, g / 80)} for g in range(1, 201)]
    for fold in range(5):
        scratch = ablation_cell("scratch", fold, protocol="speaker", experiment="real_recordings")
        records = [_record(scratch, SCRATCH[fold], curve=curve),
                   _record(ReferenceCell(scratch, "svm"), SVM[fold], {"C": 0.01}),
                   _record(ReferenceCell(scratch, "knn1"), 0.2, {"same_recording": 0.0, "same_speaker": 0.0})]
        for one in records:
            folder_name = "real_recordings" if one["method"] == "scratch" else analysis.REFERENCE_EXPERIMENT
            write_record(root / folder_name / f"{one['cell_key']}.json", {**one, "experiment": folder_name})
    return root


def test_mean_ci_is_a_t_interval():
    ci = analysis.mean_ci([1.0, 2.0, 3.0])
    assert (ci["mean"], ci["n"]) == (2.0, 3)
    assert ci["high"] - ci["mean"] == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert np.isnan(analysis.mean_ci([0.5])["low"]) and analysis.mean_ci([])["n"] == 0


def test_the_chapter_tables_read_reference_and_pathnet_records_side_by_side(folder):
    frame = analysis.load_where089(folder)
    assert sorted(frame["label"].unique()) == ["PathNet scratch", "knn1", "svm"]
    table = analysis.method_table(frame, "uar")
    assert list(table.columns) == ["speaker"]
    assert table.loc["svm", "speaker"].startswith(f"{np.mean(SVM):.2f} [") and "(n=5)" in table.loc["svm", "speaker"]
    paired = analysis.paired_table(frame, [("PathNet scratch", "svm")], metric="uar").iloc[0]
    assert paired["n"] == 5 and paired["mean_difference"] == pytest.approx(np.mean(SVM) - np.mean(SCRATCH))
    best = analysis.best_speaker_independent(frame, "uar").set_index("best of")
    assert best.loc["any method", "method"] == "svm" and best.loc["any PathNet setting", "method"] == "PathNet scratch"
    assert analysis.leakage_table(frame).loc["speaker", "same_recording"] == 0.0
    ga = analysis.ga_table(frame)
    assert list(ga["first_perfect_generation"]) == [80] * 5 and not ga["diagnosed"].any()


def test_no_records_give_empty_tables(tmp_path):
    frame = analysis.load_where089(tmp_path / "nothing")
    assert frame.empty and analysis.method_table(frame).empty and analysis.ga_table(frame).empty


def test_a_cell_recorded_plain_and_with_its_diagnostics_counts_once_as_the_diagnosed_record(folder):
    from mtl.reference.diagnosed import DiagnosedCell

    scratch = ablation_cell("scratch", 0, protocol="speaker", experiment="real_recordings")
    diagnosed = DiagnosedCell(scratch)
    result = RunResult(metrics=_record(scratch, SCRATCH[0])["metrics"], n_train=400, n_test=100, n_folds=5,
                       target_seconds=36.0, provenance={"kind": "real", "copy": "test copy", "content_hash": "abc"},
                       ga={"tie_fraction": 0.5})
    record = build_record(scratch, result, key=diagnosed.key,
                          extra={"stage": "ga-diagnostics", "outer_cell_key": scratch.key, "ga": result.ga})
    # Written after the plain records, so the diagnosed one is the later of the two to be read.
    write_record(folder / analysis.PATHNET_EXPERIMENT / f"{diagnosed.key}.json",
                 {**record, "experiment": analysis.PATHNET_EXPERIMENT})
    frame = analysis.load_where089(folder)
    rows = frame[frame["label"] == "PathNet scratch"]
    assert len(rows) == 5 and sorted(rows["fold"]) == [0, 1, 2, 3, 4]
    assert rows.set_index("fold").loc[0, "record"]["stage"] == "ga-diagnostics"
    assert analysis.ga_table(frame)["diagnosed"].sum() == 1

import json

import numpy as np
import pytest

from mtl.cells import Cell
from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.evaluation import evaluate
from mtl.io import write_json
from mtl.records import RunResult, build_record
from mtl.paths import results_dir
from mtl.results import (PAPER_VALUES, default_search_path, format_mean_sd, learning_curves_frame, load_records,
                         paper_comparison, paper_values, style_table, summarise, to_markdown)

@pytest.fixture(autouse=True)
def _own_results_dir(tmp_path, monkeypatch):
    """conftest's results folder is shared by the session; these tests count records, so each gets its own."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    # and records committed to the checkout's results/real must not leak into the counts
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")


SIX = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]


def _metrics(accuracy, classes):
    """Real metrics (mtl.evaluation.evaluate) of 50 one-segment utterances per class, each class ``accuracy`` right."""
    n = 50
    y = np.repeat(np.arange(len(classes)), n)
    predicted = y.copy()
    for c in range(len(classes)):
        wrong = np.flatnonzero(y == c)[round(accuracy * n):]
        predicted[wrong] = (c + 1) % len(classes)
    return evaluate(y, np.eye(len(classes))[predicted], np.arange(len(y)), classes)


def make_record(method="transfer", sources=("enterface",), target="savee", modality="video", fold=0, seed=0,
                accuracy=0.6, protocol="paper", kind="synthetic", experiment="table1_visual_transfer",
                profile="smoke", classes=tuple(SIX), key=None):
    """A record of the one layout, built by the library (mtl.records.build_record) without training."""
    cell = Cell(experiment=experiment, method=method, target=target, sources=tuple(sources), modality=modality,
                classes=tuple(classes), source_classes=tuple(classes) if sources else (), protocol=protocol,
                seed=seed, fold=fold, config=get_profile(profile), data=tuple((c, kind) for c in (target, *sources)))
    curve = [{"generation": g, "best_fitness": 0.1 * g, "val_accuracy": 0.1 * g if g % 2 == 0 else float("nan")}
             for g in range(4)]
    result = RunResult(metrics=_metrics(accuracy, list(classes)), n_train=600, n_test=50 * len(classes), n_folds=2,
                       provenance={"copy": f"{kind} {target}", "content_hash": "abc"}, target_seconds=1.0,
                       learning_curve=curve)
    return build_record(cell, result, key=key)


def write_records(records, sub="runs"):
    for r in records:
        write_json(results_dir() / sub / r["experiment"] / f"{r['cell_key']}.json", r)


def test_load_records_reads_runs_and_committed_folders_once():
    a = make_record(fold=0, accuracy=0.6)
    b = make_record(fold=1, accuracy=0.7)
    c = make_record(method="scratch", sources=(), fold=0, accuracy=0.5, kind="real")
    write_records([a, b])
    write_records([c], sub="real")
    write_records([a], sub="real")  # the same cell committed too: read once
    (results_dir() / "runs" / "notes.json").write_text(json.dumps({"not": "a record"}))
    (results_dir() / "runs" / "broken.json").write_text("{")
    assert results_dir().joinpath("runs").resolve() in default_search_path()
    frame = load_records()
    assert len(frame) == 3
    assert set(frame["data_kind"]) == {"synthetic", "real"}
    assert frame.loc[frame.method == "scratch", "sources"].item() == ""
    assert "acc_anger" in frame.columns
    assert len(load_records(method="transfer")) == 2
    assert len(load_records(experiment="table1_visual_transfer", fold=[1])) == 1
    assert len(load_records(results_dir() / "real")) == 2
    with pytest.raises(ConfigError, match="no such column"):
        load_records(colour="red")


def test_load_records_of_an_empty_folder(tmp_path):
    frame = load_records(tmp_path / "nothing")
    assert frame.empty and "accuracy" in frame.columns
    assert summarise(frame).empty


def test_summarise_means_and_sds_over_folds_and_seeds():
    records = [make_record(fold=f, seed=s, accuracy=acc)
               for (f, s), acc in zip([(0, 0), (1, 0), (0, 1), (1, 1)], [0.5, 0.7, 0.6, 0.8])]
    records.append(make_record(protocol="speaker", fold=0, accuracy=0.3))  # a separate row
    summary = summarise(records)
    assert len(summary) == 2
    paper = summary[summary.protocol == "paper"].iloc[0]
    assert paper["accuracy_mean"] == pytest.approx(0.65)
    assert paper["accuracy_sd"] == pytest.approx(np.std([0.5, 0.7, 0.6, 0.8], ddof=1))
    assert paper["utt_accuracy_mean_prob_mean"] == pytest.approx(0.65)  # one segment per utterance
    assert paper["acc_anger_mean"] == pytest.approx(0.65)
    assert paper["n_records"] == 4 and paper["folds_done"] == 2 and paper["seeds"] == [0, 1]
    speaker = summary[summary.protocol == "speaker"].iloc[0]
    assert np.isnan(speaker["accuracy_sd"])
    # the same rows from the DataFrame of load_records
    write_records(records)
    assert summarise(load_records())["accuracy_mean"].tolist() == summary["accuracy_mean"].tolist()


def test_summarise_keeps_real_and_synthetic_apart():
    summary = summarise([make_record(kind="real", accuracy=0.9), make_record(kind="synthetic", fold=1)])
    assert sorted(summary["data_kind"]) == ["real", "synthetic"]


def test_paper_values_are_the_papers_tables():
    t1 = {e["model"]: e for e in PAPER_VALUES["table1"]}
    assert t1["V_eNTER→SAV"]["per_class"]["disgust"] == 0.96
    assert t1["V_SAV→eNTER"]["per_class"]["disgust"] == 0.81
    t3 = {e["model"]: e for e in PAPER_VALUES["table3"]}
    assert t3["A_eNTER→SAV"]["overall"] == 0.71 and t3["A_eNTER→SAV"]["per_class"]["disgust"] == 0.56
    assert t3["A_eNTER+SAV→EMO"]["per_class"]["disgust"] == 1.0
    overall = paper_values("table4").set_index("model")["overall"]
    assert overall["A_eNTER→SAV"] == 0.85 and overall["A_EMO"] == 0.89
    assert overall["Fine-tuning [46] (trained on audio eNTERFACE+SAVEE)"] == 0.83
    t2 = paper_values("table2").set_index("model")["overall"]
    assert t2["V_SAV"] == 0.89 and t2["V_eNTER"] == 0.88
    with pytest.raises(ConfigError, match="unknown table"):
        paper_values("table9")


def test_paper_comparison_puts_paper_values_beside_ours():
    records = [make_record(fold=0, accuracy=0.6), make_record(fold=1, accuracy=0.64)]
    table = paper_comparison(summarise(records), "table1")
    assert len(table) == 2  # the reproduced row, and the one not run
    ours = table[table["Target"] == "savee"].iloc[0]
    assert ours["Overall (paper)"] == 0.94
    assert ours["Overall (ours)"] == "0.62 ± 0.03"
    assert ours["Dis (paper)"] == 0.96 and ours["Dis (ours)"] == "0.62 ± 0.03"
    assert ours["Data"] == "synthetic" and ours["Protocol"] == "paper"
    assert ours["Seeds"] == "0" and ours["Folds"] == "2/2" and ours["Profile"] == "smoke"
    assert ours["Δ overall"] == pytest.approx(-0.32)
    missing = table[table["Target"] == "enterface"].iloc[0]
    assert missing["Overall (ours)"] == "—" and "not run" in missing["Note"]
    assert list(table.columns[:6]) == ["Model", "Method", "Target", "Modality", "Sources", "Overall (paper)"]
    with pytest.raises(ConfigError, match="unknown table"):
        paper_comparison(summarise(records), "table7")


def test_paper_comparison_matches_the_real_stand_in_for_emodb():
    record = make_record(method="transfer", sources=("ravdess",), target="emodb", modality="audio", kind="real",
                         experiment="real_recordings")
    table = paper_comparison(summarise([record]), "table4")
    row = table[table["Model"] == "A_eNTER+SAV→EMO"].iloc[0]
    assert row["Sources"] == "ravdess" and row["Data"] == "real"
    assert "stands in" in row["Note"]
    assert "stands in" not in " ".join(paper_comparison(summarise([record]), "table4", stand_ins=False)["Note"])


def test_rendering_helpers():
    table = paper_comparison(summarise([make_record()]), "table1")
    text = to_markdown(table)
    assert text.splitlines()[0].startswith("| Model |")
    assert "0.94" in text and "0.60" in text
    html = style_table(table).to_html()
    assert "0.94" in html
    assert format_mean_sd(float("nan"), float("nan")) == "—"
    assert format_mean_sd(0.5, float("nan")) == "0.50"


def test_learning_curves_frame():
    frame = learning_curves_frame([make_record(), make_record(method="scratch", sources=())])
    assert len(frame) == 8
    assert frame["val_accuracy"].isna().sum() == 4
    assert set(frame["method"]) == {"transfer", "scratch"}


def test_paper_comparison_uses_the_tables_own_experiments_by_default():
    own = make_record(accuracy=0.6)
    elsewhere = make_record(accuracy=0.2, experiment="convergence")
    summary = summarise([own, elsewhere])
    table = paper_comparison(summary, "table1")
    assert table[table["Target"] == "savee"]["Overall (ours)"].tolist() == ["0.60"]
    everything = paper_comparison(summary, "table1", experiments="all")
    assert sorted(everything[everything["Target"] == "savee"]["Overall (ours)"]) == ["0.20", "0.60"]


def test_runs_the_paper_does_not_report_follow_its_rows_with_no_paper_value():
    """A chapter run on corpora of the reader's choosing (``<experiment>-custom``) is shown, not dropped."""
    paper_row = make_record(accuracy=0.6)
    own = make_record(method="finetune", accuracy=0.4, experiment="table1_visual_transfer-custom")  # Table 1: transfer
    elsewhere = make_record(accuracy=0.3, experiment="convergence")  # another chapter's run: left out
    table = paper_comparison(summarise([paper_row, own, elsewhere]), "table1")
    extra = table[table["Model"] == "not in the paper"]
    assert extra[["Method", "Sources", "Overall (ours)"]].values.tolist() == [["finetune", "enterface", "0.40"]]
    assert extra["Overall (paper)"].isna().all() and extra["Δ overall"].isna().all()
    assert table.index[table["Model"] == "not in the paper"].min() > table.index[table["Model"] != "not in the paper"].max()


def test_pooled_confusion_sums_folds():
    from mtl.results import pooled_confusion

    a, b = make_record(fold=0), make_record(fold=1)
    for r, counts in ((a, [[2, 1], [0, 3]]), (b, [[1, 0], [1, 1]])):
        r["metrics"]["confusion"], r["metrics"]["classes"] = counts, ["anger", "fear"]
    total, classes = pooled_confusion([a, b])
    assert total.tolist() == [[3, 1], [1, 4]] and classes == ["anger", "fear"]
    method, target = a["method"], a["target"]
    assert pooled_confusion([a, b], method=method, target=target, sources=a["sources"][::-1])[0].sum() == 9
    with pytest.raises(ConfigError, match=f"no records of finetune .*->{target} among 2"):
        pooled_confusion([a, b], method="finetune", target=target, sources=a["sources"])
    b["metrics"]["classes"] = ["anger", "sadness"]
    with pytest.raises(ConfigError, match="different classes"):
        pooled_confusion([a, b])


def test_a_config_field_added_at_its_default_keeps_the_summary_group():
    """Groups hash only the differences from the paper, result-neutral fields left out."""
    old = make_record(fold=0, accuracy=0.6)
    new = make_record(fold=1, accuracy=0.7)
    new["config"] = {**new["config"], "checkpoint_every": 99}  # result-neutral
    later = make_record(fold=0, seed=1, accuracy=0.8)
    from mtl.config import paper_defaults

    with pytest.MonkeyPatch.context() as patch:  # a later version whose Config has one more field
        patch.setattr("mtl.config.paper_defaults", lambda: {**paper_defaults(), "a_later_option": "off"})
        later["config"] = {**later["config"], "a_later_option": "off"}
        summary = summarise([old, new, later])
        assert len(summary) == 1 and summary["n_records"].item() == 3
        later["config"]["a_later_option"] = "on"
        assert len(summarise([old, new, later])) == 2

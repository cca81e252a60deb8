"""What the notebooks call (mtl.chapters): parameter checks and views of committed records."""

from __future__ import annotations

import pytest

from mtl.chapters import committed_real_records, plan_notebook
from mtl.errors import ConfigError, MissingDataError
from mtl.io import write_json

from test_results import make_record


def test_plan_notebook_reads_runs_through_the_one_run_spec_parser():
    plan = plan_notebook("table4_speech_baselines", corpora=["savee + enterface -> emodb"], profile="smoke",
                         data="synthetic")
    assert plan.pairs == ((("enterface", "savee"), "emodb"),)
    with pytest.raises(ConfigError, match="no source corpus"):
        plan_notebook("table4_speech_baselines", corpora=["->emodb"], profile="smoke")


def test_plan_notebook_stops_on_a_missing_data_root_naming_it(tmp_path):
    with pytest.raises(MissingDataError, match="data_root '.*nowhere' does not exist"):
        plan_notebook("table4_speech_baselines", data_root=tmp_path / "nowhere")


def test_committed_real_records_keep_the_paper_experiments_on_real_data(tmp_path):
    for experiment, kind, key in (("real_recordings", "real", "a"), ("ablation", "real", "b"),
                                  ("real_recordings", "synthetic", "c")):
        write_json(tmp_path / experiment / f"{key}.json", make_record(experiment=experiment, kind=kind, key=key))
    real = committed_real_records(tmp_path)
    assert real.frame["cell_key"].tolist() == ["a"]
    assert committed_real_records(tmp_path, experiments=["ablation"]).frame["cell_key"].tolist() == ["b"]
    with pytest.raises(MissingDataError, match="records_dir .* does not exist"):
        committed_real_records(tmp_path / "none")


def test_settings_table_shows_the_data_root_as_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path))  # restored afterwards: plan_notebook sets it
    plan = plan_notebook(None, data_root=tmp_path, profile="smoke", data="synthetic", corpora=["savee"])
    settings = dict(plan.settings().itertuples(index=False))
    assert settings["data root"] == "$MTL_DATA_ROOT"
    assert str(tmp_path) not in plan._repr_html_()
    assert settings["generations (G)"].startswith(f"{plan.config.generations} (paper: 200)")


def test_each_distinct_log_message_is_said_once(monkeypatch, capsys):
    import logging

    from mtl.chapters import log_each_message_once

    logger = logging.getLogger("mtl")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a notebook kernel: logging not configured
    monkeypatch.setattr(logger, "handlers", [])
    handler = log_each_message_once()
    assert log_each_message_once() is handler  # installed once
    for _ in range(6):
        logging.getLogger("mtl.corpora").warning("enterface: %d file(s) missing", 3)
    logging.getLogger("mtl.corpora").warning("savee: 1 file(s) missing")
    assert capsys.readouterr().err.splitlines() == ["enterface: 3 file(s) missing", "savee: 1 file(s) missing"]
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])
    monkeypatch.setattr(logger, "handlers", [])
    assert log_each_message_once() is None  # configured logging is left alone


def test_learning_curve_and_pathway_findings():
    from mtl.chapters import learning_curve_finding, pathway_finding

    finding = str(learning_curve_finding([make_record(), make_record(method="scratch", sources=())]))
    assert "transfer 0.20 after generation 2" in finding and "2 curves of 2 points each" in finding
    assert "No held-out accuracy" in str(learning_curve_finding([]))
    record = make_record()
    record["pathways"] = {"source": {"best": [[1, 2], [3], [4, 5]]},
                          "target": {"frozen": [[1, 2], [3], [4, 5]], "best": [[1, 7], [8], [4, 9]]}}
    assert "uses 2 + 1 + 2 modules" in str(pathway_finding(record))
    assert "2 of them modules of the frozen pathway" in str(pathway_finding(record))

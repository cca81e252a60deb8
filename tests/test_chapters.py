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

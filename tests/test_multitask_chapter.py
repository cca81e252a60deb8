"""The chapter's grid: protocols and seeds per profile, speaker folds, the sweep's route, paired tests with gaps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtl.config import PROTOCOLS, get_profile
from mtl.errors import ConfigError
from mtl.multitask import chapter
from mtl.multitask.chapter import (PROTOCOLS_RUN, SEEDS_RUN, paired_tests, pathnet_coverage, plan_related, record_rows,
                                   sweep_cells)


def test_a_profile_runs_its_protocols_and_seeds_when_the_notebook_leaves_them_at_none():
    assert plan_related("smoke").protocols == PROTOCOLS_RUN["smoke"] == ("paper",)
    plan = plan_related("default", protocol=["paper", "utterance"])
    assert plan.protocols == ("paper", "utterance") and plan.seeds == SEEDS_RUN["default"] == (0, 1, 2)
    assert len(plan.cells) == 2 * 2 * 5 * 3 * 3
    assert set(PROTOCOLS) == {"paper", "utterance", "speaker"} and "default" not in PROTOCOLS_RUN


def test_speaker_folds_come_from_a_stored_record_before_any_data_is_loaded(monkeypatch):
    def no_loading(cell):
        raise AssertionError("the target was loaded to count its speakers")

    monkeypatch.setattr(chapter, "protocol_folds", no_loading)
    monkeypatch.setattr(chapter, "stored_record", lambda cell: Path("stored.json"))
    monkeypatch.setattr(chapter, "read_record", lambda path: {"n_folds": 4})
    plan = plan_related("default", corpora="enterface->savee", protocol="speaker", seeds=0)
    assert plan.folds == (0, 1, 2, 3) and len(plan.cells) == 4 * 3
    assert [c.method for c in plan.cells[:3]] == ["multitask", "emotion_only", "au_only"]
    assert {c.pathnet.fold for c in plan.cells} == {c.fold for c in plan.cells} == {0, 1, 2, 3}

    monkeypatch.setattr(chapter, "stored_record", lambda cell: None)  # nothing stored: the target is counted
    monkeypatch.setattr(chapter, "protocol_folds", lambda cell: 3)
    assert plan_related("default", corpora="enterface->savee", protocol="speaker").folds == (0, 1, 2)
    assert plan_related("default", corpora="enterface->savee", protocol="paper").folds == (0, 1, 2, 3, 4)


def test_the_sweep_lists_the_chapters_cells_and_takes_its_settings():
    assert [c.key for c in sweep_cells("smoke")] == [c.key for c in plan_related("smoke").cells]
    cells = sweep_cells("default", protocols=["utterance"], seeds=[1], folds=[2, 4], corpora=["savee->enterface"],
                        parameters={"steps": 7, "au_threshold": 0.5, "folds": 5})
    assert len(cells) == 2 * 3 and {c.fold for c in cells} == {2, 4} and {c.seed for c in cells} == {1}
    assert {c.target for c in cells} == {"enterface"} and {c.protocol for c in cells} == {"utterance"}
    assert dict(cells[0].training)["steps"] == 7 and cells[0].au_threshold == 0.5
    with pytest.raises(ConfigError, match="unknown parameter.*generations"):
        sweep_cells("smoke", parameters={"generations": 4})
    with pytest.raises(ConfigError, match=r"fold\(s\) \[3\] are not among"):
        sweep_cells("smoke", folds=[3])


def test_mtl_sweep_routes_related_method_to_the_chapters_cells(capsys):
    from mtl.cli import EXIT_USAGE, main

    common = ["sweep", "--experiments", "related_method", "--profile", "smoke", "--protocols", "paper", "utterance"]
    assert main([*common, "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "12 cells, " in listing and " au_only " in listing and " utterance " in listing  # some may be done
    assert main([*common, "--methods", "transfer", "--dry-run"]) == EXIT_USAGE
    assert "takes none of --methods" in capsys.readouterr().err


def _record(method, seed, fold, accuracy, protocol="paper"):
    metrics = {"accuracy": accuracy, "uar": accuracy, "au": {"mean_f1": 0.3, "f1": {}}, "compound": {}}
    record = {"metrics": metrics, "target": "savee", "protocol": protocol, "seed": seed, "fold": fold,
              "timings": {"target_seconds": 1.0}, "method": "transfer" if method == "pathnet" else method,
              "sources": ["enterface"], "n_train": 128, "config": get_profile("smoke").to_dict()}
    if method != "pathnet":
        record.update(auxiliary={"corpus": "enterface"}, training={"steps": 40})
    return record


def test_paired_tests_pair_seeds_and_folds_and_show_a_missing_baseline():
    records = [_record(m, seed, fold, 0.5 + (0.1 if m == "multitask" else 0) + 0.01 * fold * seed)
               for m in ("multitask", "emotion_only") for seed in (0, 1) for fold in (0, 1, 2)]
    records += [_record("pathnet", 0, fold, 0.7) for fold in (0, 1, 2)]  # PathNet: seed 0 only
    records += [_record(m, 0, 0, 0.4, "speaker") for m in ("multitask", "emotion_only")]
    tests = paired_tests(record_rows(records)).set_index(["protocol", "score", "multi-task against"])
    against_emotion = tests.loc[("paper", "emotion accuracy", "emotion only")]
    assert against_emotion["pairs"] == 6 and against_emotion["seeds"] == "0, 1"
    assert against_emotion["mean difference"] == pytest.approx(0.1)
    against_pathnet = tests.loc[("paper", "emotion accuracy", "PathNet transfer")]
    assert against_pathnet["pairs"] == 3 and against_pathnet["seeds"] == "0"
    missing = tests.loc[("speaker", "emotion accuracy", "PathNet transfer")]
    assert missing["pairs"] == 0 and missing["seeds"] == "–" and missing["t-test p"] == "–"
    assert tests.loc[("speaker", "AU mean F1 (target)", "AUs only"), "pairs"] == 0
    assert isinstance(tests, pd.DataFrame) and len(tests) == 2 * 5


def test_pathnet_coverage_names_the_seeds_each_protocol_has_and_a_protocol_without_any():
    records = [_record("multitask", seed, fold, 0.5) for seed in (0, 1) for fold in (0, 1)]
    records += [_record("pathnet", 0, fold, 0.7) for fold in (0, 1)]
    records += [_record("multitask", seed, 0, 0.4, "speaker") for seed in (0, 1)]
    coverage = pathnet_coverage(record_rows(records)).set_index("protocol")
    assert coverage.loc["paper", ["PathNet seeds", "PathNet runs", "multi-task seeds", "multi-task runs"]].tolist() \
        == ["0", 2, "0, 1", 4]
    assert coverage.loc["speaker", ["PathNet seeds", "PathNet runs"]].tolist() == ["–", 0]

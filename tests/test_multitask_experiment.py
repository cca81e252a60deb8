"""The multi-task cell kind and the chapter's plan and tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mtl.cells import make_cell
from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.multitask.chapter import paired_tests, per_au_table, plan_related, record_rows, results_table
from mtl.multitask.compound import signature_hash
from mtl.multitask.experiment import EXPERIMENT, au_only_key, make_multitask_cell, record_multitask_cell
from mtl.records import RECORD_FIELDS, read_record
from mtl.runner import checkpoint_path, outer_split, run


def test_a_cell_shares_the_folds_classes_and_data_of_the_pathnet_transfer_cell():
    config = get_profile("smoke")
    cell = make_multitask_cell("multitask", "savee", "enterface", config, fold=1)
    assert cell.pathnet.key == make_cell("table1_visual_transfer", "transfer", "savee", ("enterface",), "video",
                                         config, fold=1).key
    assert (cell.target, cell.auxiliary, cell.sources, cell.fold) == ("savee", "enterface", ("enterface",), 1)
    assert make_multitask_cell("emotion_only", "savee", "enterface", config).sources == ()
    keys = {make_multitask_cell(m, "savee", "enterface", config).key for m in ("multitask", "emotion_only", "au_only")}
    keys.add(make_multitask_cell("multitask", "savee", "enterface", config, training={"steps": 7}).key)
    cell = make_multitask_cell("multitask", "savee", "enterface", config)
    assert cell.compound_signatures == signature_hash()  # a corrected compound signature computes the cell again
    keys.add(dataclasses.replace(cell, compound_signatures="0" * 16).key)
    assert len(keys) == 5
    with pytest.raises(ConfigError, match="method must be one of multitask"):
        make_multitask_cell("transfer", "savee", "enterface", config)


@pytest.fixture(scope="module")
def smoke_records(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        base = tmp_path_factory.mktemp("multitask")
        patch.setenv("MTL_CACHE_DIR", str(base / "cache"))
        patch.setenv("MTL_RESULTS_DIR", str(base / "results"))
        training = {"width": 2, "blocks": (1,), "steps": 3, "record_every": 3, "aux_samples": 32, "compound_people": 1}
        cells = [make_multitask_cell(m, "savee", "enterface", get_profile("smoke"), training=training)
                 for m in ("multitask", "au_only")]
        records = [run(cell) for cell in cells]
        stored = read_record(cells[0].record_path)
        again = run(cells[0])  # stored: read, not recomputed
        other_fold = make_multitask_cell("au_only", "savee", "enterface", get_profile("smoke"), protocol="utterance",
                                         fold=1, training=training)
        shared = au_only_key(cells[1], "synthetic", list(records[1]["metrics"]["au"]["f1"]))
        trained = checkpoint_path(shared, "au_only.pt").stat().st_mtime_ns
        records.append(run(other_fold))
        assert checkpoint_path(shared, "au_only.pt").stat().st_mtime_ns == trained  # read, not trained again
        yield cells, records, outer_split(cells[0].pathnet), stored, again


def test_a_cell_runs_through_the_runner_into_the_one_record_layout(smoke_records):
    cells, (multitask, au_only, _), split, stored, again = smoke_records
    assert stored["cell_key"] == cells[0].key and again == stored
    assert record_multitask_cell(stored).key == stored["cell_key"]
    assert record_multitask_cell(au_only).pathnet.key == au_only["pathnet_cell_key"]
    assert set(RECORD_FIELDS) <= set(multitask) and multitask["experiment"] == EXPERIMENT
    assert multitask["method"] == "multitask" and multitask["n_test"] == len(split.held_out)
    assert multitask["n_train"] == len(split.train) + 32 and au_only["n_train"] == 32
    assert multitask["auxiliary"]["corpus"] == "enterface" and multitask["pathnet_cell_key"] == cells[0].pathnet.key
    assert 0 <= multitask["metrics"]["accuracy"] <= 1 and au_only["metrics"]["accuracy"] is None
    assert set(multitask["metrics"]["au"]["f1"]) == {"AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU12", "AU15",
                                                     "AU16", "AU20", "AU23", "AU26"}
    assert multitask["metrics"]["compound"]["n"] == 15 and "accuracy_au_emotion" not in au_only["metrics"]["compound"]
    assert multitask["compound_signatures"] == signature_hash()


def test_an_au_only_network_is_trained_once_for_every_fold_and_protocol_of_its_seed(smoke_records):
    _, (_, au_only, other_fold), _, _, _ = smoke_records
    assert (other_fold["protocol"], other_fold["fold"]) == ("utterance", 1) and other_fold["cell_key"] != au_only["cell_key"]
    assert other_fold["learning_curve"] == au_only["learning_curve"]  # the same training
    assert other_fold["timings"]["target_seconds"] == au_only["timings"]["target_seconds"] > 0
    assert other_fold["metrics"]["au"] != au_only["metrics"]["au"]  # scored on its own held-out rows
    assert other_fold["metrics"]["compound"] == au_only["metrics"]["compound"]  # the same network, the same faces


def test_the_chapters_plan_checks_its_parameters():
    plan = plan_related("smoke")
    assert len(plan.cells) == 6 and plan.folds == (0,) and "enterface AUs" in plan.settings()["value"][1]
    assert plan_related("default", protocol="paper").folds == (0, 1, 2, 3, 4)
    assert len(plan_related("smoke", corpora="enterface->savee", protocol=["paper", "utterance"]).cells) == 6
    assert plan_related("smoke", overrides={"steps": 9, "au_threshold": 0.5}).cells[0].au_threshold == 0.5
    for bad, message in ((dict(protocol="random"), "protocol"), (dict(corpora="enterface+emodb->savee"), "one"),
                         (dict(overrides={"epochs": 3}), "unknown setting.*epochs"), (dict(data="mine"), "data")):
        with pytest.raises(ConfigError, match=message):
            plan_related("smoke", **bad)


def _record(method, fold, accuracy, f1, pathnet=False):
    metrics = {"accuracy": accuracy, "uar": accuracy, "au": {"mean_f1": f1, "f1": {"AU1": f1}},
               "compound": {"accuracy_au": 0.1, "chance": 1 / 15}}
    record = {"metrics": metrics, "target": "savee", "protocol": "paper", "seed": 0, "fold": fold,
              "timings": {"target_seconds": 1.0}, "method": "transfer" if pathnet else method,
              "sources": ["enterface"], "n_train": 128, "config": get_profile("smoke").to_dict()}
    if not pathnet:
        record.update(auxiliary={"corpus": "enterface"}, training={"steps": 40})
    return record


def test_tables_and_paired_tests_from_hand_made_records():
    records = [_record("multitask", f, 0.5 + 0.1 * f, 0.4) for f in range(3)]
    records += [_record("emotion_only", f, 0.4 + 0.1 * f, None) for f in range(3)]
    records += [_record("au_only", f, None, 0.3 + 0.01 * f) for f in range(3)]
    records += [_record(None, f, 0.6, None, pathnet=True) for f in range(3)]
    rows = record_rows(records)
    table = results_table(rows)
    assert list(table["method"]) == ["multi-task (emotion + AUs)", "emotion only", "AUs only", "PathNet transfer"]
    assert table["emotion accuracy"][0] == "0.60 ± 0.10" and table["emotion accuracy"][2] == "–"
    assert list(table["SGD steps"]) == [40, 40, 40, 3 * 2 * 2]  # smoke PathNet: G=3, K=2, T=2
    tests = paired_tests(rows).set_index(["score", "multi-task against"])
    assert tests.loc[("emotion accuracy", "emotion only"), "mean difference"] == pytest.approx(0.1)
    assert tests.loc[("emotion accuracy", "emotion only"), "t-test p"] == "–"  # every difference equal
    assert tests.loc[("emotion accuracy", "PathNet transfer"), "pairs"] == 3
    assert tests.loc[("AU mean F1 (target)", "AUs only"), "mean difference"] == pytest.approx(0.09)
    au = per_au_table(rows)
    assert au.loc[("enterface->savee", "AUs only"), "AU1"] == pytest.approx(0.31)
    assert np.isnan(rows.loc[rows["method"] == "pathnet", "au_f1"]).all() and isinstance(rows, pd.DataFrame)

"""mtl.records: the one layout, the builder, validation, and the committed records (keys, paths, migration)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mtl.cells import make_cell
from mtl.config import get_profile
from mtl.evaluation import evaluate
from mtl.io import read_json, stable_hash, write_json
from mtl.paths import project_root
from mtl.records import (RECORD_FIELDS, RECORD_SCHEMA, RecordError, RunResult, build_record, committed_folders,
                         migrate_folder, read_record, record_cell, reuse_stored, stored_record, upgrade_record,
                         validate_record, write_record)
from mtl.results import load_records

SMOKE = get_profile("smoke")
COMMITTED = project_root() / "results" / "real"
COUNTS = {"ablation": 120, "ablation-nested": 120, "real_recordings": 70, "where089-reference": 180, "where089-pathnet": 110, "where089-nested": 270}
"""Committed records per experiment folder (the chapters read these)."""


def _committed() -> list[tuple[Path, dict]]:
    return [(p, read_json(p)) for p in sorted(COMMITTED.rglob("*.json")) if "cell_key" in read_json(p)]


def _result(**changes) -> RunResult:
    classes = ["anger", "fear"]
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]])
    fields = dict(metrics=evaluate(y, proba, ["u1", "u1", "u2", "u3"], classes), n_train=8, n_test=4, n_folds=2,
                  provenance={"kind": "synthetic", "copy": "synthetic savee", "root": "$MTL_CACHE_DIR/synthetic/s"},
                  target_seconds=1.5, learning_curve=[{"generation": 1, "val_accuracy": float("nan")}])
    return RunResult(**{**fields, **changes})


def test_the_builder_writes_every_field_of_the_layout(tmp_path):
    cell = make_cell("unit", "scratch", "savee", (), "audio", SMOKE, classes=["anger", "fear"], data="synthetic")
    record = build_record(cell, _result(notes=("a note",)))
    assert list(record)[:len(RECORD_FIELDS)] == list(RECORD_FIELDS) and record["schema"] == RECORD_SCHEMA
    assert (record["cell_key"], record["experiment"], record["classes"]) == (cell.key, "unit", ["anger", "fear"])
    assert record["metrics"]["accuracy"] == 0.75 and record["n_folds_requested"] == SMOKE.folds
    assert record["learning_curve"][0]["val_accuracy"] is None  # NaN stored as null
    assert record["source"] is None and record["pathways"] == {"target": None, "source": None}
    assert record["notes"] == ["a note"] and record["data"]["kinds"] == {"savee": "synthetic"}
    inner = build_record(cell, _result(), key="k1", experiment="nested", extra={"stage": "inner", "inner_fold": 1})
    assert (inner["cell_key"], inner["experiment"], inner["stage"]) == ("k1", "nested", "inner")
    with pytest.raises(RecordError, match="would replace fields"):
        build_record(cell, _result(), extra={"metrics": {}})
    path = tmp_path / "r.json"
    write_record(path, record)
    assert read_record(path) == json.loads(json.dumps(record))


def test_a_stored_record_is_found_where_it_is_and_copied_to_the_cell(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")
    cell = make_cell("table3_speech_transfer", "scratch", "savee", (), "audio", SMOKE, classes=["anger", "fear"],
                     data="synthetic")
    assert committed_folders() == [] and stored_record(cell) is None and reuse_stored(cell) is None
    record = build_record(cell, _result())
    committed = tmp_path / "checkout" / "results" / "default" / "convergence" / f"{cell.key}.json"
    write_record(committed, {**record, "experiment": "convergence"})  # committed for another chapter
    assert committed_folders() == [committed.parent.parent] and stored_record(cell) == committed
    reused = reuse_stored(cell)
    assert reused["experiment"] == "table3_speech_transfer" and reused["reused_from"] == "results/default/convergence"
    assert reused["metrics"] == record["metrics"] and stored_record(cell) == cell.record_path
    assert read_record(cell.record_path) == reused  # from now on a plain file check


def test_validation_names_what_is_wrong(tmp_path):
    with pytest.raises(RecordError, match="not a result record"):
        validate_record({"not": "a record"})
    with pytest.raises(RecordError, match="unknown layout 9"):
        validate_record({"schema": 9, "cell_key": "k"})
    with pytest.raises(RecordError, match="lacks experiment, method"):
        validate_record({"schema": RECORD_SCHEMA, "cell_key": "k"})


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed records")
def test_committed_records_keep_their_keys_counts_and_no_machine_paths():
    committed = _committed()
    folders = {}
    for path, record in committed:
        folders[path.parent.name] = folders.get(path.parent.name, 0) + 1
        assert validate_record(record)["schema"] == RECORD_SCHEMA and path.stem == record["cell_key"]
        cell = record_cell(record)
        if "inner_fold" in record:  # an inner-fold run: keyed by its outer cell and its inner fold
            assert cell.key == record["outer_cell_key"], path
            assert stable_hash({"stage": "inner", "outer": cell.key, "inner_fold": record["inner_fold"],
                                "n_inner": record["n_inner_folds"]}) == record["cell_key"], path
        elif "outer_cell_key" in record:  # a reference method on a cell's folds, or a cell with its GA diagnostics
            from mtl.reference import DiagnosedCell, ReferenceCell

            wrapper = ReferenceCell(cell, record["method"]) if record["stage"] == "reference" else DiagnosedCell(cell)
            assert (cell.key, wrapper.key) == (record["outer_cell_key"], record["cell_key"]), path
        else:
            assert cell.key == record["cell_key"], path
        if (record.get("source") or {}).get("key"):
            assert cell.source_key == record["source"]["key"], path
        for provenance in record["data"]["provenance"].values():
            assert provenance["root"].startswith("$MTL_DATA_ROOT/"), path
        assert '"/' not in json.dumps(record), path  # no absolute path anywhere
    assert folders == COUNTS
    frame = load_records(COMMITTED)
    assert frame.groupby("experiment").size().to_dict() == COUNTS


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed records")
def test_migration_of_first_layout_records_changes_no_number(tmp_path):
    """Records as layout 1 wrote them (absolute roots, a key of the old formula) come back as committed."""
    folder = tmp_path / "real_recordings"
    folder.mkdir()
    # Records that layout 1 wrote (they keep the key it gave them); later ones never had another layout.
    committed = [r for p, r in _committed() if p.parent.name == "real_recordings" and "former_cell_key" in r][:3]
    assert len(committed) == 3
    for record in committed:
        old = json.loads(json.dumps(record))
        old["schema"] = 1
        for corpus, provenance in old["data"]["provenance"].items():
            provenance["root"] = f"/some/machine/data/{provenance['root'].rsplit('/', 1)[-1]}"
        stale = old.pop("former_cell_key", "0" * 16)
        old["cell_key"] = stale
        if old["source"] and "former_key" in old["source"]:
            old["source"]["key"] = old["source"].pop("former_key")
        write_json(folder / f"{stale}.json", old)
    (folder / "notes.json").write_text('{"not": "a record"}')
    written = migrate_folder(folder)
    assert sorted(p.name for p in written) == sorted(f"{r['cell_key']}.json" for r in committed)
    for record in committed:
        migrated = validate_record(read_json(folder / f"{record['cell_key']}.json"))  # digest checked, removed
        assert {k: v for k, v in migrated.items() if k != "created"} == {k: v for k, v in record.items()
                                                                         if k != "created"}
    assert migrate_folder(folder) == []  # once
    assert read_json(folder / "notes.json") == {"not": "a record"}


def test_upgrade_fills_the_fields_an_old_kind_left_out():
    old = {"schema": 1, "cell_key": "k", "config": {"folds": 5},
           "data": {"kinds": {"emodb": "real"}, "provenance": {"emodb": {"kind": "real", "root": "/x/emodb",
                                                                          "copy": "real EMO-DB at /x/emodb"}}}}
    new = upgrade_record(old)
    assert new["data"]["provenance"]["emodb"] == {"kind": "real", "root": "$MTL_DATA_ROOT/emodb",
                                                  "copy": "real EMO-DB at $MTL_DATA_ROOT/emodb"}
    assert (new["notes"], new["pathways"], new["n_folds_requested"], new["schema"]) == ([], None, 5, RECORD_SCHEMA)

"""Finding and loading the ablation's records (mtl.ablation.records), on hand-made records."""

from __future__ import annotations

import pandas as pd

from ablation_records import SCRATCH, ablation_cell, own_results, record, write  # noqa: F401  (own_results: autouse fixture)
from mtl.ablation import records
from mtl.corpora import corpus_card


def test_records_get_factor_columns_and_one_id_for_the_rest_of_their_configuration():
    write([record("scratch", 0, 0.5), record("scratch", 1, 0.5, module_type="conv"),
           record("scratch", 2, 0.5, checkpoint_every=7), record("scratch", 3, 0.5, lr=0.01)])
    found = records.load_ablation_records().set_index("fold")
    assert found["module_type"].tolist() == ["linear", "conv", "linear", "linear"]
    # a factor and a result-neutral field leave the id alone; any other field changes it
    assert found.loc[0, "base_id"] == found.loc[1, "base_id"] == found.loc[2, "base_id"] != found.loc[3, "base_id"]
    assert found["inner_fold"].isna().all() and len(records.outer_only(found)) == 4


def test_anchor_records_and_overview_name_what_each_result_was_computed_with():
    anchors = [record(m, f, 0.5, experiment="anchor_test", classes=corpus_card("emodb").classes)
               for m in ("scratch", "finetune") for f in range(2)]
    write(anchors)
    found = records.anchor_records(["anchor_test"])
    assert found["method"].tolist() == ["scratch", "scratch"]  # fine-tuning is no ablation setting
    write([record("scratch", f, a) for f, a in enumerate(SCRATCH)])
    overview = records.records_overview(pd.concat([records.load_ablation_records(), found], ignore_index=True))
    assert overview[["experiment", "runs", "folds", "seeds"]].values.tolist() == [["ablation", 5, 5, "0"],
                                                                                  ["anchor_test", 2, 2, "0"]]
    assert set(overview["data"]) == {"real (content abc)"} and set(overview["stage"]) == {"outer"}


def test_a_damaged_record_is_passed_over_and_its_cell_shows_as_not_done(caplog):
    write([record("scratch", 0, 0.5), record("scratch", 1, 0.5)])
    cells = [ablation_cell("scratch", 0), ablation_cell("scratch", 1)]
    damaged = cells[1].record_path
    damaged.write_bytes(damaged.read_bytes()[:100])  # a write cut short
    assert records.find_record(cells[0], records.record_index()) == cells[0].record_path
    assert records.find_record(cells[1], records.record_index()) is None
    assert damaged.name in caplog.text  # reported by name, not dropped silently
    assert records.load_ablation_records(cells)["fold"].tolist() == [0]

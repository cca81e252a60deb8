"""Every committed real-data record is still read, with the numbers it was committed with.

``tests/data/committed_records.json`` is a snapshot of ``results/real/``
taken before the experiment layer was restructured: per folder, the number of
record files, of records read and of summary groups, and every record's
metrics by cell key. A refactoring that loses a record, drops it from a
summary group or changes one of its numbers fails here. Records re-keyed by
the migration to today's key formula (:func:`mtl.records.migrate_folder`)
are found by the key they had, kept as ``former_cell_key``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from mtl.io import read_json
from mtl.results import METRIC_COLUMNS, load_records, summarise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "real"
SNAPSHOT = json.loads((Path(__file__).parent / "data" / "committed_records.json").read_text(encoding="utf-8"))


def _number(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


@pytest.mark.parametrize("folder", sorted(SNAPSHOT))
def test_committed_records_are_read_with_their_numbers(folder):
    expected = SNAPSHOT[folder]
    records = load_records(RESULTS / folder)
    assert len(list((RESULTS / folder).glob("*.json"))) == expected["n_files"]
    assert len(records) == expected["n_records"]
    assert len(summarise(records)) == expected["n_summary_rows"], "summary groups split or merged"
    former = {}
    for path in (RESULTS / folder).glob("*.json"):
        record = read_json(path)
        former[record["cell_key"]] = record.get("former_cell_key", record["cell_key"])
    found = {former[row["cell_key"]]: {m: _number(row[m]) for m in METRIC_COLUMNS} for _, row in records.iterrows()}
    assert set(found) == set(expected["records"])
    for key, metrics in expected["records"].items():
        assert found[key] == pytest.approx(metrics, abs=1e-12, nan_ok=True), key


def test_the_snapshot_covers_every_committed_folder():
    assert sorted(SNAPSHOT) == sorted(p.name for p in RESULTS.iterdir() if p.is_dir())


def test_each_chapter_shows_every_committed_record_of_its_own():
    """What the two chapters that read committed records show: the counts of the snapshot, nothing lost."""
    from mtl.ablation import NESTED, load_ablation_records, plan_ablation, records_overview
    from mtl.chapters import committed_real_records

    real = committed_real_records()  # the *Real recordings* chapter
    assert len(real.frame) == SNAPSHOT["real_recordings"]["n_records"]
    assert f"**{len(real.frame)} committed record(s)**" in real._repr_markdown_()

    plan = plan_ablation()  # the ablation chapter: its grid, its inner runs, and the G = 200 anchors
    shown = records_overview(pd.concat([plan.records(), load_ablation_records(experiment=NESTED)], ignore_index=True))
    runs = shown.groupby("experiment")["runs"].sum().to_dict()
    assert runs == {"ablation": SNAPSHOT["ablation"]["n_records"],
                    "ablation-nested": SNAPSHOT["ablation-nested"]["n_records"],
                    # the anchors: Real recordings' scratch and transfer runs (the ablation has no fine-tuning)
                    "real_recordings": int(real.frame["method"].isin(["scratch", "transfer"]).sum())}

"""Inner-validation cells (mtl.ablation.inner): a cell kind of their own, run by the common sweep."""

from __future__ import annotations

from collections import Counter

import pytest

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation import inner
from mtl.cells import CellKind, make_cell
from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.io import read_json
from mtl.records import RECORD_FIELDS, validate_record
from mtl.sweep import run_sweep

INNER_FIELDS = {"stage", "inner_fold", "n_inner_folds", "outer_cell_key"}


def _outer(**config):
    return make_cell("ablation", "scratch", "emodb", config=get_profile("smoke", **config), classes="target",
                     protocol="utterance", data="synthetic")


def test_inner_cells_delegate_to_their_outer_cell_and_check_their_fold():
    outer = _outer()
    cell = inner.InnerCell(outer, 1, 2)
    assert isinstance(cell, CellKind)
    assert (cell.config, cell.fold, cell.protocol, cell.experiment) == (outer.config, outer.fold, "utterance",
                                                                        "ablation-nested")
    assert cell.datasets == outer.datasets and cell.source_key is None
    assert cell.key != inner.InnerCell(outer, 0, 2).key and "inner fold 1 of 2" in cell.describe()
    with pytest.raises(ConfigError, match="inner_fold must be in"):
        inner.InnerCell(outer, 2, 2)
    with pytest.raises(ConfigError, match="n_inner"):
        inner.InnerCell(outer, 0, 1)


def test_inner_cells_run_through_the_sweep_and_write_the_outer_cells_record_layout():
    outer = _outer()
    cells = [inner.InnerCell(outer, i, 2) for i in range(2)]
    report = run_sweep([*cells, outer], workers=1, progress=False)
    assert report.counts == Counter(done=3), report.summary()
    outer_record = validate_record(read_json(outer.record_path))
    assert set(outer_record) == set(RECORD_FIELDS)
    for cell in cells:
        record = validate_record(read_json(cell.record_path))  # as written, before any upgrade on read
        assert set(record) == set(RECORD_FIELDS) | INNER_FIELDS
        assert (record["cell_key"], record["experiment"], record["outer_cell_key"]) == (cell.key, "ablation-nested",
                                                                                        outer.key)
        assert (record["stage"], record["inner_fold"], record["n_inner_folds"]) == ("inner", cell.inner_fold, 2)
        split = cell.split()
        assert (record["n_train"], record["n_test"]) == (len(split.train), len(split.held_out))
        assert record["n_train"] + record["n_test"] == outer_record["n_train"]  # the outer training part, split
        same = set(RECORD_FIELDS) - {"schema", "cell_key", "experiment", "code", "n_train", "n_test",
                                     "test_speakers", "metrics", "learning_curve", "pathways", "timings",
                                     "created"}
        assert {f: record[f] for f in same} == {f: outer_record[f] for f in same}
    assert run_sweep(cells, workers=1, progress=False).counts == Counter(skipped=2)

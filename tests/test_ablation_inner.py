"""Inner-validation cells and the ablation's cell runner (mtl.ablation.inner)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation import inner
from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.experiments import make_cell


def test_run_cells_starts_every_source_model_first_and_keeps_the_order_otherwise():
    cells = [SimpleNamespace(name=n, source_key=k) for n, k in
             [("s1", None), ("a1", "A"), ("s2", None), ("a2", "A"), ("b1", "B"), ("b2", "B")]]
    assert [c.name for c in inner._source_first_order(cells)] == ["a1", "b1", "s1", "s2", "a2", "b2"]


def test_inner_cells_delegate_to_their_outer_cell_and_check_their_fold():
    outer = make_cell("ablation", "scratch", "emodb", config=get_profile("smoke"), classes="target",
                      protocol="utterance", data="synthetic")
    cell = inner.InnerCell(outer, 1, 2)
    assert (cell.config, cell.fold, cell.protocol, cell.experiment) == (outer.config, outer.fold, "utterance",
                                                                        "ablation-nested")
    assert cell.key != inner.InnerCell(outer, 0, 2).key and "inner fold 1 of 2" in cell.describe()
    with pytest.raises(ConfigError, match="inner_fold must be in"):
        inner.InnerCell(outer, 2, 2)
    with pytest.raises(ConfigError, match="n_inner"):
        inner.InnerCell(outer, 0, 1)

"""mtl.runner: cells of several kinds through one runner and one sweep, each record from the one builder.

``Echo`` is a second, tiny cell kind (it wraps a :class:`~mtl.cells.Cell`, as
the ablation's inner-fold runs do, and "measures" without training), run
through :func:`mtl.sweep.run_sweep`'s process pool beside nothing else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest

from mtl.cells import Cell, CellKind, make_cell
from mtl.config import get_profile
from mtl.errors import ConfigError
from mtl.evaluation import evaluate
from mtl.io import stable_hash
from mtl.paths import results_dir
from mtl.records import RECORD_FIELDS, RunResult, build_record, read_record
from mtl.runner import register_kind, run, store_record
from mtl.sweep import run_sweep

SMOKE = get_profile("smoke")


@dataclass(frozen=True)
class Echo:
    """A cell kind that scores a fixed prediction for ``cell`` (``label="fail"`` raises)."""

    cell: Cell
    label: str
    experiment = "echo"
    source_key = None
    datasets = ()

    @property
    def key(self) -> str:
        return stable_hash({"kind": "echo", "cell": self.cell.key, "label": self.label})

    @property
    def record_path(self):
        return results_dir() / "runs" / self.experiment / f"{self.key}.json"

    def describe(self) -> str:
        return f"echo {self.label} of {self.cell.describe()}"


def run_echo(echo: Echo, progress: bool = False) -> dict:
    if echo.record_path.is_file():
        return read_record(echo.record_path)
    if echo.label == "fail":
        raise RuntimeError("this echo always fails")
    classes = echo.cell.classes
    y = np.arange(len(classes)).repeat(2)
    result = RunResult(metrics=evaluate(y, np.eye(len(classes))[y], np.arange(len(y)), classes), n_train=0,
                       n_test=len(y), n_folds=echo.cell.config.folds, provenance={"copy": "none"},
                       target_seconds=0.0)
    record = build_record(echo.cell, result, key=echo.key, experiment=echo.experiment, extra={"label": echo.label})
    return store_record(echo.record_path, record, echo.key)


register_kind(Echo, run_echo)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-data"))
    return tmp_path / "results" / "runs"


def _echoes(*labels: str) -> list[Echo]:
    cell = make_cell("unit", "scratch", "savee", (), "audio", SMOKE, data="synthetic")
    return [Echo(cell, label) for label in labels]


def test_a_second_cell_kind_runs_through_the_sweep_pool(runs):
    echoes = _echoes("a", "b", "fail")
    assert all(isinstance(e, CellKind) for e in echoes)
    report = run_sweep(echoes, workers=2, progress=False)
    assert report.counts == Counter(done=2, failed=1), report.summary()
    assert "this echo always fails" in report.failed[0]["error"]
    for echo in echoes[:2]:
        record = read_record(echo.record_path)
        assert [f for f in RECORD_FIELDS if f not in record] == []  # the one layout
        assert (record["cell_key"], record["experiment"], record["label"]) == (echo.key, "echo", echo.label)
        assert record["metrics"]["accuracy"] == 1.0 and record["target"] == "savee"
    again = run_sweep(echoes[:2], workers=2, progress=False)
    assert again.counts == Counter(skipped=2)


def test_run_dispatches_by_kind_and_names_the_registered_kinds(runs):
    echo = _echoes("a")[0]
    assert run(echo)["label"] == "a"

    class Unknown:
        pass

    with pytest.raises(ConfigError, match="no runner for cells of kind Unknown; registered kinds: Cell, (.+, )?Echo"):
        run(Unknown())

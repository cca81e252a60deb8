"""Reference methods (mtl.reference): their cell kind, folds, records, and each method on a tiny corpus."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mtl.cells import CellKind, make_cell
from mtl.config import get_profile
from mtl.errors import BadInputError, ConfigError
from mtl.evaluation import recording_keys
from mtl.io import read_json
from mtl.records import RECORD_FIELDS, validate_record
from mtl.reference import FUNCTIONAL_NAMES, ReferenceCell, utterance_functionals
from mtl.features import functionals
from mtl.reference import cnn, reference_cells
from mtl.reference.linear import utterance_split
from mtl.reference.neighbours import nearest_neighbours
from mtl.runner import outer_split
from mtl.sweep import run_sweep

REFERENCE_FIELDS = {"stage", "outer_cell_key", "reference"}


@pytest.fixture(autouse=True)
def own_results(tmp_path, monkeypatch):
    """Fresh records per test, nothing committed reused; the tiny synthetic EMO-DB's features stay shared."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-real-data"))
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")


def _outer(protocol="utterance", method="scratch"):
    sources = ("savee",) if method != "scratch" else ()
    return make_cell("refs", method, "emodb", sources, config=get_profile("smoke"), classes="target",
                     protocol=protocol, data="synthetic")


def test_functionals_are_96_finite_numbers_in_the_documented_order():
    config = get_profile("smoke")
    t = np.arange(config.sample_rate) / config.sample_rate
    voiced = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))
    signal = np.concatenate([np.zeros(800), voiced, np.zeros(4000)]).astype(np.float32)  # padded, as EMO-DB's copy
    values = utterance_functionals(signal, config)
    assert values.shape == (96,) == (len(FUNCTIONAL_NAMES),) and np.all(np.isfinite(values))
    named = dict(zip(FUNCTIONAL_NAMES, values))
    assert named["logf0_p50"] == pytest.approx(np.log(150), abs=0.05)  # pYIN finds the 150 Hz tone
    assert named["voiced_fraction"] > 0.8  # the zero padding was trimmed, not counted as unvoiced


def test_a_signal_shorter_than_one_window_is_rejected_naming_its_file():
    with pytest.raises(BadInputError, match="short.wav: .*fewer than one 400-sample window"):
        utterance_functionals(np.r_[np.zeros(100), np.ones(50), np.zeros(100)], get_profile("smoke"), "short.wav")


def test_nearest_neighbours_agree_with_brute_force():
    rng = np.random.default_rng(0)
    train, query = rng.normal(size=(300, 4, 4, 3)), rng.normal(size=(70, 4, 4, 3))
    distances = ((query.reshape(70, 1, -1) - train.reshape(1, 300, -1)) ** 2).sum(axis=2)
    assert np.array_equal(nearest_neighbours(train, query), distances.argmin(axis=1))


def test_reference_cells_delegate_to_their_scratch_cell_and_check_their_inputs():
    outer = _outer()
    cell = ReferenceCell(outer, "svm")
    assert isinstance(cell, CellKind)
    assert (cell.method, cell.experiment, cell.config, cell.fold, cell.datasets) == (
        "svm", "refs", outer.config, outer.fold, outer.datasets)
    assert cell.source_key is None and "reference svm" in cell.describe()
    assert len({ReferenceCell(outer, name).key for name in ("svm", "logreg", "knn1", "cnn")} | {outer.key}) == 5
    with pytest.raises(ConfigError, match="unknown reference method 'forest'"):
        ReferenceCell(outer, "forest")
    with pytest.raises(ConfigError, match="folds of a scratch cell"):
        ReferenceCell(_outer(method="transfer"), "knn1")
    with pytest.raises(ConfigError, match="no reference method"):
        reference_cells([outer], [])


@pytest.mark.parametrize("protocol", ["utterance", "speaker"])
def test_the_linear_methods_score_exactly_the_recordings_the_pathnet_cell_holds_out(protocol):
    outer = _outer(protocol)
    split = outer_split(outer)
    first, train, test = utterance_split(split, protocol, outer.config.folds, outer.fold, outer.seed)
    keys = recording_keys(split.samples)
    assert set(keys[first[test]]) == set(keys[split.held_out])
    assert set(keys[first[train]]) == set(keys[split.train])


def test_reference_cells_run_through_the_sweep_into_the_one_record_layout(monkeypatch):
    monkeypatch.setattr(cnn, "MAX_EPOCHS", 2)
    outer = _outer()
    cells = reference_cells([outer], ["svm", "logreg", "knn1", "cnn"])
    report = run_sweep(cells, workers=1, scheduler="inline", progress=False)
    assert report.counts == Counter(done=4), report.summary()
    split = outer_split(outer)
    n_recordings = len(set(recording_keys(split.samples.iloc[split.held_out])))
    for cell in cells:
        record = validate_record(read_json(cell.record_path))
        assert set(record) == set(RECORD_FIELDS) | REFERENCE_FIELDS
        assert (record["method"], record["stage"], record["outer_cell_key"]) == (cell.reference, "reference",
                                                                                 outer.key)
        assert record["metrics"]["utterance"]["n_utterances"] == n_recordings
        assert 0 <= record["metrics"]["uar"] <= 1
    knn = read_json(cells[2].record_path)["reference"]
    assert knn["same_recording"] == 0.0  # utterance protocol: no neighbour can come from a held-out recording
    assert read_json(cells[0].record_path)["reference"]["C"] in (0.001, 0.01, 0.1, 1.0, 10.0)
    assert read_json(cells[3].record_path)["reference"]["epochs"] <= 2
    assert run_sweep(cells, scheduler="inline", progress=False).counts == Counter(skipped=4)


def test_the_paper_protocol_lets_1nn_find_overlapping_segments_of_the_same_recording():
    cell = ReferenceCell(_outer("paper"), "knn1")
    record = run_sweep([cell], scheduler="inline", progress=False)
    assert record.ok
    assert read_json(cell.record_path)["reference"]["same_recording"] > 0.0


def test_functionals_are_computed_once_and_then_read_from_their_cache(monkeypatch):
    split = outer_split(_outer())
    config = get_profile("smoke")
    X, rows = functionals.functionals_for(split.samples, split.features.key, config)
    assert X.shape == (len(set(recording_keys(split.samples))), 96) and rows.shape == (len(split.samples),)

    def fail(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(functionals, "utterance_functionals", fail)
    again, _ = functionals.functionals_for(split.samples, split.features.key, config)
    assert np.array_equal(X, again)


def test_mtl_sweep_runs_reference_methods_and_diagnosed_cells_on_a_grid(capsys):
    from mtl.cli import EXIT_USAGE, main

    common = ["sweep", "--experiments", "refs", "--methods", "scratch", "--corpora", "emodb", "--profile", "smoke",
              "--data", "synthetic", "--protocols", "utterance", "--dry-run"]
    assert main([*common, "--reference", "svm", "knn1"]) == 0
    listing = capsys.readouterr().out
    assert "4 cells, 0 done" in listing and " svm " in listing and " knn1 " in listing
    assert main([*common, "--ga-diagnostics"]) == 0
    assert "2 cells, 0 done" in capsys.readouterr().out
    assert main([*common, "--reference", "forest"]) == EXIT_USAGE
    assert "unknown reference method 'forest'" in capsys.readouterr().err

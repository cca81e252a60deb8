"""Shared by the ablation's test modules: fresh records per test, and records of a given score.

The records are made by :func:`mtl.records.build_record` from a cell of the
ablation's shape (EMO-DB, real data, optionally transferred from RAVDESS) and
a :class:`~mtl.records.RunResult` holding only the scores the ablation's
tables read; nothing is trained and no corpus is needed.
"""

from __future__ import annotations

import pytest

from mtl.cells import Cell
from mtl.config import get_profile
from mtl.corpora import corpus_card
from mtl.paths import results_dir
from mtl.records import RunResult, build_record, write_record

SCRATCH = [0.40, 0.45, 0.42, 0.47, 0.44]
TRANSFER = [0.46, 0.47, 0.49, 0.50, 0.45]


@pytest.fixture(autouse=True)
def own_results(tmp_path, monkeypatch):
    """Fresh records per test; the feature cache stays shared (the tiny synthetic EMO-DB is built once)."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-real-data"))
    # records committed to the checkout's results/real must not enter the hand-made tables
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")


def record(method, fold, accuracy, module_type="linear", protocol="paper", utterance=None, experiment="ablation",
           classes=("anger", "boredom"), **config):
    """The record of an ablation cell scoring segment accuracy ``accuracy`` (UAR 0.02 lower, utterances 0.05 higher).

    ``config``: Config fields on top of the paper's profile; ``method`` other
    than scratch transfers from RAVDESS.
    """
    cell = ablation_cell(method, fold, module_type, protocol, experiment, classes, **config)
    utterance = accuracy + 0.05 if utterance is None else utterance
    metrics = {"accuracy": accuracy, "uar": accuracy - 0.02, "per_class": {},
               "utterance": {"mean_prob": {"accuracy": utterance, "uar": utterance - 0.02},
                             "vote": {"accuracy": utterance}}}
    result = RunResult(metrics=metrics, n_train=1712, n_test=428, n_folds=5, target_seconds=60.0,
                       provenance={"kind": "real", "copy": "test copy", "content_hash": "abc"})
    return build_record(cell, result)


def ablation_cell(method, fold, module_type="linear", protocol="paper", experiment="ablation",
                  classes=("anger", "boredom"), **config):
    """The ablation's cell of ``method`` on real EMO-DB (transferred from RAVDESS unless scratch) and ``fold``."""
    sources = () if method == "scratch" else ("ravdess",)
    ravdess = corpus_card("ravdess").classes
    return Cell(experiment, method, "emodb", sources, "audio", tuple(classes),
                tuple(c for c in classes if c in ravdess) if sources else (), protocol, 0, fold,
                get_profile("paper", module_type=module_type, **config),
                tuple((corpus, "real") for corpus in ("emodb", *sources)))


def write(records):
    """Write each record where its cell's record goes (``results_dir()/runs/<experiment>/<key>.json``)."""
    for one in records:
        write_record(results_dir() / "runs" / one["experiment"] / f"{one['cell_key']}.json", one)

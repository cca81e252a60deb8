"""Shared by the ablation's test modules: fresh records per test, and records of a given score.

The records are written by hand in the layout :func:`mtl.results.load_records`
reads (until a common record builder exists); they hold only what the
ablation's tables read.
"""

from __future__ import annotations

import pytest

from mtl.config import get_profile
from mtl.io import write_json
from mtl.paths import results_dir

SCRATCH = [0.40, 0.45, 0.42, 0.47, 0.44]
TRANSFER = [0.46, 0.47, 0.49, 0.50, 0.45]


@pytest.fixture(autouse=True)
def own_results(tmp_path, monkeypatch):
    """Fresh records per test; the feature cache stays shared (the tiny synthetic EMO-DB is built once)."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-real-data"))
    # records committed to the checkout's results/real must not enter the hand-made tables
    monkeypatch.setattr("mtl.results.project_root", lambda: tmp_path / "checkout")


def record(method, fold, accuracy, module_type="linear", protocol="paper", utterance=None, **config):
    """A record of an ablation cell with segment accuracy ``accuracy`` (UAR 0.02 lower, utterances 0.05 higher)."""
    config = get_profile("paper", module_type=module_type, protocol=protocol, **config).to_dict()
    utterance = accuracy + 0.05 if utterance is None else utterance
    key = f"{method}-{module_type}-{protocol}-{fold}-{config['profile']}"
    return {
        "schema": 1, "cell_key": key, "experiment": "ablation", "method": method,
        "sources": ["ravdess"] if method == "transfer" else [], "target": "emodb", "modality": "audio",
        "classes": ["anger", "boredom"], "protocol": protocol, "seed": 0, "fold": fold, "n_folds": 5,
        "n_train": 1712, "config": config,
        "data": {"kinds": {"emodb": "real"}, "provenance": {"emodb": {"copy": "test copy", "content_hash": "abc"}}},
        "metrics": {"accuracy": accuracy, "uar": accuracy - 0.02, "per_class": {},
                    "utterance": {"mean_prob": {"accuracy": utterance, "uar": utterance - 0.02},
                                  "vote": {"accuracy": utterance}}},
    }


def write(records, experiment="ablation"):
    for one in records:
        write_json(results_dir() / "runs" / experiment / f"{one['cell_key']}.json", one)

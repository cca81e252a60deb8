"""Shared fixtures: the real-data root, a scratch cache, deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never use more than one thread per process: the suite's timings stay
# comparable on a 2-core machine and nothing oversubscribes the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _real_root() -> Path | None:
    value = os.environ.get("MTL_DATA_ROOT")
    if value and Path(value).is_dir():
        return Path(value)
    return None


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The folder with the real corpora; skips the test with a reason when absent."""
    root = _real_root()
    if root is None:
        pytest.skip("real corpora not found: set MTL_DATA_ROOT to the folder holding emodb/ and "
                    "ravdess-speech-16k/ (CI points it at ../shared/data)")
    return root


@pytest.fixture
def cards_stay_in_their_test(monkeypatch):
    """Cards, their corpora and the emotion names they declare stay in their test (other tests expect the
    four built-in corpora only, and 'contempt' unknown); for modules that register cards."""
    from mtl.corpora import CARDS_ENV, labels, registry

    monkeypatch.setenv(CARDS_ENV, "")
    monkeypatch.setattr(labels, "_ALIASES", dict(labels._ALIASES))
    monkeypatch.setattr(labels, "_DECLARED", set(labels._DECLARED))
    registered = dict(registry._CARDS)
    yield
    registry._CARDS.clear()
    registry._CARDS.update(registered)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test writes caches and results in a scratch folder, never in the checkout."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("MTL_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("MTL_RESULTS_DIR", str(base / "results"))
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass

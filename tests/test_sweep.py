"""mtl.sweep: the grid, the local process pool and a real Dask LocalCluster.

The cluster has two worker processes on loopback (127.0.0.1, no dashboard).
Tiny synthetic corpora and their feature cache are built once per session in
conftest's session cache folder; every test writes records to its own folder.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from mtl.config import get_profile
from mtl.datasets import load_dataset
from mtl.errors import ConfigError
from mtl.io import read_json
from mtl.paths import cache_dir
from mtl.schedulers import local_cluster
from mtl.cli import main
from mtl.experiments import cells_table, grid_cells
from mtl import sweep
from mtl.sweep import SweepReport, computed_records, plan_workers, run_sweep

EXPERIMENT = "sweep_test"
# A custom experiment on tiny synthetic audio: SAVEE from scratch, and
# transferred from EMO-DB (one source model); the smoke profile has 2 folds.
GRID = dict(experiments=[EXPERIMENT], profile="smoke", methods=["scratch", "transfer"], corpora=["emodb->savee"],
            data="synthetic")
# Fields that say when and how a record was made, not what it holds.
VOLATILE = ("timings", "created", "code", "source", "reused_from", "digest")
TIMING = ("elapsed", "seconds", "wall_time")


@pytest.fixture(scope="session")
def sweep_cache(tmp_path_factory) -> Path:
    """The tiny synthetic EMO-DB and SAVEE and their memory-mapped features, built once per session."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MTL_CACHE_DIR", str(cache))
        for corpus in ("emodb", "savee"):
            load_dataset(corpus, "audio", get_profile("smoke"), data="synthetic", n_jobs=1)
    return cache


@pytest.fixture
def runs(tmp_path, monkeypatch, sweep_cache) -> Path:
    """This test's records folder (results_dir()/runs); the session's feature cache; no real data."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_CACHE_DIR", str(sweep_cache))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-data"))
    return tmp_path / "results" / "runs"


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes on 127.0.0.1, no dashboard."""
    with local_cluster(workers=2, threads_per_task=1) as local:
        assert all(address.startswith("tcp://127.0.0.1:") for address in local.scheduler_info["workers"])
        yield local


def _content(record: dict) -> dict:
    """What a record says about the computation: without timings, dates, code version, cache flags."""
    content = {k: v for k, v in record.items() if k not in VOLATILE}
    curves = [content["learning_curve"]] + ([record["source"]["learning_curve"]] if record.get("source") else [])
    content["learning_curve"], *source = [[{k: v for k, v in point.items() if k not in TIMING} for point in curve]
                                          for curve in curves]
    content["source_learning_curve"] = source
    return content


def _records(cells) -> dict[str, dict]:
    return {c.key: read_json(c.record_path) for c in cells if c.record_path.is_file()}


def _forget_source_models() -> None:
    """Make the next sweep train its source model again (the feature cache stays)."""
    shutil.rmtree(cache_dir() / "sources", ignore_errors=True)


# ---------------------------------------------------------------------------
# the grid and the plan (no workers)
# ---------------------------------------------------------------------------
def test_grid_filters(runs):
    cells = grid_cells(**GRID, seeds=[0, 1, 0], folds=[0, 1])
    assert len(cells) == 2 * 2 * 2  # the repeated seed is dropped
    assert {(c.experiment, c.method, c.target, c.sources) for c in cells} == {
        (EXPERIMENT, "scratch", "savee", ()), (EXPERIMENT, "transfer", "savee", ("emodb",))}
    table4 = "table4_speech_baselines"
    emodb = grid_cells([table4], profile="smoke", corpora=["enterface+savee->emodb"], data="synthetic", folds=[0])
    assert {(c.method, c.sources) for c in emodb} == {("finetune", ("enterface", "savee")),
                                                      ("transfer", ("enterface", "savee"))}
    savee = grid_cells([table4], profile="smoke", corpora=["savee"], methods=["scratch"], data="synthetic",
                       overrides={"generations": 5})
    assert [(c.method, c.target, c.fold, c.config.generations) for c in savee] == [("scratch", "savee", 0, 5),
                                                                                   ("scratch", "savee", 1, 5)]
    assert not cells_table(cells)["done"].any()

    with pytest.raises(ConfigError, match="custom one needs methods and corpora"):
        grid_cells([EXPERIMENT], profile="smoke")
    with pytest.raises(ConfigError, match="has no run with corpora ravdess"):
        grid_cells([table4], profile="smoke", corpora=["ravdess"])
    with pytest.raises(ConfigError, match="unknown Config parameter"):
        grid_cells(**GRID, overrides={"generationz": 5})
    with pytest.raises(ConfigError, match="bad corpus spec"):
        grid_cells(**{**GRID, "corpora": ["emodb->"]})


def test_plan_workers_never_oversubscribes_by_default():
    assert plan_workers(None, None, cores=8) == (8, 1)
    assert plan_workers(None, 2, cores=8) == (4, 2)
    assert plan_workers(3, None, cores=8) == (3, 1)
    with pytest.warns(RuntimeWarning, match="oversubscribe"):
        plan_workers(4, 2, cores=2)
    with pytest.raises(ConfigError):
        plan_workers(0, None, cores=2)


@pytest.mark.parametrize("workers, cores, expected", [(1, 8, ("inline", 1)), (2, 8, ("pool", 2)),
                                                      (2, 1, ("inline", 1)), (4, 2, ("pool", 2))])
def test_a_chapter_computes_on_its_workers_never_more_than_the_cores(monkeypatch, workers, cores, expected):
    """Config.workers (the classroom profile's 2) picks the scheduler of a chapter's missing cells."""
    seen = []
    monkeypatch.setattr(sweep, "_cores", lambda: cores)
    monkeypatch.setattr(sweep, "run_sweep", lambda cells, scheduler, progress, workers, **options:
                        seen.append((scheduler, workers)) or SweepReport(workers=workers, scheduler=scheduler))
    assert computed_records([], workers=workers) == []
    assert seen == [expected]
    assert get_profile("classroom").workers == 2 and get_profile("paper").workers == 1


def test_a_pool_worker_leaves_the_corpus_warnings_to_the_parent(monkeypatch):
    """The parent loads every corpus first and says its warnings once; workers would repeat them."""
    import logging

    from mtl import schedulers

    logger = logging.getLogger("mtl.corpora")
    monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setattr(schedulers, "limit_threads", lambda n_threads: None)  # this process keeps its threads
    schedulers.prepare_worker(1)
    assert not logger.isEnabledFor(logging.WARNING) and logger.isEnabledFor(logging.ERROR)


def test_cli_dry_run_and_bad_input(runs, capsys):
    assert main(["sweep", "--experiments", EXPERIMENT, "--profile", "smoke", "--corpora", "emodb->savee", "--data",
                 "synthetic", "--methods", "scratch", "transfer", "--seeds", "0", "1", "--folds", "0", "-p",
                 "generations", "4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 cells, 0 done" in out and str(runs) in out
    assert main(["sweep", "--experiments", "no_such_thing", "--profile", "smoke"]) == 2
    assert "custom one needs methods and corpora" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# pool and Dask: same records; a failed cell is reported and the others go on
# ---------------------------------------------------------------------------
def test_pool_dask_and_inline_write_identical_records(runs, tmp_path, monkeypatch, cluster):
    # Fold 7 does not exist: grid_cells refuses it up front, so the failing cells are made here (the runner
    # checks again, which is what a failed cell exercises).
    cells = grid_cells(**GRID, folds=[0, 1])
    cells += [dataclasses.replace(c, fold=7) for c in cells if c.fold == 0]

    _forget_source_models()
    pool = run_sweep(cells, workers=2, progress=False)
    assert pool.counts == Counter(done=4, failed=2)
    assert all("fold 7 does not exist" in o["error"] for o in pool.failed)
    assert [s["status"] for s in pool.sources] == ["done"]
    from_pool = _records(cells)
    assert sorted(p.name for p in (runs / EXPERIMENT).iterdir()) == sorted(f"{k}.json" for k in from_pool)

    from mtl.results import load_records  # what notebooks and the book read
    assert len(load_records(experiment=EXPERIMENT)) == 4

    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "dask-results"))
    _forget_source_models()
    dask = run_sweep(cells, scheduler=cluster.scheduler_address, progress=False)
    assert dask.counts == Counter(done=4, failed=2), dask.summary()
    assert [s["status"] for s in dask.sources] == ["done"]
    from_dask = _records(cells)
    assert from_dask.keys() == from_pool.keys()
    for key, record in from_pool.items():
        assert _content(from_dask[key]) == _content(record)  # metrics, genotypes, learning curves, provenance
    assert len({o["pid"] for o in dask.outcomes if "pid" in o}) <= 2

    # In this process, one cell after the other: the same records; a failing cell raises.
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "inline-results"))
    _forget_source_models()
    good = [c for c in cells if c.fold != 7]
    inline = run_sweep(good, scheduler="inline", threads_per_task=1, progress=False)
    assert inline.counts == Counter(done=4) and inline.workers == 1
    from_inline = _records(good)
    for key, record in from_inline.items():
        assert _content(record) == _content(from_pool[key])
    with pytest.raises(ConfigError, match="fold 7 does not exist"):
        run_sweep(cells, scheduler="inline", progress=False)


# ---------------------------------------------------------------------------
# lost workers and killed sweeps: the rerun completes the grid, nothing twice
# ---------------------------------------------------------------------------
def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _one_record_per_cell(runs: Path, cells) -> None:
    assert sorted(p.name for p in (runs / EXPERIMENT).glob("*.json")) == sorted(f"{c.key}.json" for c in cells)


def test_killed_dask_worker_then_rerun_completes_without_duplicates(runs, cluster):
    from distributed import Client

    cells = grid_cells(**{**GRID, "methods": ["scratch"]}, seeds=[0, 1], folds=[0, 1], overrides={"generations": 12})
    with Client(cluster) as client:
        pids = client.run(os.getpid)
        outcome: dict = {}
        sweep = threading.Thread(target=lambda: outcome.setdefault(
            "report", run_sweep(cells, scheduler=cluster.scheduler_address, progress=False)))
        sweep.start()
        # Kill the worker of a cell that is mid-evolution (its checkpoint exists).
        def busy_worker():
            for worker, keys in client.processing().items():
                for key in keys:
                    cell = next((c for c in cells if key == f"cell-{c.experiment}-{c.key}"), None)
                    if cell is not None and (cache_dir() / "checkpoints" / cell.key).is_dir():
                        return worker
            return None
        victim = _wait_for(busy_worker, 60, "a cell to start evolving")
        os.kill(pids[victim], signal.SIGKILL)
        sweep.join(120)
        first = outcome["report"]
    assert not sweep.is_alive()
    assert len(first.outcomes) == len(cells)
    before = _records(cells)

    rerun = run_sweep(cells, scheduler=cluster.scheduler_address, progress=False)
    assert rerun.ok, rerun.summary()
    _one_record_per_cell(runs, cells)
    after = _records(cells)
    assert all(after[k] == r for k, r in before.items())  # records of the first sweep were not recomputed
    computed = Counter(o["cell"] for o in (*first.outcomes, *rerun.outcomes) if o["status"] == "done")
    assert max(computed.values()) == 1


def test_lost_pool_worker_is_replaced_and_its_cells_resume(runs):
    cells = grid_cells(**{**GRID, "methods": ["scratch"]}, folds=[0, 1], overrides={"generations": 12})
    outcome: dict = {}
    sweep = threading.Thread(target=lambda: outcome.setdefault("report", run_sweep(cells, workers=2, progress=False)))
    sweep.start()
    _wait_for(lambda: any((cache_dir() / "checkpoints" / c.key).is_dir() for c in cells), 60,
              "a cell to start evolving")
    pool_workers = [p for p in multiprocessing.active_children() if p.name.startswith("ForkServerProcess")]
    os.kill(pool_workers[0].pid, signal.SIGKILL)  # the pool breaks: both cells in flight are lost
    sweep.join(120)
    report = outcome["report"]
    assert report.counts == Counter(done=2), report.summary()  # run again on a new pool, from their checkpoints
    _one_record_per_cell(runs, cells)
    before = _records(cells)

    rerun = run_sweep(cells, workers=2, progress=False)
    assert rerun.counts == Counter(skipped=2)
    assert _records(cells) == before


def _processes_with(marker: str) -> list[int]:
    """Pids of the processes whose environment holds ``marker`` (this test's results folder)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_sweep_leaves_no_worker_behind(runs, signum):
    """A sweep killed while its pool computes takes its workers (and their fork server) with it."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "mtl.cli", "sweep", "--experiments", EXPERIMENT, "--corpora", "savee",
               "--methods", "scratch", "--modality", "audio", "--profile", "smoke", "--data", "synthetic",
               "--folds", "0", "1", "--workers", "2", "-p", "generations", "5000"]
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = f"MTL_RESULTS_DIR={os.environ['MTL_RESULTS_DIR']}"
    try:
        # the sweep, its fork server and two workers: the workers are computing
        _wait_for(lambda: len(_processes_with(marker)) >= 4, 90, "the pool's workers to start")
        time.sleep(2)
        sweep.send_signal(signum)
        sweep.wait(30)
        _wait_for(lambda: not _processes_with(marker), 15, "every process of the sweep to end")
    finally:
        if sweep.poll() is None:
            sweep.kill()

"""Sweep scaling: one worker against two on a grid of paper-size cells, and the workers' memory.

Grid: a custom experiment of independent cells -- SAVEE speech from scratch
on the synthetic corpus, seeds x folds (``--seeds``, ``--folds``). With
``--profile paper`` (the default) the cells are the paper's size: the
full-size synthetic SAVEE (about the real corpus's size), S=20, G=200
(``--generations`` to shorten), one pass per pathway, checkpoints every 10
generations; 2 seeds x 2 folds, so each worker of two gets two cells. With
``--profile smoke`` they are smoke-size (the tiny corpus, population 4, 3
generations, 2 SGD steps per pathway): there the cold start and the
checkpoints dominate, which is what that size measures.

Rows: scheduler (local process pool, Dask ``LocalCluster``) x workers (1, 2),
one run each. Every row runs in a fresh Python process, so each pays the cold
start a real ``mtl sweep`` pays (the pool's fork server, or the cluster's
workers, import torch and mtl), and writes to its own empty results folder;
the corpus and its feature cache are built once beforehand and shared.

Columns: ``wall`` (``run_sweep`` from call to return, start-up included),
``tasks`` (sum of the cells' own run times), ``CPU`` (sum of the CPU time
the cells' worker processes used while running them; well below ``tasks``
means other work was competing for the cores), ``speedup`` (wall of 1 worker /
wall of 2 workers, same scheduler), ``peak RSS`` (largest peak resident set
of a worker process, MB; torch, pandas and scikit-learn alone take ~400 MB).

Memory probe: two pool workers, set up as the sweep sets them up, each load
the features of tiny synthetic EMO-DB and SAVEE as a cell does
(:func:`mtl.datasets.load_dataset`) and read all of EMO-DB's at the same
time; each reports the type of the arrays it got and the resident and
proportional size of its mapping of EMO-DB's ``X.npy`` (``/proc/self/smaps``):
the pages are the page cache's, shared, so the proportional size is split
between the workers reading them.

The machine may be shared with other work: the load average is printed.
Run: ``python benchmarks/bench_sweep.py [--profile paper|smoke] [--seeds 2] [--folds 2]
[--generations G] [--checkpoint-every N] [--schedulers pool dask-local]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

EXPERIMENT = "bench_sweep"


def grid(profile: str, n_seeds: int, n_folds: int, overrides: dict):
    from mtl.experiments import grid_cells

    return grid_cells([EXPERIMENT], profile=profile, methods=["scratch"], corpora=["savee"], data="synthetic",
                      seeds=list(range(n_seeds)), folds=list(range(n_folds)), overrides=overrides)


def one_row(scheduler: str, workers: int, grid_args: dict) -> dict:
    """Run the grid once in this (fresh) process; the numbers of one table row."""
    from mtl.sweep import run_sweep

    cells = grid(**grid_args)
    report = run_sweep(cells, scheduler=scheduler, workers=workers, threads_per_task=1, progress=False)
    if not report.ok or report.counts["done"] != len(cells):
        raise SystemExit(f"sweep did not run every cell:\n{report.summary()}")
    return {"wall": report.seconds, "tasks": sum(o["seconds"] for o in report.outcomes),
            "cpu": sum(o["cpu_seconds"] for o in report.outcomes),
            "peak_rss_mb": max(report.peak_rss_mb.values()), "processes": len(report.peak_rss_mb)}


def _mapping_sizes(path: Path) -> dict[str, float]:
    """Resident and proportional size (MB) of this process's memory mapping of ``path``."""
    sizes = {"Rss": 0.0, "Pss": 0.0}
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = fields[-1] == str(path)
        elif inside and fields[0].rstrip(":") in sizes:
            sizes[fields[0].rstrip(":")] += int(fields[1]) / 1024
    return {"rss": sizes["Rss"], "pss": sizes["Pss"]}


def probe_features(barrier) -> dict:
    """In a sweep-style worker: what a cell's features are, and what reading them costs in memory."""
    from mtl.config import get_profile
    from mtl.datasets import load_dataset

    config = get_profile("smoke")
    emodb, _ = load_dataset("emodb", "audio", config, data="synthetic")
    savee, _ = load_dataset("savee", "audio", config, classes=("anger", "happiness"), data="synthetic")
    emodb.X.sum(dtype=np.float64)  # reads every page of the file (buffered: no copy)
    barrier.wait()  # both workers hold the pages now
    mapping = _mapping_sizes(emodb.folder / "X.npy")
    barrier.wait()  # neither lets go before the other has measured
    return {"pid": os.getpid(), "emodb_X": type(emodb.X).__name__, "savee_subset_X": type(savee.X).__name__,
            "file_mb": emodb.store.nbytes / 2**20, "savee_subset_mb": savee.X.nbytes / 2**20,
            "mapping": mapping,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def memory_probe() -> list[dict]:
    import multiprocessing

    from mtl.schedulers import prepare_worker, shared_environ

    context = multiprocessing.get_context("forkserver")
    with context.Manager() as manager, ProcessPoolExecutor(2, mp_context=context, initializer=prepare_worker,
                                                           initargs=(1, shared_environ())) as pool:
        barrier = manager.Barrier(2)
        return list(pool.map(probe_features, [barrier, barrier]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", choices=["paper", "smoke"], help="cell size (default paper)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..n-1 (default: paper 2, smoke 4)")
    parser.add_argument("--folds", type=int, default=2, help="folds 0..n-1 of each seed (default 2)")
    parser.add_argument("--generations", type=int, help="G of every cell (default: the profile's)")
    parser.add_argument("--checkpoint-every", type=int,
                        help="checkpoint (written and fsynced) every this many generations (default: the profile's)")
    parser.add_argument("--schedulers", nargs="+", default=["pool", "dask-local"], choices=["pool", "dask-local"])
    parser.add_argument("--row", nargs=2, metavar=("SCHEDULER", "WORKERS"), help=argparse.SUPPRESS)
    parser.add_argument("--grid", help=argparse.SUPPRESS)  # a child process: the grid's arguments as JSON
    args = parser.parse_args()
    if args.row:  # a child process: one row, printed as JSON
        print(json.dumps(one_row(args.row[0], int(args.row[1]), json.loads(args.grid))))
        return

    overrides = {name: value for name, value in (("generations", args.generations),
                                                 ("checkpoint_every", args.checkpoint_every)) if value is not None}
    grid_args = {"profile": args.profile, "n_seeds": args.seeds or (2 if args.profile == "paper" else 4),
                 "n_folds": args.folds, "overrides": overrides}
    scratch = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    os.environ["MTL_CACHE_DIR"] = str(scratch / "cache")
    os.environ["MTL_DATA_ROOT"] = str(scratch / "no-data")
    from mtl.config import get_profile
    from mtl.datasets import load_dataset

    start = time.perf_counter()
    config = get_profile(args.profile, **overrides)
    load_dataset("savee", "audio", config, data="synthetic")  # the grid's corpus
    for corpus in ("savee", "emodb"):  # the memory probe's
        load_dataset(corpus, "audio", get_profile("smoke"), data="synthetic")
    print(f"synthetic corpora and features built in {time.perf_counter() - start:.1f} s ({scratch})")
    print(f"cores: {len(os.sched_getaffinity(0))}, load average at start: "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    n_cells = grid_args["n_seeds"] * grid_args["n_folds"]
    print(f"grid: {n_cells} scratch cells on SAVEE ({config.synthetic_size}, synthetic), {args.profile} profile, "
          f"{config.generations} generations, S={config.population}, checkpoint every {config.checkpoint_every}, "
          "1 thread per task, one run per row, all rows in this run\n")

    rows = []
    for scheduler in args.schedulers:
        for workers in (1, 2):
            os.environ["MTL_RESULTS_DIR"] = str(scratch / f"results-{scheduler}-{workers}")
            child = subprocess.run([sys.executable, __file__, "--row", scheduler, str(workers),
                                    "--grid", json.dumps(grid_args)], capture_output=True, text=True, check=True)
            rows.append({"scheduler": scheduler, "workers": workers, **json.loads(child.stdout.splitlines()[-1]),
                         "load": os.getloadavg()[0]})

    print(f"{'scheduler':<11}{'workers':>8}{'wall s':>9}{'tasks s':>9}{'CPU s':>8}{'speedup':>9}{'peak RSS MB':>13}"
          f"{'load after':>12}")
    for row in rows:
        one = next(r for r in rows if r["scheduler"] == row["scheduler"] and r["workers"] == 1)
        print(f"{row['scheduler']:<11}{row['workers']:>8}{row['wall']:>9.1f}{row['tasks']:>9.1f}{row['cpu']:>8.1f}"
              f"{one['wall'] / row['wall']:>9.2f}{row['peak_rss_mb']:>13.0f}{row['load']:>12.2f}")
    print("\nmemory probe: two sweep workers load features as a cell does and read all of EMO-DB's at once")
    for probe in memory_probe():
        mapping = probe["mapping"]
        print(f"  worker {probe['pid']}: EMO-DB X is a {probe['emodb_X']} of its {probe['file_mb']:.1f} MB file: "
              f"resident {mapping['rss']:.1f} MB, proportional {mapping['pss']:.1f} MB (shared); a 2-class SAVEE "
              f"subset is an {probe['savee_subset_X']} copy of {probe['savee_subset_mb']:.1f} MB; "
              f"peak RSS {probe['peak_rss_mb']:.0f} MB")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

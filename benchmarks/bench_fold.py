"""Wall time of one paper-profile fold on the synthetic EMO-DB, with T read literally, on a chosen device.

The fold is the scratch cell of the speech baselines: all of EMO-DB's seven
classes, fold 0 of the paper's random 5 folds, seed 0, the ``paper`` profile
(S=20, G=200) with ``training_budget="literal_epochs"`` (each pathway trains
T epochs of T steps, T = ceil(n_train / 64): about 200 times the SGD steps of
one pass, the reading that costs labs hundreds of core-hours on CPU). The
corpus is the full-size synthetic EMO-DB (:mod:`mtl.synthetic`), generated in
a scratch cache on first use, so the script runs offline from a checkout.

A fold at this budget may take longer than a check allows: training stops
after ``--seconds`` of evolution (the generations run so far are timed), and
the fold's time is extrapolated from the seconds per generation (every
generation does the same work: K pathways x T^2 steps and K fitness passes).
A fold that ends within the budget is timed whole and scored.

``--quick`` (a check that it runs): the tiny synthetic corpus, G=2, T=2 steps.

Run: ``python benchmarks/bench_fold.py [--device auto|cuda|cpu] [--threads N] [--seconds 120] [--quick]``
(``benchmarks/gpu_check.sh`` runs it on the GPU).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


class _OutOfTime(Exception):
    """Raised from the evolution's callback when the time budget is spent."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"],
                        help="Config.device (default auto: the GPU when there is one)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's own choice)")
    parser.add_argument("--seconds", type=float, default=120.0, help="evolution time budget (default 120 s)")
    parser.add_argument("--quick", action="store_true", help="tiny corpus, G=2, T=2: a check that it runs")
    args = parser.parse_args(argv)
    os.environ.setdefault("MTL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "mtl-bench-fold-cache"))
    os.environ.setdefault("MTL_RESULTS_DIR", tempfile.mkdtemp(prefix="mtl-bench-fold-results-"))

    import torch

    from mtl.cells import make_cell
    from mtl.config import get_profile
    from mtl.evaluation import Standardizer
    from mtl.pathnet import PathNetClassifier
    from mtl.pathnet.checks import describe_device, torch_device
    from mtl.runner import outer_split
    from mtl.schedulers import limit_threads

    if args.threads:
        limit_threads(args.threads)
    changes = dict(training_budget="literal_epochs", device=args.device)
    if args.quick:
        changes.update(synthetic_size="tiny", generations=2, steps_per_pathway=2)
    config = get_profile("paper", **changes)
    device = torch_device(config)
    cell = make_cell("bench_fold", "scratch", "emodb", (), "audio", config, data="synthetic")

    started = time.perf_counter()
    split = outer_split(cell)  # generates the corpus and its features on first use
    prepared = time.perf_counter() - started
    scaler = Standardizer().fit(split.features.X, split.train)
    X_train = scaler.transform(split.features.X, split.train)
    X_test = scaler.transform(split.features.X, split.held_out)
    steps = config.steps_for(len(split.train))
    print(f"device {describe_device(device)}, torch threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.2f}; synthetic EMO-DB ({config.synthetic_size}), {len(split.train)} training and "
          f"{len(split.held_out)} test segments, corpus and features ready in {prepared:.0f} s")
    print(f"paper profile, T read literally: G={config.generations}, K={config.tournament}, "
          f"T={steps} SGD steps per pathway ({config.generations * config.tournament * steps:,} in the fold)")

    done: list[float] = []
    evolution_started = time.perf_counter()

    def stop_when_out_of_time(entry: dict) -> None:
        done.append(entry["seconds"])
        if time.perf_counter() - evolution_started > args.seconds and entry["generation"] < config.generations:
            raise _OutOfTime

    classifier = PathNetClassifier(config, task=cell.target, n_classes=len(cell.classes))
    try:
        classifier.fit(X_train, split.y[split.train], callback=stop_when_out_of_time)
        finished = True
    except _OutOfTime:
        finished = False
    evolved = time.perf_counter() - evolution_started
    per_generation = float(np.mean(done))
    if finished:
        accuracy = float(np.mean(classifier.predict(X_test) == split.y[split.held_out]))
        print(f"fold done: {evolved:.1f} s of evolution ({per_generation:.2f} s per generation), "
              f"segment accuracy {accuracy:.3f}")
    else:
        print(f"stopped after {len(done)} of {config.generations} generations ({evolved:.1f} s, "
              f"{per_generation:.2f} s per generation): the fold would take about "
              f"{per_generation * config.generations / 60:.1f} min of evolution (extrapolated)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

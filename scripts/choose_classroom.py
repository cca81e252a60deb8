"""Choose the ``classroom`` profile's learning rate on inner folds, never on a test fold.

The classroom profile cuts the paper's budget to what a live lesson allows
(G generations of T steps, 2 folds, every 10th video frame). At so few SGD
steps the paper's learning rate (0.02) barely moves the weights, so the
profile also replaces ``lr``. This script is how that value was chosen:

* the candidates are ``--lrs`` at the profile's budget;
* each is scored on the cells of Tables 2 and 4 (visual and speech; scratch,
  fine-tuning and transfer; every target) at outer fold 0, each trained on
  one inner fold of that fold's *training* part and scored on the other
  (:class:`mtl.ablation.inner.InnerCell`: nothing of the test fold is read);
* the score of a candidate is its mean inner-validation accuracy over all
  those runs; the highest wins (the smaller rate on a tie).

Run (records go to ``$MTL_RESULTS_DIR/runs/ablation-nested``; finished runs
are skipped, so an interrupted run resumes)::

    MTL_DATA_ROOT=/path/to/data .venv/bin/python scripts/choose_classroom.py --workers 2 \
        --output results/classroom-selection.json

The output file holds every run's score and the choice; the teaching
chapter cites it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from mtl.ablation.inner import InnerCell
from mtl.config import get_profile
from mtl.experiments import experiment_cells
from mtl.io import write_json
from mtl.sweep import computed_records

EXPERIMENTS = ("table2_visual_baselines", "table4_speech_baselines")
N_INNER = 2


def candidate_cells(lr: float, outer_fold: int = 0) -> list[InnerCell]:
    """Every inner run that scores one learning rate at the classroom budget."""
    config = get_profile("classroom", lr=lr)
    outer = [cell for experiment in EXPERIMENTS for cell in experiment_cells(experiment, config=config,
                                                                             folds=[outer_fold])]
    return [InnerCell(cell, inner_fold, N_INNER) for cell in outer for inner_fold in range(N_INNER)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default=None, help="where to write the scores and the choice (JSON)")
    args = parser.parse_args(argv)

    runs, scores = [], defaultdict(list)
    for lr in args.lrs:
        cells = candidate_cells(lr)
        records = computed_records(cells, scheduler="pool", workers=args.workers, progress=True)
        for cell, record in zip(cells, records):
            accuracy = float(record["metrics"]["accuracy"])
            scores[lr].append(accuracy)
            runs.append({"lr": lr, "experiment": cell.outer.experiment, "method": cell.method,
                         "target": cell.target, "modality": cell.modality, "data": record["data"]["kinds"],
                         "outer_fold": cell.fold, "inner_fold": cell.inner_fold, "accuracy": accuracy})
    means = {lr: sum(values) / len(values) for lr, values in scores.items()}
    chosen = max(sorted(means), key=lambda lr: means[lr])
    for lr in sorted(means):
        print(f"lr={lr:<6} mean inner accuracy {means[lr]:.3f} over {len(scores[lr])} runs"
              + ("   <- chosen" if lr == chosen else ""))
    if args.output:
        base = get_profile("classroom")
        write_json(args.output, {
            "what": "the classroom profile's learning rate, chosen on inner folds of outer fold 0's training part",
            "experiments": list(EXPERIMENTS), "n_inner_folds": N_INNER, "outer_fold": 0,
            "budget": {"generations": base.generations, "steps_per_pathway": base.steps_per_pathway,
                       "population": base.population, "folds": base.folds, "frame_step": base.frame_step},
            "mean_inner_accuracy": {str(lr): means[lr] for lr in sorted(means)}, "chosen_lr": chosen,
            "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())

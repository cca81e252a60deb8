"""Compute the ablation on the real EMO-DB: the grid and the nested selections the book's chapter reads.

This is the script that produced the records committed under
``results/real/ablation`` and ``results/real/ablation-nested``; rerun it
with the same arguments to check them (finished cells are skipped, an
interrupted run resumes), or with others to extend them::

    MTL_DATA_ROOT=../shared/data .venv/bin/python scripts/run_ablation.py --workers 2

Records are written to ``$MTL_RESULTS_DIR/runs/`` (default ``results/runs/``);
``--commit`` then copies them to ``results/real/`` for the repository.

The budget is declared here and in the chapter: the paper's profile (S=20,
tournament 2, lr 0.02, batch 64, L=3, M=20, N=4) with G = 50 generations
for ``one_pass`` instead of the paper's 200, and ``literal_epochs`` at the
same number of target SGD steps (``budget="equal_steps"``: G = 2 of T = 27
epochs of 27 steps). Transfer cells of both T readings use the same
one-pass source model of their module type. Cells run in the order of the
list below (most informative first), so a run cut short still leaves
complete settings.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from mtl import ablation
from mtl.paths import project_root, results_dir


def grid(generations: int, seeds: list[int]) -> list:
    """The ablation grid, protocols in the order paper, speaker, utterance."""
    cells = []
    for protocol in ("paper", "speaker", "utterance"):
        cells += ablation.ablation_cells("paper", factors={"protocol": [protocol]}, seeds=seeds,
                                         generations=generations, budget="equal_steps")
    return cells


SELECTION_METRIC = {"speaker": "uar", "utterance": "uar", "paper": "accuracy"}


def selections(grid_cells: list, n_inner: int, seeds: list[int],
               protocols: list[str]) -> list[ablation.NestedSelection]:
    """Nested selections among module type x T reading, one per protocol (paper's: by accuracy; others by UAR).

    The candidates are the grid's own settings, so each chosen setting's refit
    is the grid cell of that outer fold.
    """
    settings = {}
    for cell in grid_cells:
        config = cell.config
        settings.setdefault((config.module_type, config.training_budget), config.generations)
    candidates = [{"module_type": m, "training_budget": b, "generations": g} for (m, b), g in settings.items()]
    return [ablation.NestedSelection(candidates, profile="paper", protocol=protocol, seeds=seeds, n_inner=n_inner,
                                     metric=SELECTION_METRIC[protocol])
            for protocol in protocols]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=50, help="G of the one_pass settings (default 50)")
    parser.add_argument("--n-inner", type=int, default=3, help="inner folds of the nested selections (default 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="parallel one-thread processes (default 2)")
    parser.add_argument("--nested", nargs="*", default=["speaker"], choices=list(SELECTION_METRIC),
                        help="protocols of the nested selections (default speaker; none: the grid only)")
    parser.add_argument("--commit", action="store_true",
                        help="only copy the records found under results_dir()/runs to results/real and stop")
    args = parser.parse_args(argv)

    if args.commit:
        for experiment in (ablation.ABLATION, ablation.NESTED):
            source, target = results_dir() / "runs" / experiment, project_root() / "results" / "real" / experiment
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
                print(f"{experiment}: {sum(1 for _ in target.rglob('*.json'))} files in {target}")
        return 0

    cells = grid(args.generations, args.seeds)
    nested = selections(cells, args.n_inner, args.seeds, args.nested)
    inner = [cell for selection in nested for cell in selection.inner_cells()]
    # Priority: the paper and speaker protocols, the selections' inner runs, then the utterance protocol.
    todo = ([c for c in cells if c.protocol != "utterance"] + inner
            + [c for c in cells if c.protocol == "utterance"])
    for selection in nested:
        selection.save()
    print(f"{len(cells)} grid cells and {len(inner)} inner runs; records in {results_dir() / 'runs'}", flush=True)
    start = time.perf_counter()
    outcome = ablation.run_cells(todo, workers=args.workers)
    for selection in nested:  # every refit is a grid cell: nothing left to train unless a cell failed
        selection.run(workers=args.workers)
    counts = outcome["status"].value_counts().to_dict()
    print(f"{counts} in {time.perf_counter() - start:.0f} s", flush=True)
    for row in outcome[outcome["status"] == "failed"].itertuples():
        print(f"FAILED {row.describe}: {row.error}", file=sys.stderr)
    return 1 if counts.get("failed") else 0


if __name__ == "__main__":  # the workers are spawned processes: they import this file
    sys.exit(main())

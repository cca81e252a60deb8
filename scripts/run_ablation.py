"""Compute the ablation on the real EMO-DB: the grid and the nested selections the book's chapter reads.

This is the script that produced the records committed under
``results/real/ablation`` and ``results/real/ablation-nested``; rerun it
with the same arguments to check them (finished cells are skipped, an
interrupted run resumes), or with others to extend them::

    MTL_DATA_ROOT=/path/to/data .venv/bin/python scripts/run_ablation.py --workers 2

Records are written to ``$MTL_RESULTS_DIR/runs/`` (default ``results/runs/``);
``--commit`` then copies them to ``results/real/`` for the repository.

The budget is :data:`mtl.ablation.BUDGET` (declared once, read here, by the
grid and by the chapter): the paper's profile with fewer generations for
``one_pass``, ``literal_epochs`` at the same number of target SGD steps, one
one-pass source model per module type, and its nested selections. Options
name settings by their Config field names (``--generations``, ``-p lr
0.01``); ``-p`` also takes the paper's symbols (``-p G 200``). Cells run in
the order of :func:`mtl.ablation.budget_cells` (most informative first), so
a run cut short still leaves complete settings; they run through
:func:`mtl.sweep.run_sweep` (one-thread processes, a progress bar).
"""

from __future__ import annotations

import argparse
import shutil
import sys

from mtl import ablation
from mtl.config import canonical_names, parse_value
from mtl.paths import project_root, results_dir
from mtl.sweep import run_sweep

BUDGET = ablation.BUDGET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=None,
                        help=f"G of the one_pass settings (default {BUDGET.generations}, the budget's)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                        help="a Config field for every cell, by field name or the paper's symbol (repeatable)")
    parser.add_argument("--n-inner", type=int, default=BUDGET.n_inner,
                        help=f"inner folds of the nested selections (default {BUDGET.n_inner})")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(BUDGET.seeds),
                        help=f"seeds (default {' '.join(map(str, BUDGET.seeds))})")
    parser.add_argument("--workers", type=int, default=2, help="parallel one-thread processes (default 2)")
    protocols = [protocol for protocol, _ in BUDGET.selections]
    parser.add_argument("--nested", nargs="*", default=protocols, choices=list(ablation.FACTORS["protocol"]),
                        help=f"protocols of the nested selections (default {' '.join(protocols)}; "
                             "none: the grid only)")
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

    overrides = canonical_names({**({"generations": args.generations} if args.generations is not None else {}),
                                 **{name: parse_value(value) for name, value in args.parameter or []}})
    generations = overrides.pop("generations", None)
    cells = ablation.budget_cells(BUDGET, seeds=args.seeds, generations=generations, overrides=overrides)
    nested = ablation.budget_selections(cells, BUDGET, protocols=args.nested, seeds=args.seeds,
                                        n_inner=args.n_inner, overrides=overrides)
    inner = [cell for selection in nested for cell in selection.inner_cells()]
    # Priority: the paper and speaker protocols, the selections' inner runs, then the utterance protocol.
    todo = ([c for c in cells if c.protocol != "utterance"] + inner
            + [c for c in cells if c.protocol == "utterance"])
    for selection in nested:
        selection.save()
    print(f"{len(cells)} grid cells and {len(inner)} inner runs; records in {results_dir() / 'runs'}", flush=True)
    report = run_sweep(todo, workers=args.workers)
    for selection in nested:  # every refit is a grid cell: nothing left to train unless a cell failed
        selection.run(workers=args.workers)
    print(report.summary(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":  # guarded: worker processes may import this file
    sys.exit(main())

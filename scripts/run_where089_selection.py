"""Choose PathNet's fitness and regulariser variant per outer fold on inner folds (chapter "Where could 0.89 come from?").

This is the script that produced the records committed under
``results/real/where089-nested`` (inner runs and the selection's parameters)
and the refits among ``results/real/where089-pathnet``; rerun it with the
same arguments to check them (finished cells are skipped, an interrupted run
resumes)::

    MTL_DATA_ROOT=/path/to/data .venv/bin/python scripts/run_where089_selection.py --workers 1

The candidates are :data:`mtl.reference.selection.VARIANTS` (the paper's
settings, ``fitness_on=validation``, ``weight_decay`` 1e-4 and 1e-3,
``dropout`` 0.2 and 0.5) of PathNet from scratch on the 96 utterance
functionals with literal epochs (:data:`~mtl.reference.selection.FUNCTIONALS`),
on the real EMO-DB at the paper's profile. Records are written to
``$MTL_RESULTS_DIR/runs/``; ``--commit`` then copies them to ``results/real/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from mtl.paths import project_root, results_dir
from mtl.reference.selection import INNER_EXPERIMENT, PATHNET_EXPERIMENT, VariantSelection
from mtl.sweep import run_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default="speaker", choices=["paper", "utterance", "speaker"],
                        help="protocol of the outer and inner folds (default speaker)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--n-inner", type=int, default=3, help="inner folds per outer training part (default 3)")
    parser.add_argument("--workers", type=int, default=1, help="parallel one-thread processes (default 1)")
    parser.add_argument("--data", default="real", choices=["real", "synthetic"], help="corpus copy (default real)")
    parser.add_argument("--profile", default="paper", help="configuration profile (default paper)")
    parser.add_argument("--commit", action="store_true",
                        help="only copy the records found under results_dir()/runs to results/real and stop")
    args = parser.parse_args(argv)

    if args.commit:
        for experiment in (INNER_EXPERIMENT, PATHNET_EXPERIMENT):
            source, target = results_dir() / "runs" / experiment, project_root() / "results" / "real" / experiment
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
                print(f"{experiment}: {sum(1 for _ in target.rglob('*.json'))} files in {target}")
        return 0

    selection = VariantSelection(protocol=args.protocol, seeds=args.seeds, n_inner=args.n_inner, data=args.data,
                                 profile=args.profile)
    selection.save()
    # Seed by seed, so that a run cut short still leaves whole seeds chosen and scored.
    inner = selection.inner_cells()
    print(f"{len(inner)} inner runs; records in {results_dir() / 'runs'}", flush=True)
    for seed in selection.seeds:
        report = run_sweep([cell for cell in inner if cell.seed == seed], workers=args.workers, progress=False)
        print(f"seed {seed}, inner runs: {report.summary()}", flush=True)
        refits = [cell for cell in selection.refit_cells() if cell.seed == seed]
        report = run_sweep(refits, workers=args.workers, progress=False)
        print(f"seed {seed}, refits: {report.summary()}", flush=True)
    results = selection.results()
    print(results[["seed", "fold", "status", "chosen", "inner_score", "utt_uar"]].to_string(index=False), flush=True)
    return 0 if (results["status"] == "scored").all() else 1


if __name__ == "__main__":  # guarded: worker processes may import this file
    sys.exit(main())

"""Wall time of every chapter at the ``classroom`` profile: in book order, and each chapter alone.

Each chapter is executed as ``mtl run <chapter> --profile classroom`` executes
it (:func:`mtl.notebooks.run_notebook`, papermill, its exercises included).
The synthetic corpora and their features come from the cache the
environment names (``MTL_CACHE_DIR``), built beforehand; source models,
checkpoints and records are computed afresh:

* **in book order**: one empty results folder and one empty source-model
  folder for the whole pass, so a chapter reuses what the chapters before it
  computed (the convergence chapter's cells are Table 4's), as a class that
  runs the book in order does;
* **alone**: an empty results folder and source-model folder for every
  chapter (a teacher who opens one chapter cold).

The machine may be shared: the load average before each chapter is printed
beside its time, and a time measured under load is an upper bound.

Run: ``MTL_CACHE_DIR=... python benchmarks/bench_classroom.py [--modes order alone]
[--chapters table4_speech_baselines ...] [--output benchmarks/results/classroom.json] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtl.io import write_json
from mtl.notebooks import find_notebook, run_notebook, toc_notebooks
from mtl.paths import cache_dir, project_root

SHARED = ("synthetic", "features")  # what is reused from the cache; everything else starts empty


def fresh_cache(base: Path, scratch: Path) -> Path:
    """A cache folder whose corpora and features are ``base``'s (symlinks) and whose models are empty."""
    scratch.mkdir(parents=True)
    for name in SHARED:
        if (base / name).exists():
            (scratch / name).symlink_to(base / name)
    return scratch


def run_chapter(name: str, profile: str, cache: Path, results: Path, output: Path) -> dict:
    os.environ["MTL_CACHE_DIR"], os.environ["MTL_RESULTS_DIR"] = str(cache), str(results)
    # As `mtl book --profile` does: a notebook without a `profile` parameter (the
    # ablation reads committed records at its own budget) runs as it is.
    takes_profile = "profile" in find_notebook(name).parameters
    load = os.getloadavg()[0]
    started = time.perf_counter()
    run_notebook(name, output, {"profile": profile} if takes_profile else {})
    seconds = time.perf_counter() - started
    print(f"  {name:<26} {seconds:6.1f} s   (load average before: {load:.1f})"
          + ("" if takes_profile else "   [no profile parameter]"), flush=True)
    return {"chapter": name, "seconds": round(seconds, 1), "load_before": round(load, 2),
            "profile_parameter": takes_profile}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--modes", nargs="+", choices=("order", "alone"), default=["order", "alone"])
    parser.add_argument("--chapters", nargs="+", default=None, help="default: every notebook of the book, in order")
    parser.add_argument("--output", default=None, help="JSON file for the times")
    parser.add_argument("--workdir", default=None,
                        help="keep the executed notebooks, records and models here (default: a temporary folder)")
    args = parser.parse_args(argv)

    base = cache_dir()
    chapters = args.chapters or toc_notebooks()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project_root(), capture_output=True,
                            text=True).stdout.strip()
    report = {"profile": args.profile, "commit": commit, "cores": os.cpu_count(), "python": platform.python_version(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "modes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as tmp:
        tmp = Path(args.workdir or tmp)
        for mode in args.modes:
            print(f"{mode}:", flush=True)
            rows = []
            for name in chapters:
                label = "order" if mode == "order" else f"alone-{name}"
                cache, results = tmp / label / "cache", tmp / label / "results"
                if not cache.exists():
                    fresh_cache(base, cache)
                rows.append(run_chapter(name, args.profile, cache, results, tmp / label / f"{name}.ipynb"))
            report["modes"][mode] = rows
    if args.output:
        write_json(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

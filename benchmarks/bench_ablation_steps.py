"""Seconds per SGD step and per sample passed forward, per module type: the figures of the ablation's cost table.

The chapter's cost table (:meth:`mtl.ablation.AblationPlan.cost_table`)
reads ``benchmarks/results/step_seconds.json`` instead of timing while the
book builds, so the page is the same at every build. This script writes that
file: :func:`mtl.ablation.measure_step_seconds` (one scratch pathway on the
paper's shapes, random samples) ``--repeats`` times per module type, with
torch, BLAS and OpenMP limited to ``--threads`` threads -- the one thread a
grid cell gets in :func:`mtl.sweep.run_sweep` -- and the median of the
repeats. Repeats interleave the module types so that load from other
processes on a shared machine does not favour one.

Run: ``python benchmarks/bench_ablation_steps.py [--threads 1] [--repeats 5] [--steps 20] [--note TEXT]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl.ablation import STEP_SECONDS_FILE, measure_step_seconds, write_step_seconds
from mtl.config import MODULE_TYPES
from mtl.paths import project_root
from mtl.schedulers import limit_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads of torch and BLAS (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per module type (default 5)")
    parser.add_argument("--steps", type=int, default=20, help="SGD steps timed per measurement (default 20)")
    parser.add_argument("--note", default="", help="a sentence about the machine (e.g. that it is shared)")
    parser.add_argument("--output", default=str(project_root() / STEP_SECONDS_FILE), help="where the result goes")
    args = parser.parse_args(argv)

    limit_threads(args.threads)
    measured: dict[str, list[tuple[float, float]]] = {module: [] for module in MODULE_TYPES}
    for _ in range(args.repeats):
        for module, seconds in measure_step_seconds(steps=args.steps).items():
            measured[module].append(seconds)
    result = write_step_seconds(Path(args.output), measured, threads=args.threads, steps=args.steps, note=args.note)
    for module, seconds in result["seconds"].items():
        print(f"{module}: {seconds['train_step'] * 1e3:.2f} ms per SGD step, "
              f"{seconds['eval_sample'] * 1e6:.1f} us per sample forward")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

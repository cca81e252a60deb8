"""What an ablation grid costs, in SGD steps and in hours, before anything runs.

:func:`steps_per_cell` counts the SGD steps and forward passes of one cell
(``literal_epochs`` trains T times more steps per pathway: T = 27 on the
EMO-DB copy here, about 210 for its RAVDESS source model); :func:`estimate_cost`
lists them for a grid, a source model paid once per source key, and
:func:`cost_summary` totals them per setting.

Hours come from seconds per SGD step and per sample passed forward, per module
type, read from a committed benchmark result (:data:`STEP_SECONDS_FILE`,
written by ``benchmarks/bench_ablation_steps.py`` through
:func:`measure_step_seconds` and :func:`write_step_seconds`), so the chapter's
cost table is the same at every build and says where its figures come from.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtl.ablation.grid import cell_factors
from mtl.ablation.records import find_record, record_index
from mtl.ablation.sizes import outer_fold_sizes, source_size
from mtl.config import MODULE_TYPES, Config, get_profile
from mtl.errors import ConfigError
from mtl.io import read_json, write_json
from mtl.pathnet import PathNet, random_genotype
from mtl.pathnet.evolution import BatchStream, train_steps
from mtl.paths import project_root
from mtl.records import code_version

__all__ = ["steps_per_cell", "estimate_cost", "cost_summary", "measure_step_seconds", "STEP_SECONDS_FILE",
           "read_step_seconds", "write_step_seconds", "step_seconds", "step_seconds_source"]

STEP_SECONDS_FILE = Path("benchmarks") / "results" / "step_seconds.json"
"""The committed step-time benchmark, relative to the project folder."""


def _split_sizes(cell: Any) -> tuple[int, int]:
    """``(n_train, n_held_out)`` of a cell: its outer fold, or its inner fold for an inner cell."""
    if hasattr(cell, "inner_fold"):
        split = cell.split()
        return len(split.train), len(split.held_out)
    sizes = outer_fold_sizes(cell)
    if cell.fold >= len(sizes):
        raise ConfigError(f"{cell.describe()}: fold {cell.fold} does not exist ({len(sizes)} folds)")
    return sizes[cell.fold]


def _evaluations(config: Config) -> int:
    """Held-out evaluations of one run: every ``eval_every`` generations and the last."""
    if not config.eval_every:
        return 1 if config.generations else 0
    return config.generations // config.eval_every + (config.generations % config.eval_every != 0)


def steps_per_cell(cell: Any, n_train: int | None = None, n_held_out: int | None = None,
                   n_source: int | None = None) -> dict[str, Any]:
    """SGD steps and forward passes one cell costs.

    An evolution trains K pathways of T SGD steps per generation, and after
    each pathway's training evaluates it on the whole training part (its
    fitness); fine-tuning trains G*K*T steps. A transfer or fine-tuning cell
    also needs its source model, trained once per source key and shared by
    every cell with that key.

    Parameters
    ----------
    cell : Cell or InnerCell
    n_train, n_held_out : int or None
        Training and held-out sizes, samples; None computes them from the
        cell's data and folds (loads the features, cached on disk).
    n_source : int or None
        Source samples; None counts them (transfer and fine-tuning only).

    Returns
    -------
    dict
        ``n_train``, ``T`` (steps per pathway), ``target_steps`` (G*K*T),
        ``target_forward`` (samples passed forward only: fitness and held-out
        evaluations), ``source_key``, ``n_source``, ``source_steps``,
        ``source_forward`` (0 for scratch).
    """
    config = cell.config
    if n_train is None or n_held_out is None:
        measured_train, measured_held_out = _split_sizes(cell)
        n_train = measured_train if n_train is None else n_train
        n_held_out = measured_held_out if n_held_out is None else n_held_out
    T = config.steps_for(int(n_train))
    budget = config.generations * config.tournament
    fitness = 0 if cell.method == "finetune" else budget * int(n_train)
    target_forward = fitness + _evaluations(config) * int(n_held_out)
    source_steps = source_forward = 0
    if cell.source_key is not None:
        n_source = source_size(cell) if n_source is None else int(n_source)
        source_config = cell.source_training_config
        source_budget = source_config.generations * source_config.tournament
        source_steps = source_budget * source_config.steps_for(n_source)
        source_forward = source_budget * n_source
    return {"n_train": int(n_train), "T": T, "target_steps": budget * T, "target_forward": target_forward,
            "source_key": cell.source_key, "n_source": n_source if cell.source_key is not None else 0,
            "source_steps": source_steps, "source_forward": source_forward}


def estimate_cost(cells: Sequence[Any], step_seconds: Mapping[str, tuple[float, float]] | None = None,
                  n_train: int | None = None, n_held_out: int | None = None,
                  n_source: int | None = None) -> pd.DataFrame:
    """The cost of a list of cells, one row per cell, before anything runs.

    Parameters
    ----------
    cells : sequence of Cell or InnerCell
    step_seconds : mapping or None
        ``{module_type: (seconds per SGD step, seconds per sample passed
        forward)}``, e.g. :func:`step_seconds` of the committed benchmark
        (:func:`read_step_seconds`); None leaves the seconds columns NaN.
    n_train, n_held_out, n_source : int or None
        Sizes for every cell (see :func:`steps_per_cell`); None measures each.

    Returns
    -------
    DataFrame
        The factors (:func:`cell_factors`), the columns of
        :func:`steps_per_cell`, ``new_source`` (True on the first cell of each
        source key: only that one pays ``source_steps``), ``done`` (record
        exists), ``seconds`` (target plus any new source, one thread) and
        ``key``.
    """
    rows, seen, index = [], set(), record_index()
    for cell in cells:
        cost = steps_per_cell(cell, n_train, n_held_out, n_source)
        new_source = cost["source_key"] is not None and cost["source_key"] not in seen
        seen.add(cost["source_key"])
        seconds = float("nan")
        if step_seconds is not None:
            per_step, per_forward = step_seconds[cell.config.module_type]
            seconds = cost["target_steps"] * per_step + cost["target_forward"] * per_forward
            if new_source:
                seconds += cost["source_steps"] * per_step + cost["source_forward"] * per_forward
        rows.append({**cell_factors(cell), **cost, "new_source": new_source,
                     "done": find_record(cell, index) is not None, "seconds": seconds, "key": cell.key})
    return pd.DataFrame(rows)


def cost_summary(cost: pd.DataFrame, workers: int = 1) -> pd.DataFrame:
    """Totals of :func:`estimate_cost` per protocol x module x budget x method, and overall.

    Columns: ``cells``, ``done``, ``target_steps``, ``source_steps`` (new
    source models only), ``steps`` (both), ``cpu_hours`` (one thread, NaN
    without ``step_seconds``) and ``wall_hours`` with ``workers`` parallel
    one-thread tasks (cells are independent; source models come first).
    """
    if cost.empty:
        return pd.DataFrame(columns=["cells", "done", "target_steps", "source_steps", "steps", "cpu_hours",
                                     "wall_hours"])
    frame = cost.assign(source_paid=np.where(cost["new_source"], cost["source_steps"], 0))
    keys = [k for k in ("protocol", "module_type", "training_budget", "method") if k in frame]
    grouped = frame.groupby(keys, sort=False).agg(
        cells=("key", "size"), done=("done", "sum"), target_steps=("target_steps", "sum"),
        source_steps=("source_paid", "sum"), seconds=("seconds", lambda s: s.sum(min_count=1))).reset_index()
    total = {k: "all" for k in keys}
    total.update(cells=int(grouped["cells"].sum()), done=int(grouped["done"].sum()),
                 target_steps=int(grouped["target_steps"].sum()), source_steps=int(grouped["source_steps"].sum()),
                 seconds=grouped["seconds"].sum(min_count=1))
    out = pd.concat([grouped, pd.DataFrame([total])], ignore_index=True)
    out["steps"] = out["target_steps"] + out["source_steps"]
    out["cpu_hours"] = out["seconds"] / 3600
    out["wall_hours"] = out["cpu_hours"] / max(1, int(workers))
    return out.drop(columns="seconds")


def measure_step_seconds(module_types: Sequence[str] = MODULE_TYPES, config: Config | None = None,
                         steps: int = 20, n_samples: int = 512, n_classes: int = 7,
                         seed: int = 0) -> dict[str, tuple[float, float]]:
    """Seconds per SGD step and per sample passed forward, on this machine, now, in this process.

    Trains one scratch pathway for ``steps`` steps and evaluates it on
    ``n_samples`` random samples, per module type, with the configuration's
    shapes (default the paper's; torch uses however many threads it is set
    to). ``benchmarks/bench_ablation_steps.py`` calls it and commits the
    result (:func:`write_step_seconds`), which the chapter's cost table reads:
    the book never times anything while it builds.
    """
    base = config or get_profile("paper")
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(rng.standard_normal((n_samples, base.input_dim), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, n_classes, n_samples)).long()
    out = {}
    for module_type in module_types:
        config = base.replace(module_type=module_type)
        net = PathNet(config)
        net.add_head("t", n_classes)
        genotype = random_genotype(config, rng)
        stream = BatchStream(X, y, config.batch_size, torch.Generator().manual_seed(seed))
        train_steps(net, genotype, "t", None, stream, 2, config)  # warm-up: allocations, kernel choice
        start = time.perf_counter()
        train_steps(net, genotype, "t", None, stream, steps, config)
        per_step = (time.perf_counter() - start) / steps
        start = time.perf_counter()
        net.accuracy(X, y, genotype, "t")
        per_forward = (time.perf_counter() - start) / n_samples
        out[module_type] = (per_step, per_forward)
    return out



def write_step_seconds(path: Path, measured: Mapping[str, Sequence[tuple[float, float]]], threads: int,
                       steps: int, note: str = "") -> dict[str, Any]:
    """Write a step-time benchmark result: the median of each module type's repeats, and every repeat.

    ``measured`` maps a module type to its repeats of :func:`measure_step_seconds`
    (``(seconds per SGD step, seconds per sample passed forward)``). The file
    also holds the thread count, the machine, the date and the code's commit.
    """
    result = {
        "what": "seconds per SGD step (train) and per sample passed forward (eval) of one scratch pathway, "
                "the paper's shapes; the median of the repeats",
        "seconds": {module: {"train_step": float(np.median([r[0] for r in repeats])),
                             "eval_sample": float(np.median([r[1] for r in repeats]))}
                    for module, repeats in measured.items()},
        "repeats": {module: [list(map(float, r)) for r in repeats] for module, repeats in measured.items()},
        "steps_per_repeat": int(steps), "threads": int(threads),
        "machine": {"system": platform.system(), "machine": platform.machine(),
                    "processor": platform.processor() or _cpu_model(), "python": platform.python_version()},
        "date": _dt.date.today().isoformat(), "code": code_version(), "note": note,
    }
    write_json(path, result)
    return result


def _cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ''."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def read_step_seconds(path: Path | None = None) -> dict[str, Any] | None:
    """The committed step-time benchmark (default :data:`STEP_SECONDS_FILE`), or None where it is absent."""
    path = Path(path) if path is not None else project_root() / STEP_SECONDS_FILE
    return read_json(path) if path.is_file() else None


def step_seconds(benchmark: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """``{module_type: (seconds per SGD step, seconds per sample forward)}`` of a benchmark result."""
    return {module: (float(s["train_step"]), float(s["eval_sample"])) for module, s in benchmark["seconds"].items()}


def step_seconds_source(benchmark: Mapping[str, Any] | None) -> str:
    """One sentence: where the cost table's seconds come from (or that they are missing)."""
    if benchmark is None:
        return (f"No step-time benchmark is committed ({STEP_SECONDS_FILE.as_posix()}), so the hours are left "
                "empty; python benchmarks/bench_ablation_steps.py writes it.")
    machine, code = benchmark["machine"], benchmark.get("code") or {}
    cpu = machine.get("processor") or machine.get("machine", "")
    per_step = ", ".join(f"{module} {s['train_step'] * 1e3:.1f} ms" for module, s in benchmark["seconds"].items())
    return (f"Seconds per SGD step ({per_step}) and per sample passed forward are from "
            f"{STEP_SECONDS_FILE.as_posix()}, measured by benchmarks/bench_ablation_steps.py with "
            f"{benchmark['threads']} thread on {cpu} ({machine.get('system', '')}) on {benchmark['date']} at "
            f"commit {str(code.get('commit') or 'unknown')[:7]}. {benchmark.get('note', '')}").strip()

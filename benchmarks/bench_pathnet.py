"""Pathway-training throughput on the paper's shapes, against a per-module loop and a GEMM roofline.

Shapes (§3.3.1, §4.2): input 64x64x3 = 12288, L=3 layers, M=20 modules of 20
units, a pathway with N=4 distinct modules per layer, batch 64, 6 classes.
Rows, measured in one run at each thread count:

(a) ``mtl`` session   -- :func:`mtl.pathnet.evolution.train_steps`: a training
                         session over one pass of a 2048-sample set (gather,
                         T=32 SGD steps with mini-batch gathering, write-back);
(b) per-module loop   -- an ``nn.Linear`` per module, a Python loop over the
                         active modules, every parameter in ``torch.optim.SGD``;
(c) full-tensor batch -- one ``(M, in, units)`` parameter per layer, active
                         modules gathered inside autograd (full-size gradients);
(d) GEMM roofline     -- the first layer's forward product and weight-gradient
                         product alone, on fixed operands (the best of two
                         weight layouts): the work that dominates, at the
                         machine's matrix-product speed;
(e) ``mtl`` conv      -- the same session with ``module_type="conv"`` (3x3
                         stride-2 convolutions, 8 channels), for comparison.

FLOPs count the matrix products of forward and backward honestly: first layer
forward + weight gradient (its input needs no gradient), later layers and head
forward + weight gradient + input gradient; element-wise work is not counted.
The machine may be shared: each row is the best of ``--repeats`` repetitions,
and repetitions interleave the rows so that load from other processes does not
favour one row.

Run: ``python benchmarks/bench_pathnet.py [--threads 1 2] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mtl.config import Config
from mtl.pathnet import PathNet
from mtl.pathnet.evolution import BatchStream, train_steps

BATCH, CLASSES, N_SAMPLES = 64, 6, 2048
GENOTYPE = np.array([[0, 5, 10, 15], [1, 6, 11, 16], [2, 7, 12, 17]])


def linear_flops(config: Config, active: int) -> float:
    """Matrix-product FLOPs of one training step of a linear pathway (see module docstring)."""
    width = active * config.units
    first = 2 * 2 * BATCH * config.input_dim * width
    later = (config.n_layers - 1) * 3 * 2 * BATCH * config.units * width
    head = 3 * 2 * BATCH * config.units * CLASSES
    return float(first + later + head)


def conv_flops(config: Config, active: int) -> float:
    """Matrix-product FLOPs of one training step of a convolutional pathway (stride-2 3x3 modules)."""
    height, width, channels_in = config.input_shape
    channels = config.conv_channels
    total = 0.0
    for layer in range(config.n_layers):
        height, width = (height + 1) // 2, (width + 1) // 2
        fan_in = (channels_in if layer == 0 else channels) * 9
        products = 2 if layer == 0 else 3
        total += products * 2 * BATCH * height * width * active * channels * fan_in
    features = channels * height * width
    return total + 3 * 2 * BATCH * features * CLASSES


class LoopPathNet(nn.Module):
    """The straightforward implementation: one nn.Linear per module, a loop over active modules."""

    def __init__(self, config: Config):
        super().__init__()
        sizes = [config.input_dim] + [config.units] * (config.n_layers - 1)
        self.layers = nn.ModuleList(nn.ModuleList(nn.Linear(size, config.units) for _ in range(config.n_modules))
                                    for size in sizes)
        self.head = nn.Linear(config.units, CLASSES)

    def forward(self, x: torch.Tensor, genotype: np.ndarray) -> torch.Tensor:
        for layer, row in zip(self.layers, genotype):
            x = torch.stack([torch.relu(layer[m](x)) for m in np.unique(row)]).mean(0)
        return self.head(x)


class FullTensorPathNet(nn.Module):
    """Batched like mtl's forward, but trained through autograd on the full (M, in, units) tensors."""

    def __init__(self, config: Config):
        super().__init__()
        sizes = [config.input_dim] + [config.units] * (config.n_layers - 1)
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(config.n_modules, size, config.units) * size ** -0.5)
                                        for size in sizes)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(config.n_modules, config.units)) for _ in sizes)
        self.head = nn.Linear(config.units, CLASSES)

    def forward(self, x: torch.Tensor, genotype: np.ndarray) -> torch.Tensor:
        for weight, bias, row in zip(self.weights, self.biases, genotype):
            index = torch.as_tensor(np.unique(row))
            gathered = weight.index_select(0, index).permute(1, 0, 2).reshape(weight.shape[1], -1)
            hidden = torch.relu(x @ gathered + bias.index_select(0, index).reshape(-1))
            x = hidden.unflatten(1, (len(index), -1)).mean(1)
        return self.head(x)


def autograd_trainer(model: nn.Module, stream: BatchStream, steps: int) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)

    def run() -> None:
        for _ in range(steps):
            x, y = stream.next()
            loss = F.cross_entropy(model(x, GENOTYPE), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return run


def roofline(config: Config, active: int, steps: int) -> Callable[[], None]:
    x = torch.randn(BATCH, config.input_dim)
    grad = torch.randn(BATCH, active * config.units)
    weight_in_out = torch.randn(config.input_dim, active * config.units)
    weight_out_in = torch.randn(active * config.units, config.input_dim)

    def in_out() -> None:
        for _ in range(steps):
            x @ weight_in_out
            x.t() @ grad

    def out_in() -> None:
        for _ in range(steps):
            x @ weight_out_in.t()
            grad.t() @ x
    seconds = best_seconds([in_out, out_in], 3)
    return in_out if seconds[0] <= seconds[1] else out_in


def best_seconds(runs: list[Callable[[], None]], repeats: int) -> list[float]:
    """Best wall time of each run over ``repeats`` rounds; rounds interleave the runs, so a
    burst of load from other processes hits every run alike rather than one row."""
    for run in runs:
        run()  # warm-up: allocations, MKL/oneDNN kernel selection
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for position, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[position] = min(best[position], time.perf_counter() - started)
    return best


def measure(threads: int, repeats: int) -> list[dict[str, float | str]]:
    torch.set_num_threads(threads)
    config = Config()
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(N_SAMPLES, config.input_dim, generator=generator)
    y = torch.randint(0, CLASSES, (N_SAMPLES,), generator=generator)
    steps = config.steps_for(N_SAMPLES)
    active = GENOTYPE.shape[1]

    def stream() -> BatchStream:
        return BatchStream(X, y, BATCH, torch.Generator().manual_seed(1))

    net = PathNet(config)
    net.add_head("bench", CLASSES)
    session_stream = stream()
    conv_config = config.replace(module_type="conv")
    conv_net = PathNet(conv_config)
    conv_net.add_head("bench", CLASSES)
    conv_stream = stream()
    rows = [
        ("(a) mtl session", linear_flops(config, active),
         lambda: train_steps(net, GENOTYPE, "bench", None, session_stream, steps, config)),
        ("(b) per-module loop", linear_flops(config, active),
         autograd_trainer(LoopPathNet(config), stream(), steps)),
        ("(c) full-tensor autograd", linear_flops(config, active),
         autograd_trainer(FullTensorPathNet(config), stream(), steps)),
        ("(d) GEMM roofline", 4.0 * BATCH * config.input_dim * active * config.units,
         roofline(config, active, steps)),
        ("(e) mtl conv session", conv_flops(conv_config, active),
         lambda: train_steps(conv_net, GENOTYPE, "bench", None, conv_stream, steps, conv_config)),
    ]
    results = []
    for (name, flops, _), seconds in zip(rows, best_seconds([run for _, _, run in rows], repeats)):
        seconds /= steps
        results.append({"threads": threads, "name": name, "ms_per_step": 1e3 * seconds,
                        "samples_per_s": BATCH / seconds, "gflops": flops / seconds / 1e9})
    return results


def table(results: list[dict[str, float | str]]) -> str:
    lines = ["| threads | implementation | ms/step | samples/s | GFLOP/s | vs roofline | vs loop |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for threads in sorted({r["threads"] for r in results}):
        group = [r for r in results if r["threads"] == threads]
        roof = next(r for r in group if r["name"].startswith("(d)"))
        loop = next(r for r in group if r["name"].startswith("(b)"))
        for r in group:
            lines.append(f"| {threads} | {r['name']} | {r['ms_per_step']:.2f} | {r['samples_per_s']:,.0f} | "
                         f"{r['gflops']:.1f} | {r['gflops'] / roof['gflops']:.0%} | "
                         f"{loop['ms_per_step'] / r['ms_per_step']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per row; the best is kept (default 5)")
    args = parser.parse_args()
    results = [row for threads in args.threads for row in measure(threads, args.repeats)]
    print(f"PathNet pathway training, paper shapes (input 12288, L=3, M=20, units 20, N=4, batch {BATCH}); "
          f"one pass of {N_SAMPLES} samples per repetition, best of {args.repeats}; "
          "conv: 3x3 stride-2 modules of 8 channels, FLOPs of its own products\n")
    print(table(results))


if __name__ == "__main__":
    main()

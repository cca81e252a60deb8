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
                         stride-2 convolutions, 8 channels);
(f) per-module conv   -- an ``nn.Conv2d`` per module, a Python loop over the
                         active modules, every parameter in ``torch.optim.SGD``
                         (the straightforward convolutional PathNet);
(g) conv roofline     -- the convolutions of a conv step alone, on fixed
                         operands: per layer the active modules as one
                         convolution, forward, weight gradient and (after the
                         first layer) input gradient, each product the fastest
                         of ``F.conv2d``/its backward in NCHW, the same in
                         channels-last, and im2col + GEMM (the GEMMs only, the
                         im2col not timed): the strictest roofline;
(h) plain batched conv -- the same convolutions as a plain batched
                         convolution, ``F.conv2d`` and the backward autograd
                         calls for it, every layer in one memory layout (the
                         faster of NCHW and channels-last): what a batched
                         convolutional PathNet spends on its convolutions.

FLOPs count the matrix products of forward and backward honestly: first layer
forward + weight gradient (its input needs no gradient), later layers and head
forward + weight gradient + input gradient; element-wise work is not counted.
Shares: linear rows against (d), conv rows against (g) ("vs roofline") and
against (h) ("vs plain conv"), "vs loop" against the per-module loop of the
same module type.
The machine may be shared: each row is the best of ``--repeats`` repetitions,
and repetitions interleave the rows so that load from other processes does not
favour one row.

``--device cuda`` runs every row on the GPU (timed with a synchronisation at
the end of each repetition; the thread count then only sets the CPU side).
``--quick`` takes 4 steps per repetition instead of a pass, to check that the
script runs, not to measure.

Run: ``python benchmarks/bench_pathnet.py [--threads 1 2] [--repeats 5] [--device cpu|cuda]
[--output FILE.json] [--note TEXT]``. The recorded runs are in ``benchmarks/results/pathnet_steps.json`` (under ``runs``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mtl.config import Config
from mtl.pathnet import PathNet
from mtl.pathnet.checks import describe_device, torch_device
from mtl.pathnet.evolution import BatchStream, train_steps

BATCH, CLASSES, N_SAMPLES = 64, 6, 2048
GENOTYPE = np.array([[0, 5, 10, 15], [1, 6, 11, 16], [2, 7, 12, 17]])
Row = tuple[str, float, Callable[[], None]]


def linear_flops(config: Config, active: int) -> float:
    """Matrix-product FLOPs of one training step of a linear pathway (see module docstring)."""
    width = active * config.units
    first = 2 * 2 * BATCH * config.input_dim * width
    later = (config.n_layers - 1) * 3 * 2 * BATCH * config.units * width
    head = 3 * 2 * BATCH * config.units * CLASSES
    return float(first + later + head)


def conv_shapes(config: Config) -> list[tuple[int, int, int]]:
    """Per layer: input channels, input height, input width of a conv pathway's layer."""
    height, width, channels = config.input_shape
    shapes = []
    for layer in range(config.n_layers):
        shapes.append((channels if layer == 0 else config.conv_channels, height, width))
        height, width = (height + 1) // 2, (width + 1) // 2
    return shapes


def conv_flops(config: Config, active: int, head: bool = True) -> float:
    """Matrix-product FLOPs of one training step of a convolutional pathway (stride-2 3x3 modules)."""
    channels, total = config.conv_channels, 0.0
    for layer, (channels_in, height, width) in enumerate(conv_shapes(config)):
        products = 2 if layer == 0 else 3
        total += products * 2 * BATCH * ((height + 1) // 2) * ((width + 1) // 2) * active * channels * channels_in * 9
    features = channels * ((height + 1) // 2) * ((width + 1) // 2)
    return total + (3 * 2 * BATCH * features * CLASSES if head else 0.0)


class LoopPathNet(nn.Module):
    """The straightforward implementation: one module object per module, a loop over active modules.

    Linear modules are ``nn.Linear``; convolutional ones ``nn.Conv2d`` (3x3, stride 2, padding 1)
    reading the ``(B, H, W, C)`` samples as NCHW maps.
    """

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        if config.module_type == "conv":
            sizes = [channels for channels, _, _ in conv_shapes(config)]
            self.layers = nn.ModuleList(nn.ModuleList(nn.Conv2d(size, config.conv_channels, 3, stride=2, padding=1)
                                                      for _ in range(config.n_modules)) for size in sizes)
            features = PathNet(config).feature_dim
        else:
            sizes = [config.input_dim] + [config.units] * (config.n_layers - 1)
            self.layers = nn.ModuleList(nn.ModuleList(nn.Linear(size, config.units) for _ in range(config.n_modules))
                                        for size in sizes)
            features = config.units
        self.head = nn.Linear(features, CLASSES)

    def forward(self, x: torch.Tensor, genotype: np.ndarray) -> torch.Tensor:
        if self.config.module_type == "conv":
            x = x.view(len(x), *self.config.input_shape).permute(0, 3, 1, 2)
        for layer, row in zip(self.layers, genotype):
            x = torch.stack([torch.relu(layer[m](x)) for m in np.unique(row)]).mean(0)
        return self.head(x.flatten(1))


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
            index = torch.as_tensor(np.unique(row), device=x.device)
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


def fastest(candidates: list[Callable[[], None]], device: torch.device) -> Callable[[], None]:
    """The fastest of ``candidates`` (the same work in different layouts), by a short timing."""
    seconds = best_seconds(candidates, 3, device)
    return candidates[int(np.argmin(seconds))]


def roofline(config: Config, active: int, steps: int, device: torch.device) -> Callable[[], None]:
    """Row (d): the first layer's two linear products on fixed operands, the faster weight layout."""
    x = torch.randn(BATCH, config.input_dim, device=device)
    grad = torch.randn(BATCH, active * config.units, device=device)
    weight_in_out = torch.randn(config.input_dim, active * config.units, device=device)
    weight_out_in = torch.randn(active * config.units, config.input_dim, device=device)

    def in_out() -> None:
        for _ in range(steps):
            x @ weight_in_out
            x.t() @ grad

    def out_in() -> None:
        for _ in range(steps):
            x @ weight_out_in.t()
            grad.t() @ x
    return fastest([in_out, out_in], device)


def conv_products(channels_in: int, height: int, width: int, channels_out: int, input_grad: bool,
                  device: torch.device) -> list[Callable[[], None]]:
    """One layer's convolution products (forward, weight gradient, input gradient if asked), each the
    fastest of NCHW, channels-last and im2col + GEMM (the GEMMs alone, the im2col not timed)."""
    convolution_backward = torch.ops.aten.convolution_backward
    products = []
    for which in ["forward", "weight"] + (["input"] if input_grad else []):
        candidates = []
        for layout in (torch.contiguous_format, torch.channels_last):
            maps = torch.randn(BATCH, channels_in, height, width, device=device).contiguous(memory_format=layout)
            weight = torch.randn(channels_out, channels_in, 3, 3, device=device)
            grad = F.conv2d(maps, weight, stride=2, padding=1).contiguous(memory_format=layout)
            mask = [which == "input", which == "weight", False]
            if which == "forward":
                candidates.append(lambda m=maps, w=weight: F.conv2d(m, w, stride=2, padding=1))
            else:
                candidates.append(lambda g=grad, m=maps, w=weight, k=mask: convolution_backward(
                    g, m, w, None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1, k))
        pixels = BATCH * ((height + 1) // 2) * ((width + 1) // 2)
        columns = torch.randn(pixels, channels_in * 9, device=device)
        weight = torch.randn(channels_in * 9, channels_out, device=device)
        grad = torch.randn(pixels, channels_out, device=device)
        candidates.append({"forward": lambda: columns @ weight, "weight": lambda: grad.t() @ columns,
                           "input": lambda: grad @ weight.t()}[which])
        products.append(fastest(candidates, device))
    return products


def layer_convolutions(channels_in: int, height: int, width: int, channels_out: int, input_grad: bool,
                       layout: torch.memory_format, device: torch.device) -> list[Callable[[], None]]:
    """One layer's library convolutions in one memory layout: forward, weight gradient and (if asked)
    input gradient, as autograd's backward of ``F.conv2d`` would call them."""
    convolution_backward = torch.ops.aten.convolution_backward
    maps = torch.randn(BATCH, channels_in, height, width, device=device).contiguous(memory_format=layout)
    weight = torch.randn(channels_out, channels_in, 3, 3, device=device)
    grad = F.conv2d(maps, weight, stride=2, padding=1).contiguous(memory_format=layout)
    mask = [input_grad, True, False]
    return [lambda: F.conv2d(maps, weight, stride=2, padding=1),
            lambda: convolution_backward(grad, maps, weight, None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1, mask)]


def plain_convolution(config: Config, active: int, steps: int, device: torch.device) -> Callable[[], None]:
    """Row (h): the step's convolutions as a plain batched convolution per layer (the active modules as
    one ``F.conv2d`` and its backward, as autograd runs them), in the faster of NCHW and channels-last."""
    def in_layout(layout: torch.memory_format) -> Callable[[], None]:
        products = [product for layer, (channels_in, height, width) in enumerate(conv_shapes(config))
                    for product in layer_convolutions(channels_in, height, width, active * config.conv_channels,
                                                      layer > 0, layout, device)]

        def run() -> None:
            for _ in range(steps):
                for product in products:
                    product()
        return run
    return fastest([in_layout(torch.contiguous_format), in_layout(torch.channels_last)], device)


def conv_roofline(config: Config, active: int, steps: int, device: torch.device) -> Callable[[], None]:
    """Row (g): every convolution of a conv step, each product in its fastest layout (module docstring)."""
    products = [product for layer, (channels_in, height, width) in enumerate(conv_shapes(config))
                for product in conv_products(channels_in, height, width, active * config.conv_channels,
                                             layer > 0, device)]

    def run() -> None:
        for _ in range(steps):
            for product in products:
                product()
    return run


def best_seconds(runs: list[Callable[[], None]], repeats: int, device: torch.device) -> list[float]:
    """Best wall time of each run over ``repeats`` rounds; rounds interleave the runs, so a
    burst of load from other processes hits every run alike rather than one row. On a GPU
    each timing ends with a synchronisation (kernels run asynchronously)."""
    def timed(run: Callable[[], None]) -> float:
        started = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started

    for run in runs:
        timed(run)  # warm-up: allocations, MKL/oneDNN/cuDNN kernel selection
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for position, run in enumerate(runs):
            best[position] = min(best[position], timed(run))
    return best


def measure(threads: int, repeats: int, device_name: str = "cpu", quick: bool = False) -> list[dict[str, float | str]]:
    torch.set_num_threads(threads)
    config = Config(device=device_name)
    device = torch_device(config)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(N_SAMPLES, config.input_dim, generator=generator).to(device)
    y = torch.randint(0, CLASSES, (N_SAMPLES,), generator=generator).to(device)
    steps = 4 if quick else config.steps_for(N_SAMPLES)
    active = GENOTYPE.shape[1]

    def stream() -> BatchStream:
        return BatchStream(X, y, BATCH, torch.Generator().manual_seed(1))

    def session(module_type: str) -> Row:
        row_config = config.replace(module_type=module_type)
        net = PathNet(row_config)
        net.add_head("bench", CLASSES)
        net_stream = stream()
        flops = conv_flops(row_config, active) if module_type == "conv" else linear_flops(row_config, active)
        return flops, lambda: train_steps(net, GENOTYPE, "bench", None, net_stream, steps, row_config)

    conv_config = config.replace(module_type="conv")
    rows = [
        ("(a) mtl session", *session("linear")),
        ("(b) per-module loop", linear_flops(config, active),
         autograd_trainer(LoopPathNet(config).to(device), stream(), steps)),
        ("(c) full-tensor autograd", linear_flops(config, active),
         autograd_trainer(FullTensorPathNet(config).to(device), stream(), steps)),
        ("(d) GEMM roofline", 4.0 * BATCH * config.input_dim * active * config.units,
         roofline(config, active, steps, device)),
        ("(e) mtl conv session", *session("conv")),
        ("(f) per-module conv loop", conv_flops(conv_config, active),
         autograd_trainer(LoopPathNet(conv_config).to(device), stream(), steps)),
        ("(g) conv roofline", conv_flops(conv_config, active, head=False),
         conv_roofline(conv_config, active, steps, device)),
        ("(h) plain batched convolution", conv_flops(conv_config, active, head=False),
         plain_convolution(conv_config, active, steps, device)),
    ]
    results = []
    for (name, flops, _), seconds in zip(rows, best_seconds([run for _, _, run in rows], repeats, device)):
        seconds /= steps
        results.append({"threads": threads, "device": describe_device(device), "name": name,
                        "ms_per_step": 1e3 * seconds, "samples_per_s": BATCH / seconds,
                        "gflops": flops / seconds / 1e9})
    return results


def table(results: list[dict[str, float | str]]) -> str:
    """Markdown table of ``results``: "vs roofline" is against (d) for linear rows and the strict (g)
    for conv rows; "vs plain conv" against (h), the plain batched convolution."""
    lines = ["| threads | implementation | ms/step | samples/s | GFLOP/s | vs roofline | vs plain conv | vs loop |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for threads in sorted({r["threads"] for r in results}):
        group = [r for r in results if r["threads"] == threads]
        named = {r["name"][:3]: r for r in group}
        for r in group:
            conv = r["name"][:3] in ("(e)", "(f)", "(g)", "(h)")
            roof, loop = (named["(g)"], named["(f)"]) if conv else (named["(d)"], named["(b)"])
            plain = f"{r['gflops'] / named['(h)']['gflops']:.0%}" if conv and "(h)" in named else ""
            lines.append(f"| {threads} | {r['name']} | {r['ms_per_step']:.2f} | {r['samples_per_s']:,.0f} | "
                         f"{r['gflops']:.1f} | {r['gflops'] / roof['gflops']:.0%} | {plain} | "
                         f"{loop['ms_per_step'] / r['ms_per_step']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per row; the best is kept (default 5)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                        help="where every row runs (the Config.device setting; default cpu)")
    parser.add_argument("--quick", action="store_true", help="4 steps per repetition: a check that it runs")
    parser.add_argument("--output", help="also write the table, its rows, the load average, the machine and the "
                                         "code's commit to this JSON file (benchmarks/results/pathnet_steps.json)")
    parser.add_argument("--note", default="", help="a sentence about the machine for --output (e.g. that it is shared)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results = [row for threads in args.threads for row in measure(threads, args.repeats, args.device, args.quick)]
    load_after = os.getloadavg()
    print(f"PathNet pathway training, paper shapes (input 12288, L=3, M=20, units 20, N=4, batch {BATCH}) on "
          f"{results[0]['device']}; {'4 steps' if args.quick else f'one pass of {N_SAMPLES} samples'} per "
          f"repetition, best of {args.repeats}; conv: 3x3 stride-2 modules of 8 channels, FLOPs of its own "
          f"products; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after\n")
    print(table(results))
    if args.output:
        from mtl.records import code_version

        record = {"what": __doc__.split("\n")[0], "date": datetime.date.today().isoformat(), "code": code_version(),
                  "machine": {"system": platform.system(), "machine": platform.machine(), "cores": os.cpu_count(),
                              "cpu": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                              "python": platform.python_version(), "torch": torch.__version__},
                  "note": args.note, "repeats": args.repeats, "quick": args.quick,
                  "load_average": {"before": load_before, "after": load_after},
                  "table": table(results).splitlines(), "rows": results}
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what :func:`platform.processor` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())

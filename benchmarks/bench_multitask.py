"""Training throughput of the multi-task residual CNN, against plain convolutions of the same shapes.

Rows, measured in one run at each thread count and network width (batch 64
crops of 64 x 64 x 3, 6 emotion classes, 13 AUs, half the batch without an
emotion label and half without AU labels):

(a) ``mtl`` step      -- one SGD step of :class:`mtl.multitask.ResidualNet` as
                         :class:`~mtl.multitask.MultiTaskClassifier` trains it:
                         forward with batch norm, both heads, the masked loss
                         (:func:`~mtl.multitask.loss.multitask_loss`), backward,
                         SGD with momentum;
(b) plain convolution -- the same network's convolutions alone, on fixed
                         operands of the same shapes: ``F.conv2d`` forward and
                         its backward (input gradient except for the first
                         convolution, weight gradient), nothing else -- what the
                         step costs at the machine's convolution speed.

FLOPs count the convolutions only (2 x multiply-adds; forward, weight
gradient and input gradient, the first layer without an input gradient); the
heads, batch norm and element-wise work are left out, so row (a)'s GFLOP/s
is a lower bound and its share of (b) says how much the rest of a step costs.
Samples/s is batch x steps / seconds. Peak memory: on a GPU
``torch.cuda.max_memory_allocated`` over the rows; on the CPU the process's
peak resident size (``ru_maxrss``), which includes the interpreter and torch.
The machine may be shared: each row is the best of ``--repeats`` repetitions,
interleaved so that load from other processes hits every row alike.

Run: ``python benchmarks/bench_multitask.py [--threads 1 2] [--widths 8 16] [--repeats 3]
[--device cpu|cuda|auto] [--quick] [--output FILE.json] [--note TEXT]``. The recorded run is
``benchmarks/results/multitask.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mtl.config import Config
from mtl.multitask import ResidualNet, multitask_loss
from mtl.pathnet.checks import describe_device, torch_device

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks share one timing helper
from bench_pathnet import best_seconds  # noqa: E402

BATCH, CLASSES, AUS, STEPS = 64, 6, 13, 20


def conv_shapes(net: ResidualNet) -> list[tuple[nn.Conv2d, tuple[int, ...], tuple[int, ...]]]:
    """Every convolution of ``net`` with its input and output shapes for one batch."""
    found: list[tuple[nn.Conv2d, tuple[int, ...], tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: found.append((m, tuple(i[0].shape), tuple(o.shape))))
             for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(BATCH, 64 * 64 * 3, device=next(net.parameters()).device))
    for hook in hooks:
        hook.remove()
    return found


def conv_flops(shapes: list[tuple[nn.Conv2d, tuple[int, ...], tuple[int, ...]]]) -> float:
    """Convolution FLOPs of one training step (module docstring)."""
    total = 0.0
    for position, (conv, _, out) in enumerate(shapes):
        macs = out[0] * out[1] * out[2] * out[3] * conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        total += 2 * macs * (2 if position == 0 else 3)
    return total


def measure(threads: int, width: int, repeats: int, device_name: str, steps: int) -> list[dict[str, object]]:
    torch.set_num_threads(threads)
    device = torch_device(Config(device=device_name))
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(BATCH, 64 * 64 * 3, generator=generator).to(device)
    emotion = torch.randint(0, CLASSES, (BATCH,), generator=generator)
    emotion[::2] = -1
    au = torch.randint(0, 2, (BATCH, AUS), generator=generator).float()
    au[1::2] = float("nan")
    emotion, au, head = emotion.to(device), au.to(device), torch.zeros(BATCH, dtype=torch.long, device=device)
    net = ResidualNet({"bench": CLASSES}, AUS, width=width).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    shapes = conv_shapes(net)
    flops = conv_flops(shapes)

    def train() -> None:
        for _ in range(steps):
            logits, au_logits = net(X)
            loss, _ = multitask_loss(logits, au_logits, emotion, head, au)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    operands = []
    for position, (conv, shape_in, shape_out) in enumerate(shapes):
        operand = torch.randn(shape_in, generator=generator).to(device).requires_grad_(position > 0)
        weight = torch.randn(conv.weight.shape, generator=generator).to(device).requires_grad_(True)
        grad = torch.randn(shape_out, generator=generator).to(device)
        operands.append((operand, weight, conv.stride, conv.padding, grad))

    def plain() -> None:
        for _ in range(steps):  # one backward over every convolution, as a training step has
            outs = [F.conv2d(operand, weight, stride=stride, padding=padding)
                    for operand, weight, stride, padding, _ in operands]
            torch.autograd.backward(outs, [grad for *_, grad in operands])

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = best_seconds([train, plain], repeats, device)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    rows = []
    for name, elapsed in zip(("(a) mtl step", "(b) plain convolution"), seconds):
        rows.append({"row": name, "threads": threads, "width": width, "device": describe_device(device),
                     "ms_per_step": 1000 * elapsed / steps, "samples_per_s": BATCH * steps / elapsed,
                     "gflops_per_s": flops * steps / elapsed / 1e9, "conv_gflop_per_step": flops / 1e9,
                     "parameters": sum(p.numel() for p in net.parameters())})
    rows[0]["share_of_plain"] = seconds[1] / seconds[0]
    for row in rows:
        row["peak_memory_mb"] = peak / 2**20
    return rows


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16], help="network widths (default 8 16)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per row; the best is kept (default 3)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="where to run (default cpu)")
    parser.add_argument("--quick", action="store_true", help="2 steps per repetition: a check that it runs")
    parser.add_argument("--output", help="also write the rows, the load average, the machine and the commit to "
                                         "this JSON file (benchmarks/results/multitask.json)")
    parser.add_argument("--note", default="", help="a sentence about the machine for --output")
    args = parser.parse_args(argv)
    steps = 2 if args.quick else STEPS
    rows = [row for threads in args.threads for width in args.widths
            for row in measure(threads, width, args.repeats, args.device, steps)]
    header = f"{'row':24} {'thr':>3} {'width':>5} {'ms/step':>8} {'samples/s':>9} {'GFLOP/s':>8} {'peak MB':>8}"
    print(header)
    for row in rows:
        print(f"{row['row']:24} {row['threads']:>3} {row['width']:>5} {row['ms_per_step']:8.1f} "
              f"{row['samples_per_s']:9.0f} {row['gflops_per_s']:8.2f} {row['peak_memory_mb']:8.0f}")
    if args.output:
        record = {"benchmark": "multitask", "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"), "commit": _commit(), "machine": platform.platform(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "torch": torch.__version__, "steps": steps, "batch": BATCH,
            "repeats": args.repeats, "note": args.note, "rows": rows}
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

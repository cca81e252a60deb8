"""PathNet (§3.3.1): L layers of M modules, pathways, one head per task.

Layout. Layer ``l`` keeps all its modules in one tensor: for linear modules
``weight[l]`` is ``(M, in_l, units)`` and ``bias[l]`` is ``(M, units)``
(``in_0 = config.input_dim``, ``in_l = units`` after). A layer's output is the
mean (``config.combine == "mean"``, the paper) or sum of ``ReLU(x @ W_m + b_m)``
over its active modules m; the last layer feeds the task's linear head.

Batched computation. A pathway's active modules are gathered into one
``(in_l, a * units)`` matrix per layer, so a layer is a single GEMM whatever
the number of active modules; there is no Python loop over modules.

Training. :meth:`PathNet.session` opens a *pathway training session*: the
active, non-frozen modules are copied once into contiguous tensors, trained
for any number of SGD steps, and written back when the session closes. A step
never touches the full ``(M, in, units)`` tensors, and frozen modules are
constants outside the optimiser, so they never change whatever the momentum or
weight decay. See :mod:`mtl.pathnet.sessions` for the speed notes.

The layer tensors are buffers, not parameters: they are trained only through
sessions. :meth:`torch.nn.Module.state_dict` holds every tensor of the network.

Device. The network lives on ``config.device`` (:func:`~mtl.pathnet.checks.torch_device`):
initial weights are drawn on the CPU from the seeded generators, then moved,
so every device starts from the same weights; sessions allocate their
buffers beside the weights.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from mtl.config import Config
from mtl.pathnet import conv
from mtl.pathnet.checks import CHUNK_ROWS, BadArgumentError, check_n_classes, torch_device, torch_generator
from mtl.pathnet.genotype import Frozen, active_modules
from mtl.pathnet.sessions import ConvSession, LinearSession, PathwaySession

#: Samples per evaluation chunk for convolutional networks (their maps are large).
CONV_CHUNK_ROWS = 256


class PathNet(nn.Module):
    """The PathNet of §3.3.1 with one linear head per task.

    Parameters
    ----------
    config : Config
        Architecture: ``input_shape`` (input_dim), ``n_layers`` (L),
        ``n_modules`` (M), ``units``, ``module_type`` (``"linear"`` or
        ``"conv"``), ``combine`` (``"mean"`` or ``"sum"``). The other fields are
        not used by the network.
    seed : int or None, default None
        Seed of the initial weights; ``None`` uses ``config.seed``.

    Notes
    -----
    Initial weights come from a generator seeded by ``seed`` only (never the
    global RNG). Module weights are He-uniform, U(-sqrt(6/fan_in), sqrt(6/fan_in)),
    biases and heads PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)). The
    paper does not say; PyTorch's default for the module weights shrinks the
    signal about 2.4x per ReLU layer, and averaging modules shrinks it further,
    so a 3-layer pathway at lr 0.02 sits at chance for many passes.

    Convolutional modules (``module_type="conv"``): a module is a 3x3 convolution
    with ``config.conv_channels`` output channels, stride 2 and padding 1 (it
    halves the maps, rounding up), + ReLU. Layer 1 reads the ``(H, W, C)``
    image, later layers the previous layer's combined feature maps; the head
    reads the last maps flattened channel by channel (8 x 8 x channels for
    64x64 input, L=3). Active modules of a layer are one convolution with
    their output channels stacked (they share the layer's input;
    :mod:`mtl.pathnet.conv`).
    Strided convolutions, as in
    the original PathNet's Atari modules, rather than full-size convolutions and
    2x2 pooling: the latter spend most of a step on element-wise passes over
    64x64 maps (ReLU, pooling) and train about 2x slower.
    """

    def __init__(self, config: Config, seed: int | None = None):
        super().__init__()
        self.config = config
        self.module_type = config.module_type
        self.units = config.conv_channels if self.module_type == "conv" else config.units
        self.n_layers = config.n_layers
        self.n_modules = config.n_modules
        height, width = (int(s) for s in config.input_shape[:2])
        if self.module_type == "conv":
            for _ in range(config.n_layers):
                height, width = (height + 1) // 2, (width + 1) // 2
            self.feature_dim = self.units * height * width
        else:
            self.feature_dim = self.units
        self.heads = nn.ModuleDict()
        self.device = torch_device(config)
        for layer in range(self.n_layers):
            self.register_buffer(f"weight{layer}", torch.empty(self._weight_shape(layer), device=self.device))
            self.register_buffer(f"bias{layer}", torch.empty(self.n_modules, self.units, device=self.device))
        self.reinitialize(seed=seed)

    def extra_repr(self) -> str:
        return (f"module_type={self.module_type!r}, L={self.n_layers}, M={self.n_modules}, units={self.units}, "
                f"input_dim={self.config.input_dim}, combine={self.config.combine!r}")

    # ------------------------------------------------------------------ layout
    def _weight_shape(self, layer: int) -> tuple[int, ...]:
        if self.module_type == "conv":
            fan_in = int(self.config.input_shape[2]) if layer == 0 else self.units
            return (self.n_modules, self.units, fan_in, 3, 3)
        fan_in = self.config.input_dim if layer == 0 else self.units
        return (self.n_modules, fan_in, self.units)

    def weight(self, layer: int) -> torch.Tensor:
        """All module weights of ``layer``: ``(M, in, units)`` (linear) or ``(M, c, c_in, 3, 3)`` (conv)."""
        return getattr(self, f"weight{layer}")

    def bias(self, layer: int) -> torch.Tensor:
        """All module biases of ``layer``: ``(M, units)``."""
        return getattr(self, f"bias{layer}")

    def _fan_in(self, layer: int) -> int:
        return int(np.prod(self._weight_shape(layer)[2:])) if self.module_type == "conv" else \
            self._weight_shape(layer)[1]

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def reinitialize(self, keep: Frozen | None = None, seed: int | None = None) -> None:
        """Draw fresh weights for every module except those in ``keep``.

        Parameters
        ----------
        keep : Frozen or None, default None
            Per layer, module indices whose weights stay as they are (the frozen
            source pathway in transfer). ``None`` reinitialises every module.
        seed : int or None, default None
            Seed of the new weights; ``None`` uses ``config.seed``. Heads are not
            touched (use ``heads.clear()`` / :meth:`add_head`).
        """
        generator = torch_generator(self.config.seed if seed is None else seed, "modules")
        for layer in range(self.n_layers):
            fan_in = self._fan_in(layer)
            bound_w, bound_b = np.sqrt(6.0 / fan_in), 1.0 / np.sqrt(fan_in)
            fresh_w = torch.empty(self._weight_shape(layer)).uniform_(-bound_w, bound_w, generator=generator)
            fresh_b = torch.empty(self.n_modules, self.units).uniform_(-bound_b, bound_b, generator=generator)
            replace = torch.ones(self.n_modules, dtype=torch.bool)
            if keep is not None:
                replace[torch.as_tensor(keep[layer], dtype=torch.long)] = False
            self.weight(layer)[replace.to(self.device)] = fresh_w[replace].to(self.device)
            self.bias(layer)[replace.to(self.device)] = fresh_b[replace].to(self.device)

    @torch.no_grad()
    def add_head(self, task: str, n_classes: int, seed: int | None = None) -> nn.Linear:
        """Create (or replace) the linear head of ``task`` with ``n_classes`` outputs.

        Parameters
        ----------
        task : str
            Task (domain) name, e.g. ``"source"`` or ``"target"``.
        n_classes : int
            Number of classes C (>= 2).
        seed : int or None, default None
            Seed of the head's initial weights; ``None`` uses ``config.seed``.
        """
        n_classes = check_n_classes(n_classes)
        head = nn.Linear(self.feature_dim, n_classes)
        generator = torch_generator(self.config.seed if seed is None else seed, "head", task)
        bound = 1.0 / np.sqrt(self.feature_dim)
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.uniform_(-bound, bound, generator=generator)
        self.heads[task] = head.to(self.device)
        return self.heads[task]

    def head(self, task: str) -> nn.Linear:
        """The head of ``task``; a clear error if there is none."""
        if task not in self.heads:
            known = ", ".join(repr(name) for name in self.heads) or "none"
            raise BadArgumentError(f"task {task!r}: the network has no head for it (heads: {known}); "
                                   "call add_head(task, n_classes) first")
        return self.heads[task]

    def copy(self) -> "PathNet":
        """An independent deep copy (weights, heads and config)."""
        return copy.deepcopy(self)

    def to_config_device(self, config: Config) -> "PathNet":
        """Take ``config`` (same architecture) and move to its device; returns ``self``.

        A source network trained (or saved) elsewhere serves a target run on the target's device.
        """
        self.config, self.device = config, torch_device(config)
        return self.to(self.device)

    # ------------------------------------------------------------------ forward
    def _check_batch(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(int(s) for s in self.config.input_shape)
        if x.ndim == 4 and tuple(x.shape[1:]) == shape:
            x = x.reshape(x.shape[0], -1)
        if x.ndim != 2 or x.shape[1] != self.config.input_dim:
            raise BadArgumentError(f"x: expected samples of shape {shape} or flattened to {self.config.input_dim} "
                                   f"values, got a tensor of shape {tuple(x.shape)}")
        return x.to(torch.float32)

    def _gather(self, layer: int, modules: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The weights of ``modules`` of ``layer`` laid out for one batched product.

        Linear: ``(in, a*units)`` and ``(a*units,)``; conv: ``(a*c, c_in, 3, 3)``
        and ``(a*c,)``. Always a copy.
        """
        index = torch.as_tensor(modules, dtype=torch.long, device=self.device)
        weight = self.weight(layer).index_select(0, index)
        bias = self.bias(layer).index_select(0, index).reshape(-1)
        if self.module_type == "conv":
            return weight.reshape(-1, *weight.shape[2:]), bias
        return weight.permute(1, 0, 2).reshape(weight.shape[1], -1), bias

    def _scale(self, n_active: int) -> float:
        """What a layer's module sum is multiplied by: 1/a (``combine="mean"``) or 1."""
        return 1.0 / n_active if self.config.combine == "mean" else 1.0

    def pathway_modules(self, genotype: Any, frozen: Frozen | None = None) -> list[np.ndarray]:
        """Per layer, the sorted module indices a pathway activates (evolving and frozen)."""
        return [np.sort(np.concatenate(pair)) for pair in active_modules(genotype, self.config, frozen)]

    def forward(self, x: torch.Tensor, genotype: Any, task: str, frozen: Frozen | None = None) -> torch.Tensor:
        """Logits of ``task`` for a batch, through the pathway ``genotype``.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, H, W, C)`` or ``(B, input_dim)`` float samples.
        genotype : array-like of int, shape (L, N)
            The pathway (0-based module indices).
        task : str
            Which head to use.
        frozen : Frozen or None, default None
            Modules active in every pathway (transfer), see
            :func:`~mtl.pathnet.genotype.active_modules`.

        Returns
        -------
        torch.Tensor, shape (B, C)
        """
        x = self._check_batch(x)
        head = self.head(task)
        gathered = [self._gather(layer, modules) for layer, modules in
                    enumerate(self.pathway_modules(genotype, frozen))]
        return self._run(x, gathered, head)

    def _run(self, x: torch.Tensor, gathered: list[tuple[torch.Tensor, torch.Tensor]], head: nn.Linear) -> torch.Tensor:
        """Logits of a batch: per layer all active modules in one product, then ReLU and combine."""
        if self.module_type == "conv":
            return self._run_conv(x, gathered, head)
        hidden = x
        for weight, bias in gathered:
            grouped = torch.relu(torch.addmm(bias, hidden, weight)).unflatten(1, (len(bias) // self.units, -1))
            hidden = grouped.mean(1) if self.config.combine == "mean" else grouped.sum(1)
        return head(hidden)

    def _run_conv(self, x: torch.Tensor, gathered: list[tuple[torch.Tensor, torch.Tensor]],
                  head: nn.Linear) -> torch.Tensor:
        maps, scale = conv.images(x, self.config.input_shape), 1.0
        for weight, bias in gathered:
            kernel = weight if scale == 1.0 else weight * scale
            _, maps = conv.layer_forward(maps, kernel, bias, len(bias) // self.units)
            scale = self._scale(len(bias) // self.units)
        return torch.addmm(head.bias, conv.features(maps), head.weight.t(), alpha=scale)

    @torch.no_grad()
    def predict_logits(self, X: torch.Tensor, genotype: Any, task: str, frozen: Frozen | None = None,
                       chunk_rows: int | None = None) -> torch.Tensor:
        """Logits for a whole data set, ``chunk_rows`` samples at a time.

        The pathway's weights are gathered once, then every chunk is one
        batched pass. ``X`` is a ``(n, input_dim)`` (or ``(n, H, W, C)``) tensor.
        ``chunk_rows=None`` uses 2048 samples (linear) or 256 (conv, whose
        first-layer maps take about 130 kB per sample and module).
        """
        X = self._check_batch(X)
        chunk_rows = chunk_rows or (CONV_CHUNK_ROWS if self.module_type == "conv" else CHUNK_ROWS)
        head = self.head(task)
        gathered = [self._gather(layer, modules) for layer, modules in
                    enumerate(self.pathway_modules(genotype, frozen))]
        return torch.cat([self._run(X[start:start + chunk_rows], gathered, head)
                          for start in range(0, X.shape[0], chunk_rows)])

    def accuracy(self, X: torch.Tensor, y: torch.Tensor, genotype: Any, task: str,
                 frozen: Frozen | None = None) -> float:
        """Fraction of ``X`` whose arg-max logit equals ``y`` (forward only)."""
        predicted = self.predict_logits(X, genotype, task, frozen).argmax(1)
        return float((predicted == y).to(torch.float64).mean())

    # ------------------------------------------------------------------ training
    def session(self, genotype: Any, task: str, frozen: Frozen | None = None, *, lr: float = 0.02,
                momentum: float = 0.0, weight_decay: float = 0.0, dropout: float = 0.0) -> "PathwaySession":
        """Open a training session for one pathway (use as a context manager).

        Parameters
        ----------
        genotype : array-like of int, shape (L, N)
            The pathway to train.
        task : str
            The head trained with it.
        frozen : Frozen or None, default None
            Modules active in the pathway but never trained.
        lr, momentum, weight_decay : float, defaults 0.02, 0.0, 0.0
            ``torch.optim.SGD`` settings (the momentum buffers live as long as
            the session).
        dropout : float, default 0.0
            Probability that a module output is dropped in a training step
            (inverted dropout); with ``dropout > 0`` set the session's
            ``dropout_generator`` (a seeded ``torch.Generator``) before stepping.

        ``with net.session(g, "target") as s: s.step(xb, yb)`` trains and writes
        the weights back on exit.
        """
        session_type = ConvSession if self.module_type == "conv" else LinearSession
        return session_type(self, genotype, task, frozen, lr=lr, momentum=momentum, weight_decay=weight_decay,
                            dropout=dropout)

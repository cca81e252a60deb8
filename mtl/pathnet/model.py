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
weight decay. See :class:`PathwaySession` for the speed notes.

The layer tensors are buffers, not parameters: they are trained only through
sessions. :meth:`torch.nn.Module.state_dict` holds every tensor of the network.

Device. The network lives on ``config.device`` (:func:`~mtl.pathnet.checks.torch_device`):
initial weights are drawn on the CPU from the seeded generators, then moved,
so every device starts from the same weights; sessions allocate their
buffers beside the weights.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mtl.config import Config
from mtl.pathnet.checks import CHUNK_ROWS, BadArgumentError, check_n_classes, torch_device, torch_generator
from mtl.pathnet.genotype import Frozen, active_modules

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
    reads the last maps flattened (8 x 8 x channels for 64x64 input, L=3).
    Active modules of a layer are one convolution with their channels
    concatenated (they share the layer's input). Strided convolutions, as in
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

    def _to_maps(self, x: torch.Tensor) -> torch.Tensor:
        height, width, channels = (int(s) for s in self.config.input_shape)
        # contiguous NCHW: oneDNN is ~1.5x slower on the channels-last view of (H, W, C) samples
        return x.reshape(x.shape[0], height, width, channels).permute(0, 3, 1, 2).contiguous()

    def _combine(self, activations: torch.Tensor, n_active: int) -> torch.Tensor:
        grouped = activations.unflatten(1, (n_active, -1))
        return grouped.mean(1) if self.config.combine == "mean" else grouped.sum(1)

    def _layer(self, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, n_active: int) -> torch.Tensor:
        """One layer: all active modules in one product, then ReLU and combine."""
        if self.module_type == "conv":
            return self._combine(torch.relu(F.conv2d(inputs, weight, bias, stride=2, padding=1)), n_active)
        return self._combine(torch.relu(torch.addmm(bias, inputs, weight)), n_active)

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
        hidden = self._to_maps(x) if self.module_type == "conv" else x
        for weight, bias in gathered:
            hidden = self._layer(hidden, weight, bias, len(bias) // self.units)
        return head(hidden.flatten(1))

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
                momentum: float = 0.0, weight_decay: float = 0.0) -> "PathwaySession":
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

        ``with net.session(g, "target") as s: s.step(xb, yb)`` trains and writes
        the weights back on exit.
        """
        session_type = ConvSession if self.module_type == "conv" else LinearSession
        return session_type(self, genotype, task, frozen, lr=lr, momentum=momentum, weight_decay=weight_decay)


class PathwaySession(ABC):
    """Trains one pathway of a :class:`PathNet` on mini-batches.

    On opening, the pathway's active modules are copied into contiguous
    tensors (trainable modules first, frozen ones after); :meth:`step` makes one
    SGD step on a mini-batch; :meth:`write_back` copies the trained modules and
    head back into the network (done on closing). Between opening and the last
    write-back the network's own tensors are stale: do not evaluate it then.
    """

    def __init__(self, net: PathNet, genotype: Any, task: str, frozen: Frozen | None, *,
                 lr: float, momentum: float, weight_decay: float):
        self.net = net
        self.head = net.head(task)
        self.layers = active_modules(genotype, net.config, frozen)
        self.trainable = [torch.as_tensor(evolving, dtype=torch.long, device=net.device) for evolving, _ in self.layers]
        self.n_active = [len(evolving) + len(fixed) for evolving, fixed in self.layers]
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.optimizer: torch.optim.SGD
        self.steps = 0

    def __enter__(self) -> "PathwaySession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.write_back()

    @abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD step (mean cross-entropy) on ``x`` ``(B, input_dim)`` float32 and ``y`` ``(B,)`` int64."""

    def _write_modules(self, copy_weight: Any) -> None:
        """Copy each layer's trained modules into the network: weights by ``copy_weight(layer, index)``
        (their layout differs by module type), biases here."""
        for layer, index in enumerate(self.trainable):
            if len(index):
                copy_weight(layer, index)
                self.net.bias(layer).index_copy_(0, index, self.bias_train[layer].view(len(index), -1))

    @abstractmethod
    def write_back(self) -> None:
        """Copy the trained modules and head into the network."""

    def momentum_buffers(self) -> list[torch.Tensor | None]:
        """Copies of the optimiser's momentum buffers, one per parameter (``None`` before the first step)."""
        state = self.optimizer.state
        return [None if state.get(p, {}).get("momentum_buffer") is None else state[p]["momentum_buffer"].clone()
                for p in self.optimizer.param_groups[0]["params"]]

    def load_momentum_buffers(self, buffers: Sequence[torch.Tensor | None]) -> None:
        """Restore buffers saved by :meth:`momentum_buffers` (resuming a checkpoint)."""
        for param, buffer in zip(self.optimizer.param_groups[0]["params"], buffers, strict=True):
            if buffer is not None:
                self.optimizer.state[param]["momentum_buffer"] = buffer.clone()


class LinearSession(PathwaySession):
    """Training session of a linear PathNet, written for throughput.

    The pathway is a small MLP whose first layer dominates the work
    (``(B, 12288) x (12288, a*20)``). Per step the session does one forward
    GEMM and one weight-gradient GEMM for that layer and small products for the
    rest, with the backward pass written out (mean/sum combine, ReLU, softmax
    cross-entropy), which avoids autograd bookkeeping on tiny tensors.

    Optimiser. Every trainable tensor except the first layer's weights (biases,
    later layers, head) lives in one flat buffer, updated by one
    ``torch.optim.SGD`` parameter. The first layer's trainable weights:

    * ``momentum == 0``: the weight-gradient GEMM is fused with the SGD update,
      ``W <- (1 - lr*weight_decay) * W - lr * x^T g``, which is exactly
      ``torch.optim.SGD``'s update without materialising the gradient;
    * ``momentum > 0``: the gradient is written to a buffer and the weights are a
      second parameter of the same ``torch.optim.SGD``.

    Frozen modules sit in separate columns (first layer) or separate constant
    tensors (later layers) that no update touches.
    """

    def __init__(self, net: PathNet, genotype: Any, task: str, frozen: Frozen | None, *,
                 lr: float, momentum: float, weight_decay: float):
        super().__init__(net, genotype, task, frozen, lr=lr, momentum=momentum, weight_decay=weight_decay)
        units = net.units
        self.combine_mean = net.config.combine == "mean"
        n_train = [len(index) for index in self.trainable]
        sizes = [n * units for n in n_train]  # layer biases
        sizes += [net.weight(layer).shape[1] * n_train[layer] * units for layer in range(1, net.n_layers)]
        sizes += [self.head.weight.numel(), self.head.bias.numel()]
        device = net.device
        self.flat = torch.empty(sum(sizes), device=device)
        self.flat_grad = torch.zeros_like(self.flat)
        pieces = iter(zip(self.flat.split(sizes), self.flat_grad.split(sizes)))
        self.bias_train, self.bias_grad = zip(*[next(pieces) for _ in range(net.n_layers)])
        self.weight_train, self.weight_grad = [None], [None]  # layer 0 is self.first_weight
        self.weight_fixed, self.bias_fixed = [], []
        with torch.no_grad():
            for layer, (evolving, fixed) in enumerate(self.layers):
                weight, bias = net._gather(layer, np.concatenate([evolving, fixed]))
                split = n_train[layer] * units
                self.bias_train[layer].copy_(bias[:split])
                self.bias_fixed.append(bias[split:])
                if layer == 0:
                    self.first_weight = weight  # (in, a*units): trainable columns, then frozen
                    self.weight_fixed.append(None)
                    continue
                flat_w, flat_g = next(pieces)
                self.weight_train.append(flat_w.view(weight.shape[0], split))
                self.weight_grad.append(flat_g.view(weight.shape[0], split))
                self.weight_train[layer].copy_(weight[:, :split])
                self.weight_fixed.append(weight[:, split:])
            (head_w, head_wg), (head_b, head_bg) = next(pieces), next(pieces)
            self.head_weight = head_w.view(self.head.in_features, -1)  # (features, C), transposed head.weight
            self.head_weight_grad = head_wg.view_as(self.head_weight)
            self.head_bias, self.head_bias_grad = head_b, head_bg
            self.head_weight.copy_(self.head.weight.t())
            self.head_bias.copy_(self.head.bias)
        self.first_split = n_train[0] * units
        self.first_train = self.first_weight[:, :self.first_split]
        self.flat.grad = self.flat_grad
        params = [self.flat]
        self.fused_first = momentum == 0.0
        if not self.fused_first and self.first_split:
            self.first_grad = torch.zeros(self.first_train.shape, device=device)
            self.first_train.grad = self.first_grad
            params.append(self.first_train)
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self._zero = torch.zeros((), device=device)
        self._minus_one = torch.full((net.config.batch_size, 1), -1.0, device=device)

    def _layer_tensors(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        bias = self.bias_train[layer]
        if len(self.bias_fixed[layer]):
            bias = torch.cat([bias, self.bias_fixed[layer]])
        if layer == 0:
            return self.first_weight, bias
        weight = self.weight_train[layer]
        if self.weight_fixed[layer].shape[1]:
            weight = torch.cat([weight, self.weight_fixed[layer]], dim=1)
        return weight, bias

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD step (mean cross-entropy) on ``x`` ``(B, input_dim)`` float32 and ``y`` ``(B,)`` int64."""
        # Layer l's output is scale[l+1] * sums[l+1], the scale (1/a for the mean) riding on the
        # products' alpha; ReLU'(z) is sign(ReLU(z)). Both save small operations, which matter here.
        batch, units, zero = x.shape[0], self.net.units, self._zero
        if batch > len(self._minus_one):
            self._minus_one = torch.full((batch, 1), -1.0, device=x.device)
        sums, scales, activations, weights = [x], [1.0], [], []
        for layer in range(self.net.n_layers):
            weight, bias = self._layer_tensors(layer)
            hidden = torch.addmm(bias, sums[-1], weight, alpha=scales[-1]).clamp_min_(0)
            sums.append(hidden.view(batch, self.n_active[layer], units).sum(1))
            scales.append(1.0 / self.n_active[layer] if self.combine_mean else 1.0)
            activations.append(hidden)
            weights.append(weight)
        logits = torch.addmm(self.head_bias, sums[-1], self.head_weight, alpha=scales[-1])
        grad = torch.softmax(logits, dim=1).scatter_add_(1, y.unsqueeze(1), self._minus_one[:batch]).div_(batch)
        torch.addmm(zero, sums[-1].t(), grad, beta=0, alpha=scales[-1], out=self.head_weight_grad)
        torch.sum(grad, 0, out=self.head_bias_grad)
        grad_sum = torch.addmm(zero, grad, self.head_weight.t(), beta=0, alpha=scales[-1])
        for layer in range(self.net.n_layers - 1, -1, -1):
            n_active = self.n_active[layer]
            grad_pre = activations[layer].sign().view(batch, n_active, units).mul_(grad_sum.unsqueeze(1))
            grad_pre = grad_pre.view(batch, n_active * units)
            grad_train = grad_pre[:, :len(self.bias_train[layer])]
            torch.sum(grad_train, 0, out=self.bias_grad[layer])
            if layer > 0:
                torch.addmm(zero, sums[layer].t(), grad_train, beta=0, alpha=scales[layer], out=self.weight_grad[layer])
                grad_sum = torch.addmm(zero, grad_pre, weights[layer].t(), beta=0, alpha=scales[layer])
            elif self.fused_first:
                # Every other gradient is complete: step before the large product, which would
                # evict the optimiser's Python objects from the cache and make the step ~6x slower.
                self.optimizer.step()
                if grad_train.shape[1]:
                    self.first_train.addmm_(x.t(), grad_train, beta=1.0 - self.lr * self.weight_decay,
                                            alpha=-self.lr)
            else:
                if grad_train.shape[1]:
                    torch.mm(x.t(), grad_train, out=self.first_grad)
                self.optimizer.step()
        self.steps += 1

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the trained modules and head into the network."""
        def copy_weight(layer: int, index: torch.Tensor) -> None:
            weight = self.first_train if layer == 0 else self.weight_train[layer]
            self.net.weight(layer).permute(1, 0, 2).index_copy_(1, index, weight.unflatten(1, (len(index), -1)))

        self._write_modules(copy_weight)
        self.head.weight.copy_(self.head_weight.t())
        self.head.bias.copy_(self.head_bias)


class ConvSession(PathwaySession):
    """Training session of a convolutional PathNet (autograd + ``torch.optim.SGD``).

    Trainable modules of each layer are one leaf tensor ``(t*c, c_in, 3, 3)``
    (and a bias leaf); frozen modules are constants concatenated after them, so
    a layer is still one convolution. The head is trained in place.
    """

    def __init__(self, net: PathNet, genotype: Any, task: str, frozen: Frozen | None, *,
                 lr: float, momentum: float, weight_decay: float):
        super().__init__(net, genotype, task, frozen, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.weight_train, self.bias_train, self.weight_fixed, self.bias_fixed = [], [], [], []
        with torch.no_grad():
            for layer, (evolving, fixed) in enumerate(self.layers):
                weight, bias = net._gather(layer, evolving)
                self.weight_train.append(weight.requires_grad_())
                self.bias_train.append(bias.requires_grad_())
                weight, bias = net._gather(layer, fixed)
                self.weight_fixed.append(weight)
                self.bias_fixed.append(bias)
        params = [t for t in self.weight_train + self.bias_train if t.numel()] + list(self.head.parameters())
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD step (mean cross-entropy) on ``x`` ``(B, input_dim)`` float32 and ``y`` ``(B,)`` int64."""
        hidden = self.net._to_maps(x)
        for layer in range(self.net.n_layers):
            weight = torch.cat([self.weight_train[layer], self.weight_fixed[layer]])
            bias = torch.cat([self.bias_train[layer], self.bias_fixed[layer]])
            hidden = self.net._layer(hidden, weight, bias, self.n_active[layer])
        loss = F.cross_entropy(self.head(hidden.flatten(1)), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the trained modules into the network (the head is trained in place)."""
        self._write_modules(lambda layer, index: self.net.weight(layer).index_copy_(
            0, index, self.weight_train[layer].unflatten(0, (len(index), -1))))

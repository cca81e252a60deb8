"""Pathway training sessions: one pathway's modules trained by SGD, written for throughput.

:meth:`mtl.pathnet.model.PathNet.session` opens one. On opening, the
pathway's active, non-frozen modules are copied into contiguous tensors;
:meth:`PathwaySession.step` makes one SGD step on a mini-batch with the
backward pass written out (no autograd); :meth:`PathwaySession.write_back`
copies the trained modules and the head back (done on closing). Frozen
modules are constants outside the optimiser, so they never change whatever
the momentum or weight decay. The tests check both sessions against autograd
and ``torch.optim.SGD`` on a per-module network (``tests/test_pathnet_model.py``).

* :class:`LinearSession`: the first layer's forward and weight-gradient GEMMs
  dominate; with plain SGD its weight gradient is fused with the update.
* :class:`ConvSession`: every layer one library convolution of
  channels-last maps (:mod:`mtl.pathnet.conv`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch

from mtl.pathnet import conv
from mtl.pathnet.genotype import Frozen, active_modules
from mtl.pathnet.state import StateFileError

if TYPE_CHECKING:
    from mtl.pathnet.model import PathNet


class PathwaySession(ABC):
    """Trains one pathway of a :class:`PathNet` on mini-batches.

    On opening, the pathway's active modules are copied into contiguous
    tensors (trainable modules first, frozen ones after); :meth:`step` makes one
    SGD step on a mini-batch; :meth:`write_back` copies the trained modules and
    head back into the network (done on closing). Between opening and the last
    write-back the network's own tensors are stale: do not evaluate it then.
    """

    def __init__(self, net: PathNet, genotype: Any, task: str, frozen: Frozen | None, *,
                 lr: float, momentum: float, weight_decay: float, dropout: float = 0.0):
        self.net = net
        self.head = net.head(task)
        self.layers = active_modules(genotype, net.config, frozen)
        self.trainable = [torch.as_tensor(evolving, dtype=torch.long, device=net.device) for evolving, _ in self.layers]
        self.n_active = [len(evolving) + len(fixed) for evolving, fixed in self.layers]
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.dropout = float(dropout)
        self.dropout_generator: torch.Generator | None = None
        """The seeded CPU generator the dropout masks are drawn from (needed when ``dropout > 0``)."""
        self.optimizer: torch.optim.SGD
        self.steps = 0

    def __enter__(self) -> "PathwaySession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.write_back()

    @abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD step (mean cross-entropy) on ``x`` ``(B, input_dim)`` float32 and ``y`` ``(B,)`` int64."""

    def _drop(self, activations: torch.Tensor) -> None:
        """Inverted dropout of module outputs, in place: each value is kept with probability
        ``1 - dropout`` and scaled by ``1 / (1 - dropout)``. The mask comes from
        :attr:`dropout_generator` on the CPU, so it is the same on every device.

        The backward passes need no mask of their own: ``sign`` of a dropped-out
        ReLU output is ReLU' times the mask, and they multiply by
        :attr:`keep_scale`.
        """
        if self.dropout_generator is None:
            raise ValueError("a session with dropout > 0 needs session.dropout_generator, a seeded torch.Generator")
        keep = torch.rand(activations.shape, generator=self.dropout_generator) >= self.dropout
        activations.mul_(keep.to(activations.device, activations.dtype).mul_(self.keep_scale))

    @property
    def keep_scale(self) -> float:
        """``1 / (1 - dropout)``: the factor of kept module outputs (1 without dropout)."""
        return 1.0 / (1.0 - self.dropout)

    def _allocate(self, sizes: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One flat parameter buffer and its gradient for tensors of ``sizes``, then the head's two.

        Returns ``(value, gradient)`` views for each entry of ``sizes``; the head's
        (``head_weight`` ``(features, C)``, the transpose of ``head.weight``, and
        ``head_bias``) are set here, filled from the head.
        """
        device = self.net.device
        head = [self.head.weight.numel(), self.head.bias.numel()]
        self.flat = torch.empty(sum(sizes) + sum(head), device=device)
        self.flat_grad = torch.zeros_like(self.flat)
        self.flat.grad = self.flat_grad
        pieces = list(zip(self.flat.split(sizes + head), self.flat_grad.split(sizes + head)))
        (head_w, head_wg), (head_b, head_bg) = pieces[-2:]
        self.head_weight = head_w.view(self.head.in_features, -1)
        self.head_weight_grad = head_wg.view_as(self.head_weight)
        self.head_bias, self.head_bias_grad = head_b, head_bg
        with torch.no_grad():
            self.head_weight.copy_(self.head.weight.t())
            self.head_bias.copy_(self.head.bias)
        self._zero = torch.zeros((), device=device)
        self._minus_one = torch.full((self.net.config.batch_size, 1), -1.0, device=device)
        return iter(pieces[:-2])

    def _head_backward(self, features: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
        """Logits of ``scale * features``, the head's gradients (mean cross-entropy), and the gradient
        with respect to ``features`` (the unscaled module sums: ``scale`` included)."""
        batch, zero = features.shape[0], self._zero
        if batch > len(self._minus_one):
            self._minus_one = torch.full((batch, 1), -1.0, device=features.device)
        logits = torch.addmm(self.head_bias, features, self.head_weight, alpha=scale)
        grad = torch.softmax(logits, dim=1).scatter_add_(1, y.unsqueeze(1), self._minus_one[:batch]).div_(batch)
        torch.addmm(zero, features.t(), grad, beta=0, alpha=scale, out=self.head_weight_grad)
        torch.sum(grad, 0, out=self.head_bias_grad)
        return torch.addmm(zero, grad, self.head_weight.t(), beta=0, alpha=scale)

    def _write_head(self) -> None:
        self.head.weight.copy_(self.head_weight.t())
        self.head.bias.copy_(self.head_bias)

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
        """Restore buffers saved by :meth:`momentum_buffers` (resuming a checkpoint).

        Buffers of another layout (a checkpoint of an older session) raise
        :class:`~mtl.pathnet.state.StateFileError`, so that the run starts afresh.
        """
        params = self.optimizer.param_groups[0]["params"]
        if len(buffers) != len(params) or any(b is not None and b.shape != p.shape for p, b in zip(params, buffers)):
            raise StateFileError("the checkpoint's momentum buffers do not fit this training session "
                                 "(written by another version): start afresh")
        for param, buffer in zip(params, buffers):
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
                 lr: float, momentum: float, weight_decay: float, dropout: float = 0.0):
        super().__init__(net, genotype, task, frozen, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         dropout=dropout)
        units = net.units
        n_train = [len(index) for index in self.trainable]
        sizes = [n * units for n in n_train]  # layer biases
        sizes += [net.weight(layer).shape[1] * n_train[layer] * units for layer in range(1, net.n_layers)]
        pieces = self._allocate(sizes)
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
        self.first_split = n_train[0] * units
        self.first_train = self.first_weight[:, :self.first_split]
        params = [self.flat]
        self.fused_first = momentum == 0.0
        if not self.fused_first and self.first_split:
            self.first_grad = torch.zeros(self.first_train.shape, device=net.device)
            self.first_train.grad = self.first_grad
            params.append(self.first_train)
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

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
        sums, scales, activations, weights = [x], [1.0], [], []
        for layer in range(self.net.n_layers):
            weight, bias = self._layer_tensors(layer)
            hidden = torch.addmm(bias, sums[-1], weight, alpha=scales[-1]).clamp_min_(0)
            if self.dropout:
                self._drop(hidden)
            sums.append(hidden.view(batch, self.n_active[layer], units).sum(1))
            scales.append(self.net._scale(self.n_active[layer]))
            activations.append(hidden)
            weights.append(weight)
        grad_sum = self._head_backward(sums[-1], y, scales[-1])
        for layer in range(self.net.n_layers - 1, -1, -1):
            n_active = self.n_active[layer]
            grad_pre = activations[layer].sign().view(batch, n_active, units).mul_(grad_sum.unsqueeze(1))
            grad_pre = grad_pre.view(batch, n_active * units)
            if self.dropout:
                grad_pre.mul_(self.keep_scale)
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
        self._write_head()



class ConvSession(PathwaySession):
    """Training session of a convolutional PathNet, written for throughput like :class:`LinearSession`.

    Each layer is one library convolution of channels-last maps
    (:mod:`mtl.pathnet.conv`), the modules' outputs combined pixel by pixel.
    The backward pass is written out: per layer the gradient copied to the
    modules and the ReLU mask, then one library call for the weight and bias
    gradients and (above the first layer) the input gradient.

    Every trainable tensor (the trainable modules' weights ``(t*c, c_in*9)`` and
    biases, the head) lives in one flat buffer updated by one
    ``torch.optim.SGD`` parameter, so momentum and weight decay are exactly
    ``torch.optim.SGD``'s. Frozen modules are constant output channels appended
    to their layer's convolution: they pass gradients down and are never updated.
    """

    def __init__(self, net: PathNet, genotype: Any, task: str, frozen: Frozen | None, *,
                 lr: float, momentum: float, weight_decay: float, dropout: float = 0.0):
        super().__init__(net, genotype, task, frozen, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         dropout=dropout)
        rows = [len(index) * net.units for index in self.trainable]
        self.kernel_shapes = [tuple(net.weight(layer).shape[2:]) for layer in range(net.n_layers)]
        fan_in = [int(np.prod(shape)) for shape in self.kernel_shapes]
        pieces = self._allocate([n * k for n, k in zip(rows, fan_in)] + rows)
        weights = [next(pieces) for _ in range(net.n_layers)]
        self.bias_train, self.bias_grad = zip(*[next(pieces) for _ in range(net.n_layers)])
        self.weight_train = [w.view(n, k) for (w, _), n, k in zip(weights, rows, fan_in)]
        self.weight_grad = [g.view(n, k) for (_, g), n, k in zip(weights, rows, fan_in)]
        self.weight_fixed, self.bias_fixed = [], []
        with torch.no_grad():
            for layer, (evolving, fixed) in enumerate(self.layers):
                weight, bias = net._gather(layer, np.concatenate([evolving, fixed]))
                weight = weight.reshape(len(bias), -1)
                self.weight_train[layer].copy_(weight[:rows[layer]])
                self.bias_train[layer].copy_(bias[:rows[layer]])
                self.weight_fixed.append(weight[rows[layer]:])
                self.bias_fixed.append(bias[rows[layer]:])
        self.optimizer = torch.optim.SGD([self.flat], lr=lr, momentum=momentum, weight_decay=weight_decay)

    def _layer_tensors(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not len(self.bias_fixed[layer]):
            return self.weight_train[layer], self.bias_train[layer]
        return (torch.cat([self.weight_train[layer], self.weight_fixed[layer]]),
                torch.cat([self.bias_train[layer], self.bias_fixed[layer]]))

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD step (mean cross-entropy) on ``x`` ``(B, input_dim)`` float32 and ``y`` ``(B,)`` int64."""
        # Layer l's input is scale * (sum of the previous modules' outputs), the scale (1/a for the mean)
        # riding on the kernel, which is tiny: its gradient is then the kernel gradient times the scale.
        maps = conv.images(x, self.net.config.input_shape)
        drop = self._drop if self.dropout else None
        scale, saved = 1.0, []
        for layer in range(self.net.n_layers):
            weight, bias = self._layer_tensors(layer)
            kernel = weight.view(len(bias), *self.kernel_shapes[layer])
            if scale != 1.0:
                kernel = kernel * scale
            outputs, summed = conv.layer_forward(maps, kernel, bias, self.n_active[layer], drop)
            saved.append((maps, kernel, outputs, scale))
            maps, scale = summed, self.net._scale(self.n_active[layer])
        grad_features = self._head_backward(conv.features(maps), y, scale)
        grad_summed = grad_features.view(maps.shape).contiguous(memory_format=torch.channels_last)
        for layer in range(self.net.n_layers - 1, -1, -1):
            maps, kernel, outputs, scale = saved[layer]
            grad_kernel, grad_bias, grad_summed = conv.layer_backward(
                maps, kernel, outputs, grad_summed, self.n_active[layer], layer > 0, self.keep_scale)
            rows = len(self.bias_train[layer])
            self.weight_grad[layer].copy_(grad_kernel.reshape(len(grad_bias), -1)[:rows])  # may come channels-last
            if scale != 1.0:
                self.weight_grad[layer].mul_(scale)
            self.bias_grad[layer].copy_(grad_bias[:rows])
        self.optimizer.step()
        self.steps += 1

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the trained modules and head into the network."""
        def copy_weight(layer: int, index: torch.Tensor) -> None:
            modules = self.net.weight(layer)
            modules.index_copy_(0, index, self.weight_train[layer].view(len(index), *modules.shape[1:]))

        self._write_modules(copy_weight)
        self._write_head()

"""Convolutional modules as one library convolution per layer, channels-last, forward and backward.

A convolutional module (:class:`~mtl.pathnet.model.PathNet`, ``module_type="conv"``)
is a 3x3 convolution, stride 2, padding 1, with ``c`` output channels, + ReLU.
The active modules of a layer share its input, so the layer is one
convolution with ``a*c`` output channels, their weights stacked module by
module (``PathNet.weight(layer)`` reshaped to ``(M*c, c_in, 3, 3)``, no
reordering).

Layout. Maps are *channels-last*: ``(B, C, H, W)`` tensors whose memory is
``(B, H, W, C)``, the layout of the input samples themselves (a view, no
copy), in which the library convolution (oneDNN on the CPU) runs its forward,
weight-gradient and input-gradient products as fast as in any other layout
(``benchmarks/bench_pathnet.py``, rows (g) and (h)). In that memory every
pixel's module outputs lie side by side, ``a`` groups of ``c`` values, so
combining the modules is a 1x1 convolution with a 0/1 kernel, and so is its
adjoint, which copies the gradient of the combined maps to every module. An
earlier version kept maps channel-first and ran the later layers as im2col +
GEMM; the patch copies and their adjoint (col2im) cost more than the products
they fed.

:func:`layer_forward` is one layer forward; :func:`layer_backward` its weight,
bias and input gradients from the gradient of its combined output.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch.nn import functional as F

STRIDE, PADDING = [2, 2], [1, 1]


def output_size(size: int) -> int:
    """Height (or width) of a stride-2, padding-1, 3x3 convolution's output: ``ceil(size / 2)``."""
    return (size + 1) // 2


def images(x: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """``(B, H*W*C)`` samples as ``(B, C, H, W)`` images in channels-last memory (a view of contiguous samples)."""
    height, width, channels = input_shape
    return x.reshape(x.shape[0], height, width, channels).permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=64)
def _combining_kernels(n_active: int, channels: int, device: torch.device, dtype: torch.dtype
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """1x1 convolution kernels of 0s and 1s: ``(c, a*c)`` sums ``a`` modules' ``c`` channels, ``(a*c, c)``
    copies ``c`` channels to every module (its adjoint). Built once per shape."""
    spread = torch.eye(channels, device=device, dtype=dtype).repeat(n_active, 1)  # (a*c, c)
    return spread.t().contiguous()[:, :, None, None], spread[:, :, None, None].contiguous()


def layer_forward(maps: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor, n_active: int,
                  drop: Callable[[torch.Tensor], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer: the modules' outputs ``ReLU(conv(maps))`` and their sum over the ``n_active`` modules.

    Parameters
    ----------
    maps : torch.Tensor, (B, C, H, W), channels-last
        The layer's input (the images, or the previous layer's combined maps).
    kernel : torch.Tensor, (a*c, C, 3, 3)
        The active modules' weights, stacked module by module (times the
        previous layer's 1/a when modules are averaged).
    bias : torch.Tensor, (a*c,)
    n_active : int
        ``a``, the number of modules.
    drop : callable or None
        Changes the outputs in place before the sum (dropout), given them as
        a ``(B, H', W', a*c)`` view (the memory order of channels-last maps).

    Returns
    -------
    outputs : torch.Tensor, (B, a*c, H', W'), channels-last
        The modules' outputs (what :func:`layer_backward` takes).
    summed : torch.Tensor, (B, c, H', W'), channels-last
        Their sum over the modules.

    The sum is a 1x1 convolution with a 0/1 kernel: in channels-last memory
    the modules of a pixel are adjacent groups of ``c`` values, and the
    library convolution adds them up about twice as fast as a reduction over
    that middle axis.
    """
    outputs = F.conv2d(maps, kernel, bias, stride=2, padding=1).clamp_min_(0)
    if drop is not None:
        drop(outputs.permute(0, 2, 3, 1))
    if n_active == 1:
        return outputs, outputs
    summing, _ = _combining_kernels(n_active, outputs.shape[1] // n_active, outputs.device, outputs.dtype)
    return outputs, F.conv2d(outputs, summing)


def layer_backward(maps: torch.Tensor, kernel: torch.Tensor, outputs: torch.Tensor, grad_summed: torch.Tensor,
                   n_active: int, input_grad: bool, keep_scale: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`layer_forward` from the gradient of its module sum.

    ``grad_summed`` is the ``(B, c, H', W')`` gradient of the sum, channels-last
    (it may be overwritten); ``outputs`` come from :func:`layer_forward`. The
    gradient of the pre-activations is ``ReLU'(z)`` times the gradient copied
    to every module (a 1x1 convolution, the adjoint of the sum) times
    ``keep_scale`` (dropout's ``1/(1 - p)``; 1 without); ``ReLU'(z)`` is
    ``outputs > 0``, which after dropout also carries its mask.

    Returns the ``(a*c, C, 3, 3)`` gradient of ``kernel``, the ``(a*c,)`` bias
    gradient, and, with ``input_grad``, the ``(B, C, H, W)`` gradient of ``maps``
    (channels-last), else None: one library call for all three.
    """
    channels = outputs.shape[1]
    if n_active == 1:
        spread = grad_summed
    else:
        spread = F.conv2d(grad_summed, _combining_kernels(n_active, channels // n_active, outputs.device,
                                                          outputs.dtype)[1])
    grad_pre = torch.ops.aten.threshold_backward.grad_input(spread, outputs, 0, grad_input=spread)
    if keep_scale != 1.0:
        grad_pre.mul_(keep_scale)
    grad_maps, grad_kernel, grad_bias = torch.ops.aten.convolution_backward(
        grad_pre, maps, kernel, [channels], STRIDE, PADDING, [1, 1], False, [0, 0], 1, [input_grad, True, True])
    return grad_kernel, grad_bias, grad_maps if input_grad else None


def features(maps: torch.Tensor) -> torch.Tensor:
    """The last layer's ``(B, c, H, W)`` maps as ``(B, c*H*W)`` head inputs, flattened channel by channel
    (the order of PathNet's head weights; a copy of channels-last maps)."""
    return maps.reshape(maps.shape[0], -1)

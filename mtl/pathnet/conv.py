"""Convolutional modules as one matrix product per layer (im2col), forward and backward.

A convolutional module (:class:`~mtl.pathnet.model.PathNet`, ``module_type="conv"``)
is a 3x3 convolution, stride 2, padding 1, with ``c`` output channels, + ReLU.
The active modules of a layer share its input, so the layer is one product:

    Z = W @ columns(maps) + b          W: (a*c, c_in*9), columns: (c_in*9, B*H'*W')

with ``a`` active modules, their weights stacked module by module (the rows
of ``PathNet.weight(layer)`` reshaped to ``(M*c, c_in*9)``, no reordering).

Layout. Maps are kept *channel first*, ``(C, B, H, W)``. Then the rows of Z
are module-major blocks of ``c * B*H'*W'`` contiguous values, so the work
around the product runs over long contiguous rows: combining the modules is
a sum of ``a`` contiguous blocks, the ReLU mask of the backward pass a product
with the layer's gradient broadcast over the blocks, the bias gradient a
row sum. (With samples first, NCHW or channels-last, these passes stride over
8-channel groups.)

The first layer is the exception (:func:`first_layer`): its input, the
``(B, H, W, 3)`` samples, is already a channels-last image, and on it the
library convolution (oneDNN on the CPU) runs its forward and weight-gradient
products two to three times faster than a product with only 27 patch rows,
while a layout change of the input would cost a pass over it; its modules'
outputs are combined into channel-first maps for the layers above.

:func:`columns` gathers the 3x3 stride-2 patches of zero-padded maps;
:func:`add_columns` is its adjoint (col2im), the input gradient of a layer
from the gradient of its columns. Buffers are passed in so that a training
session reuses them from step to step (a fresh multi-megabyte tensor per step
costs page faults comparable to the arithmetic).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch.nn import functional as F


def output_size(size: int) -> int:
    """Height (or width) of a stride-2, padding-1, 3x3 convolution's output: ``ceil(size / 2)``."""
    return (size + 1) // 2


def padded_buffer(channels: int, batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """A zeroed ``(channels, batch, height + 2, width + 2)`` buffer on ``like``'s device."""
    return torch.zeros(channels, batch, height + 2, width + 2, device=like.device, dtype=like.dtype)


def columns(maps: torch.Tensor, padded: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The 3x3 stride-2 patches of ``maps`` as a ``(C*9, B*H'*W')`` matrix.

    Parameters
    ----------
    maps : torch.Tensor, (C, B, H, W)
        Channel-first maps, any strides (a permuted view of ``(B, H, W, C)`` samples is read as it is).
    padded : torch.Tensor, (C, B, H + 2, W + 2)
        A :func:`padded_buffer`; its border stays zero, its interior is overwritten.
    out : torch.Tensor or None
        ``(C*9, B*H'*W')`` buffer for the result (allocated when None).

    Rows are ordered ``(channel, kernel row, kernel column)``, as a
    ``(c_out, C, 3, 3)`` weight flattens; columns ``(sample, row, column)``.
    """
    channels, batch, height, width = maps.shape
    rows, cols = output_size(height), output_size(width)
    padded[:, :, 1:height + 1, 1:width + 1].copy_(maps)
    s_channel, s_batch, s_row, s_col = padded.stride()
    patches = padded.as_strided((channels, 3, 3, batch, rows, cols),
                                (s_channel, s_row, s_col, s_batch, 2 * s_row, 2 * s_col))
    if out is None:
        out = torch.empty(channels * 9, batch * rows * cols, device=maps.device, dtype=maps.dtype)
    out.view(channels, 3, 3, batch, rows, cols).copy_(patches)
    return out


def add_columns(grad_columns: torch.Tensor, grad_padded: torch.Tensor) -> torch.Tensor:
    """The adjoint of :func:`columns`: the gradient of the maps from the gradient of their columns.

    ``grad_columns`` is ``(C*9, B*H'*W')``; ``grad_padded`` a
    :func:`padded_buffer` of the maps' size, overwritten. Returns the
    ``(C, B, H, W)`` gradient, a view of ``grad_padded``.
    """
    channels, batch, height, width = grad_padded.shape
    height, width = height - 2, width - 2
    rows, cols = output_size(height), output_size(width)
    taps = grad_columns.view(channels, 3, 3, batch, rows, cols)
    grad_padded.zero_()
    for row in range(3):
        for col in range(3):
            grad_padded[:, :, row:row + 2 * rows - 1:2, col:col + 2 * cols - 1:2].add_(taps[:, row, col])
    return grad_padded[:, :, 1:height + 1, 1:width + 1]


def layer_forward(cols: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, scale: float,
                  n_active: int, drop: Callable[[torch.Tensor], None] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer on its columns: ``Z = ReLU(scale * W @ cols + b)`` and the sum of its modules' outputs.

    ``weight`` is ``(a*c, C*9)``, ``bias`` ``(a*c,)``; ``scale`` multiplies the
    input (the previous layer's 1/a when modules are averaged, folded into the
    product); ``drop``, if given, changes ``Z`` in place before the sum (dropout).
    Returns ``Z`` ``(a*c, N)`` and the module sum ``(c, N)``.
    """
    activations = torch.addmm(bias.unsqueeze(1), weight, cols, alpha=scale).clamp_min_(0)
    if drop is not None:
        drop(activations)
    return activations, activations.view(n_active, -1).sum(0).view(-1, cols.shape[1])


def images(x: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """``(B, H*W*C)`` samples as ``(B, C, H, W)`` images in channels-last memory (a view of contiguous samples)."""
    height, width, channels = input_shape
    return x.reshape(x.shape[0], height, width, channels).permute(0, 3, 1, 2)


def _module_sums(n_active: int, channels: int, like: torch.Tensor) -> torch.Tensor:
    """The ``(a*c, c)`` matrix that sums ``a`` blocks of ``c`` channels (ones where a row's channel is the column)."""
    return _summing_matrix(n_active, channels, like.device, like.dtype)


@functools.lru_cache(maxsize=64)
def _summing_matrix(n_active: int, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # Built once per shape: a training step needs it twice, and two small allocations per step add up.
    return torch.eye(channels, device=device, dtype=dtype).repeat(n_active, 1)


def first_layer(images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, n_active: int,
                drop: Callable[[torch.Tensor], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first layer on the input images: its activations and the channel-first sum of its modules.

    ``weight`` is ``(a*c, C, 3, 3)``. Returns the activations ``ReLU(conv(images))``
    as a ``(B*H'*W', a*c)`` matrix (pixels by channels, the convolution's
    channels-last output; what :func:`first_layer_backward` takes) and the
    module sum as ``(c, B, H', W')`` maps. The sum is a product with a 0/1
    matrix, which also turns the pixels-first layout channel-first in the same
    pass (a reduction over 8-channel groups would be a slow strided pass).
    """
    outputs = F.conv2d(images, weight, bias, stride=2, padding=1).clamp_min_(0)
    batch, channels, height, width = outputs.shape
    activations = outputs.permute(0, 2, 3, 1).reshape(-1, channels)  # a view when the output is channels-last
    if drop is not None:
        drop(activations)
    summed = torch.mm(_module_sums(n_active, channels // n_active, activations).t(), activations.t())
    return activations, summed.view(-1, batch, height, width)


def first_layer_backward(images: torch.Tensor, weight: torch.Tensor, activations: torch.Tensor,
                         grad_maps: torch.Tensor, n_active: int, keep_scale: float = 1.0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias gradients of :func:`first_layer` from the gradient of its module sum.

    ``grad_maps`` is ``(c, B, H', W')``; ``activations`` (from :func:`first_layer`)
    are overwritten: they become the gradient of the layer's pre-activations,
    ``ReLU' * grad`` with the gradient spread over the modules by the transposed
    summing product, times ``keep_scale`` (dropout's ``1/(1 - p)``; 1 without).
    Returns the ``(a*c, C, 3, 3)`` weight gradient and the ``(a*c,)`` bias gradient.
    """
    channels, batch, height, width = grad_maps.shape
    spread = torch.mm(grad_maps.reshape(channels, -1).t(), _module_sums(n_active, channels, activations).t())
    grad_pre = activations.sign_().mul_(spread)  # (pixels, a*c)
    if keep_scale != 1.0:  # dropout: the kept outputs were scaled by keep_scale
        grad_pre.mul_(keep_scale)
    grad_weight = torch.ops.aten.convolution_backward(
        grad_pre.view(batch, height, width, -1).permute(0, 3, 1, 2), images, weight, None, [2, 2], [1, 1],
        [1, 1], False, [0, 0], 1, [False, True, False])[1]
    return grad_weight, grad_pre.sum(0)


def features(maps: torch.Tensor, batch: int) -> torch.Tensor:
    """The last layer's channel-first maps (``(c, B, H, W)`` or ``(c, B*H*W)``) as ``(B, c*H*W)`` head
    inputs, flattened channel by channel (the order of PathNet's head weights)."""
    return maps.reshape(maps.shape[0], batch, -1).transpose(0, 1).reshape(batch, -1)

"""The residual CNN shared by emotion recognition and action-unit detection (after Pons & Masip, 2018).

One trunk, several heads, in the spirit of the multi-task, multi-label,
multi-domain network of :cite:`pons2018multitask`:

1. a stem: 3 x 3 convolution with stride 2 (64 x 64 x 3 crops -> 32 x 32 x
   ``width``), batch norm, ReLU -- the stride halves the cost of every later layer;
2. ``len(blocks)`` residual stages; stage ``s`` has ``blocks[s]`` basic
   residual blocks (two 3 x 3 convolutions with batch norm, an identity
   shortcut, or a 1 x 1 convolution with batch norm where the shape changes)
   and ``width * 2**s`` channels; every stage after the first halves the
   resolution (stride 2 in its first block);
3. global average pooling to one feature vector;
4. heads on that vector: one emotion head per corpus (a linear layer, softmax
   over that corpus's classes; corpora with different class sets get
   different heads) and one AU head (a linear layer, one sigmoid per AU).

The defaults (``width=16``, ``blocks=(1, 1, 1)``: 32 x 32, 16 x 16 and 8 x 8
feature maps with 16, 32 and 64 channels, about 79,000 weights) keep a
training step cheap on a CPU; Pons & Masip's network is a much deeper
ResNet on larger images. Inputs are NHWC float32 ``(n, 64, 64, 3)`` arrays
(the layout of :mod:`mtl.features.cache`) or flattened ``(n, 12288)``.
Weights are initialised from a seed (He initialisation for the convolutions,
PyTorch's default for the linear heads) inside :func:`torch.random.fork_rng`,
so building a network never touches the global random state.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["ResidualBlock", "ResidualNet"]


class ResidualBlock(nn.Module):
    """Two 3 x 3 convolutions with batch norm and a shortcut: ``relu(f(x) + shortcut(x))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResidualNet(nn.Module):
    """Residual trunk with per-corpus emotion heads and one AU head.

    Parameters
    ----------
    emotion_heads : mapping of head name -> number of classes
        One softmax head per corpus (or per class set); may be empty (AU only).
    n_aus : int
        Sigmoid outputs of the AU head; 0 for no AU head.
    width : int, default 16
        Channels of the stem and of the first stage (doubled at each later stage).
    blocks : sequence of int, default (1, 1, 1)
        Residual blocks per stage; its length is the number of stages.
    image_shape : (H, W, C), default (64, 64, 3)
    seed : int, default 0
        Seed of the initial weights.
    """

    def __init__(self, emotion_heads: dict[str, int], n_aus: int, width: int = 16,
                 blocks: Sequence[int] = (1, 1, 1), image_shape: Sequence[int] = (64, 64, 3), seed: int = 0):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        channels = [width * 2 ** s for s in range(len(blocks))]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.stem = nn.Sequential(nn.Conv2d(self.image_shape[2], width, 3, 2, 1, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU())
            layers, previous = [], width
            for stage, (count, out) in enumerate(zip(blocks, channels)):
                for index in range(count):
                    layers.append(ResidualBlock(previous, out, 2 if stage > 0 and index == 0 else 1))
                    previous = out
            self.stages = nn.Sequential(*layers)
            self.emotion = nn.ModuleDict({name: nn.Linear(previous, int(n)) for name, n in emotion_heads.items()})
            self.au = nn.Linear(previous, n_aus) if n_aus else None
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.n_features = previous

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared representation ``(n, n_features)`` of NHWC or flattened inputs."""
        # NCHW memory, not the channels-last view of the samples: with that view, training on 2 threads
        # crashed in the backward pass (a segmentation fault in torch 2.13's CPU build; 1 thread ran).
        x = x.reshape(x.shape[0], *self.image_shape).permute(0, 3, 1, 2).contiguous()
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """``({head: emotion logits (n, C_head)}, AU logits (n, n_aus) or None)`` for every sample."""
        shared = self.features(x)
        emotions = {name: head(shared) for name, head in self.emotion.items()}
        return emotions, None if self.au is None else self.au(shared)

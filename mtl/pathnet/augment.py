"""SpecAugment-style masks of a mini-batch of log-Mel segments (beyond the paper; off by default).

Each training sample of a mini-batch gets ``config.time_masks`` bands of
consecutive frames (columns of its 64 x 64 image, every channel) and
``config.freq_masks`` bands of consecutive Mel bands (rows) set to 0 --
the training mean, since inputs are standardised -- each band 1 to
``config.mask_width`` wide at a uniformly random position (Park et al.,
2019, without time warping). Only training batches are masked; fitness and
evaluation read the inputs as they are.

The positions come from a generator the caller seeds per pathway training
(:func:`mtl.pathnet.evolution.evolve` seeds it with the run's seed, the task,
the generation and the pick), so the GA's and the batches' random streams
are those of a run without masks, and a resumed run masks as an
uninterrupted one does.
"""

from __future__ import annotations

import torch

from mtl.config import Config

__all__ = ["masking", "mask_batch"]


def masking(config: Config) -> bool:
    """Whether ``config`` asks for any mask."""
    return config.time_masks > 0 or config.freq_masks > 0


def _bands(n: int, size: int, count: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, size)`` boolean: ``count`` random bands of 1..``width`` consecutive positions per row."""
    positions = torch.arange(size)
    masked = torch.zeros(n, size, dtype=torch.bool)
    for _ in range(count):
        widths = torch.randint(1, width + 1, (n, 1), generator=generator)
        starts = (torch.rand(n, 1, generator=generator) * (size - widths + 1)).long()
        masked |= (positions >= starts) & (positions < starts + widths)
    return masked


def mask_batch(x: torch.Tensor, config: Config, generator: torch.Generator) -> torch.Tensor:
    """``x`` (``(n, H*W*C)``, flattened ``(H, W, C)`` samples) with its masks applied in place; returns ``x``."""
    height, width, channels = config.input_shape
    images = x.view(len(x), height, width, channels)
    keep = torch.ones(len(x), height, width, dtype=torch.bool)
    if config.time_masks:
        keep &= ~_bands(len(x), width, config.time_masks, min(config.mask_width, width), generator)[:, None, :]
    if config.freq_masks:
        keep &= ~_bands(len(x), height, config.freq_masks, min(config.mask_width, height), generator)[:, :, None]
    images.mul_(keep.to(x.device, x.dtype)[..., None])
    return x

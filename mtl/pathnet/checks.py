"""Argument checks shared by the PathNet code: features, labels, seeds, the device.

Every public function of :mod:`mtl.pathnet` converts its arrays here, so a bad
argument gets the same clear message wherever it enters, and every tensor of
a run is placed on the run's device (:func:`torch_device`, from
``Config.device``) here, once per run.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

from mtl.config import DEVICES, Config
from mtl.errors import ConfigError, MtlError

#: Rows per chunk when a whole data set is scanned (finiteness check, evaluation).
CHUNK_ROWS = 2048


class BadArgumentError(MtlError, ValueError):
    """An array or value passed to :mod:`mtl.pathnet` cannot be used.

    The message names the argument (``X``, ``y``, ``genotype``, ...) and says
    what was expected and what was given.
    """


def torch_device(config: Config | str) -> torch.device:
    """The torch device ``Config.device`` names: ``"cpu"``; ``"cuda"``, the first GPU (a
    :class:`~mtl.errors.ConfigError` when torch finds none); ``"auto"``, the GPU when there is one."""
    name = config.device if isinstance(config, Config) else config
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {name!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"device='cuda', but torch {torch.__version__} finds no CUDA GPU "
                          f"(a CPU-only build, or no driver); use device='cpu' or 'auto'")
    return torch.device("cuda", torch.cuda.current_device())


def describe_device(device: torch.device) -> str:
    """What a record says it ran on: ``"cpu"``, or ``"cuda:0 (NVIDIA H200)"``."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def as_features(X: Any, config: Config, name: str = "X") -> torch.Tensor:
    """``X`` as one float32 tensor of shape ``(n, config.input_dim)`` on ``config``'s device.

    Parameters
    ----------
    X : array-like or torch.Tensor
        ``(n, H, W, C)`` samples with ``(H, W, C) == config.input_shape`` (e.g.
        ``(n, 64, 64, 3)``), or the same flattened to ``(n, H*W*C)`` (12288).
        Assumed already standardised by the caller. A float32, C-contiguous
        array is used without a copy on the CPU; on a GPU it is copied there
        once (after the checks).
    config : Config
        Gives ``input_shape`` and ``device`` (:func:`torch_device`).
    name : str, default "X"
        Argument name used in error messages.

    Raises
    ------
    BadArgumentError
        Wrong shape, no samples, or NaN/infinite values.
    """
    shape = tuple(int(s) for s in config.input_shape)
    expected = f"samples of shape {shape} or flattened to {config.input_dim} values"
    if isinstance(X, torch.Tensor):
        tensor = X.detach().to(device="cpu", dtype=torch.float32)
    else:
        array = np.asarray(X)
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise BadArgumentError(f"{name}: expected numbers, got an array of dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if tensor.ndim == 4 and tuple(tensor.shape[1:]) == shape:
        tensor = tensor.reshape(tensor.shape[0], -1)
    elif not (tensor.ndim == 2 and tensor.shape[1] == config.input_dim):
        raise BadArgumentError(f"{name}: expected {expected} (input_shape={shape}, input_dim={config.input_dim}), "
                               f"got an array of shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise BadArgumentError(f"{name}: no samples (empty array of shape {tuple(tensor.shape)})")
    tensor = tensor.contiguous()
    for start in range(0, tensor.shape[0], CHUNK_ROWS):
        finite = torch.isfinite(tensor[start:start + CHUNK_ROWS]).all(dim=1)
        if not bool(finite.all()):
            first = start + int((~finite).nonzero()[0, 0])
            raise BadArgumentError(f"{name}: sample {first} contains NaN or infinite values")
    return tensor.to(torch_device(config))


def as_labels(y: Any, n_samples: int, n_classes: int | None = None, name: str = "y",
              device: torch.device | None = None) -> torch.Tensor:
    """``y`` as an int64 tensor of ``n_samples`` labels in ``[0, n_classes - 1]`` (on ``device``, default the CPU).

    Parameters
    ----------
    y : array-like of int
        Class labels 0..C-1, one per sample.
    n_samples : int
        Number of samples the labels must match.
    n_classes : int or None, default None
        C. ``None`` only checks that labels are >= 0.
    name : str, default "y"
        Argument name used in error messages.
    device : torch.device or None, default None
        Where the labels go (the run's device, :func:`torch_device`); ``None``: the CPU.
    """
    array = np.asarray(y.cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if array.ndim != 1:
        raise BadArgumentError(f"{name}: expected a 1-D array of labels, got shape {array.shape}")
    if len(array) != n_samples:
        raise BadArgumentError(f"{name}: {len(array)} labels for {n_samples} samples")
    if len(array) == 0:
        raise BadArgumentError(f"{name}: no labels (empty array)")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise BadArgumentError(f"{name}: labels must be integers 0..C-1, got dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    allowed = f"[0, {n_classes - 1}] (n_classes={n_classes})" if n_classes is not None else "[0, C-1]"
    if low < 0 or (n_classes is not None and high >= n_classes):
        raise BadArgumentError(f"{name}: labels must be in {allowed}, got values from {low} to {high}")
    return torch.from_numpy(array.astype(np.int64)).to(device or "cpu")


def check_n_classes(n_classes: Any, name: str = "n_classes") -> int:
    """``n_classes`` as an int >= 2."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise BadArgumentError(f"{name}: expected an integer >= 2, got {n_classes!r}")
    return int(n_classes)


def derived_seed(seed: int, *labels: str) -> int:
    """A 63-bit seed for one purpose (``labels``) of a run seeded with ``seed``.

    Different purposes (initial weights, genetic algorithm, mini-batches, ...)
    get independent streams, so adding random draws to one never shifts another.
    """
    entropy = [int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF]
    entropy += [zlib.crc32(label.encode("utf-8")) for label in labels]
    words = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def torch_generator(seed: int, *labels: str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derived_seed`."""
    return torch.Generator().manual_seed(derived_seed(seed, *labels))


def numpy_generator(seed: int, *labels: str) -> np.random.Generator:
    """A numpy ``Generator`` (PCG64) seeded with :func:`derived_seed`."""
    return np.random.default_rng(derived_seed(seed, *labels))

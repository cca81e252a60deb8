"""Pathway genotypes: random draws, mutation, and which modules they activate.

A genotype is an ``(L, N)`` integer array: row ``l`` lists the modules of layer
``l`` the pathway uses, as 0-based indices in ``[0, M-1]``. Genes may repeat;
a layer's active modules are its *distinct* genes, so a pathway uses between 1
and N modules per layer (§3.3.1: "a maximum of N distinct modules per layer").

In transfer (§3.3.2) a *frozen* set per layer -- the distinct modules of the
source task's best pathway -- is active in every target pathway beside the
evolving genes. ``Config.frozen_counts_toward_n`` chooses how the two combine,
see :func:`active_modules`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mtl.config import Config
from mtl.pathnet.checks import BadArgumentError

Frozen = tuple[np.ndarray, ...]
"""Frozen modules: one sorted int64 array of distinct module indices per layer."""


def random_genotype(config: Config, rng: np.random.Generator) -> np.ndarray:
    """A genotype with every gene drawn uniformly from ``[0, M-1]``.

    Parameters
    ----------
    config : Config
        Gives L (``n_layers``), N (``max_active``) and M (``n_modules``).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray of int64, shape (L, N)
    """
    return rng.integers(0, config.n_modules, size=(config.n_layers, config.max_active), dtype=np.int64)


def mutate(genotype: np.ndarray, config: Config, rng: np.random.Generator) -> np.ndarray:
    """A mutated copy of ``genotype`` (§3.3.2, step 3).

    Each gene, independently with probability ``config.per_gene_mutation_rate``
    (1/(N*L) by default), gets a uniform integer in
    ``[-config.mutation_range, config.mutation_range]`` added (0 included, as in
    the original PathNet). Genes leaving ``[0, M-1]`` are clipped
    (``config.boundary == "clip"``) or wrapped modulo M (``"wrap"``).

    Parameters
    ----------
    genotype : array-like of int, shape (L, N)
    config : Config
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int64, shape (L, N); the input is not modified.
    """
    genes = check_genotype(genotype, config)
    # Draw both arrays for every gene, whatever the outcome: the random stream
    # then advances by the same amount every call, which keeps runs comparable.
    mutates = rng.random(genes.shape) < config.per_gene_mutation_rate
    deltas = rng.integers(-config.mutation_range, config.mutation_range + 1, size=genes.shape, dtype=np.int64)
    mutated = genes + np.where(mutates, deltas, 0)
    if config.boundary == "clip":
        return np.clip(mutated, 0, config.n_modules - 1)
    return np.mod(mutated, config.n_modules)


def check_genotype(genotype: Any, config: Config, name: str = "genotype") -> np.ndarray:
    """``genotype`` as an ``(L, N)`` int64 array with genes in ``[0, M-1]``.

    Raises :class:`~mtl.pathnet.checks.BadArgumentError` naming the problem.
    """
    array = np.asarray(genotype)
    expected = (config.n_layers, config.max_active)
    if array.shape != expected:
        raise BadArgumentError(f"{name}: expected an (L, N) = {expected} integer array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise BadArgumentError(f"{name}: genes must be integers, got dtype {array.dtype}")
    if array.min() < 0 or array.max() >= config.n_modules:
        raise BadArgumentError(f"{name}: genes must be module indices in [0, {config.n_modules - 1}] "
                               f"(M={config.n_modules}), got values from {array.min()} to {array.max()}")
    return array.astype(np.int64)


def frozen_modules(genotype: Any, config: Config) -> Frozen:
    """The distinct modules of each layer of ``genotype``: the set to freeze in transfer."""
    genes = check_genotype(genotype, config)
    return tuple(np.unique(row) for row in genes)


def check_frozen(frozen: Sequence[Any] | None, config: Config, name: str = "frozen") -> Frozen | None:
    """``frozen`` (one list of module indices per layer, or None) as :data:`Frozen`.

    Each layer's list must hold distinct indices in ``[0, M-1]``; with
    ``config.frozen_counts_toward_n`` it may hold at most N of them.
    """
    if frozen is None:
        return None
    if isinstance(frozen, np.ndarray) and frozen.ndim == 2:
        frozen = list(frozen)
    if len(frozen) != config.n_layers:
        raise BadArgumentError(f"{name}: expected one list of module indices per layer (L={config.n_layers}), "
                               f"got {len(frozen)}")
    layers = []
    for layer, modules in enumerate(frozen):
        array = np.asarray(modules, dtype=np.int64).reshape(-1)
        if len(np.unique(array)) != len(array):
            raise BadArgumentError(f"{name}: layer {layer} lists a module twice: {array.tolist()}")
        if len(array) and (array.min() < 0 or array.max() >= config.n_modules):
            raise BadArgumentError(f"{name}: layer {layer} has module indices outside [0, {config.n_modules - 1}]: "
                                   f"{array.tolist()}")
        if config.frozen_counts_toward_n and len(array) > config.max_active:
            raise BadArgumentError(f"{name}: layer {layer} freezes {len(array)} modules, more than N="
                                   f"{config.max_active} (frozen_counts_toward_n=True)")
        layers.append(np.sort(array))
    return tuple(layers)


def active_modules(genotype: Any, config: Config,
                   frozen: Sequence[Any] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, the ``(evolving, frozen)`` modules a pathway activates.

    ``evolving`` are the distinct genes of the layer that are not frozen,
    ``frozen`` the layer's frozen set (empty without transfer); both sorted.

    * ``config.frozen_counts_toward_n = False`` (default): every frozen module
      is active and so is every distinct gene; a gene naming a frozen module
      just points at it. A layer then has at most ``|frozen| + N`` modules.
    * ``True``: frozen modules take the first places of the layer's N; the
      genes, read left to right, fill the remaining places with modules not yet
      active (repeats and frozen modules are skipped); genes beyond the N-th
      distinct module are dormant until mutation or the genes before them
      change. A layer then has at most N modules.
    """
    genes = check_genotype(genotype, config)
    frozen_sets = check_frozen(frozen, config)
    layers = []
    for layer, row in enumerate(genes):
        fixed = frozen_sets[layer] if frozen_sets is not None else np.empty(0, np.int64)
        evolving: list[int] = []
        capacity = config.max_active - len(fixed) if config.frozen_counts_toward_n else config.max_active
        for gene in row.tolist():
            if len(evolving) >= capacity:
                break
            if gene not in evolving and gene not in fixed:
                evolving.append(gene)
        layers.append((np.array(sorted(evolving), dtype=np.int64), fixed))
    return layers

"""Pathway evolution by the microbial genetic algorithm (§3.3.2, §4.2), and fine-tuning.

:func:`evolve` runs G binary tournaments on one task:

1. a population of S random genotypes (:func:`~mtl.pathnet.genotype.random_genotype`);
2. each generation picks K distinct individuals at random and trains their
   pathways one after the other (they share the network's weights) with SGD
   for T = ``config.steps_for(n_train)`` steps each; right after its training a
   pathway's fitness is its accuracy on the whole training set (forward only)
   -- or, beyond the paper (``config.fitness_on="validation"``), on a part of
   it held out of training (:func:`fitness_split`);
3. the fittest pick (the first picked on a tie) is the winner; its genotype
   overwrites every other pick (the losers), each then mutated gene by gene
   (:func:`~mtl.pathnet.genotype.mutate`). A loser's fitness is unknown until
   it is trained again.

The *best pathway* is the individual of the current population with the
highest known fitness, the lowest population index on a tie (before any
generation, individual 0).

:func:`finetune` trains one fixed pathway, every module trainable, with the
same SGD budget as an evolution run (G*K*T steps) and records its history in
chunks of K*T steps, one record per "generation", so learning curves align.

Reproducibility. Genotypes, picks and mutations come from a numpy Generator,
mini-batches from a torch Generator, both seeded from ``config.seed`` and the
task name, never from global state. The same seed and thread count give
bitwise-identical runs on CPU. Every ``config.checkpoint_every`` generations
(and after the last one) the whole state -- weights, population, fitnesses,
history, both generators and the batch order -- is written atomically to
``checkpoint_path``; calling again with the same path resumes and ends exactly
where an uninterrupted run ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mtl.config import RESULT_NEUTRAL_FIELDS, Config
from mtl.errors import ConfigError
from mtl.pathnet.augment import mask_batch, masking
from mtl.pathnet.checks import BadArgumentError, as_features, as_labels, numpy_generator, torch_generator
from mtl.pathnet.genotype import Frozen, check_frozen, check_genotype, mutate, random_genotype
from mtl.pathnet.model import PathNet
from mtl.pathnet.state import StateFileError, data_fingerprint, load_state, net_tensors, save_state, strip_prefix

#: Config fields that define the network; a run's config must agree with its network's.
ARCHITECTURE_FIELDS = ("input_shape", "n_layers", "n_modules", "units", "module_type", "combine")

Callback = Callable[[dict[str, Any]], None]


class History:
    """Per-generation records of an evolution or fine-tuning run (list-like).

    Each record is a dict with:

    ``generation``   1-based count of tournaments (or fine-tuning chunks) done;
    ``steps``        SGD steps done so far (generation * K * T);
    ``picked``       population indices picked this generation;
    ``genotypes``    their genotypes as trained (lists of L lists of N ints);
    ``fitness``      their training accuracies after training;
    ``winner``       population index of the winner (None when fine-tuning);
    ``best_index``, ``best_genotype``, ``best_fitness``
                     the best pathway after this generation (module docstring);
                     when fine-tuning, the pathway and its training accuracy;
    ``val_accuracy`` held-out accuracy of the best pathway, every
                     ``config.eval_every`` generations and at the last one when
                     validation data were given, else None;
    ``seconds``      wall time of this generation; ``elapsed`` since the run
                     began (across resumes).
    """

    def __init__(self, records: list[dict[str, Any]] | None = None):
        self.records: list[dict[str, Any]] = list(records or [])

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.records[index]

    def __repr__(self) -> str:
        return f"History({len(self)} generations)"

    def to_frame(self) -> pd.DataFrame:
        """One row per generation; list-valued fields stay lists, None becomes NaN in numeric columns."""
        columns = ["generation", "steps", "picked", "genotypes", "fitness", "winner", "best_index",
                   "best_genotype", "best_fitness", "val_accuracy", "seconds", "elapsed"]
        frame = pd.DataFrame(self.records, columns=columns)
        frame["val_accuracy"] = pd.to_numeric(frame["val_accuracy"], errors="coerce").astype(float)
        return frame

    def to_list(self) -> list[dict[str, Any]]:
        """The records (JSON-serialisable)."""
        return [dict(record) for record in self.records]

    def diagnostics(self) -> dict[str, Any]:
        """:func:`ga_diagnostics` of this history."""
        return ga_diagnostics(self)


def _module_distance(a: Any, b: Any) -> float:
    """Mean over layers of the Jaccard distance between two genotypes' sets of active modules (0 = same modules)."""
    distances = [1.0 - len(set(x) & set(z)) / len(set(x) | set(z)) for x, z in zip(a, b)]
    return float(np.mean(distances)) if distances else 0.0


def ga_diagnostics(history: Any) -> dict[str, Any]:
    """How the tournaments of an evolution were decided, from its history alone (no random stream is touched).

    Returns a JSON-ready dict:

    ``tournaments``
        Generations with a winner (0 for fine-tuning, which has none).
    ``tie_fraction``
        Fraction of them whose highest fitness was shared by two or more
        picks: the winner was then the first picked, i.e. chosen at random.
    ``first_perfect_generation``
        First generation at which the best pathway's training fitness is
        1.0 (None when never).
    ``tie_fraction_after_perfect``
        The tie fraction from that generation on (None when never perfect).
    ``best_changes_after_perfect``
        Generations after it at which the best genotype changed.
    ``best_drift_after_perfect``
        Distance between the best pathway's modules at the first perfect
        generation and at the end (mean over layers of the Jaccard distance
        of the active-module sets: 0 the same modules, 1 none shared).
    ``pick_distance_before_perfect``, ``pick_distance_after_perfect``
        Mean distance (the same measure) between the two picks of a
        tournament before and after it: how different the genotypes the
        population still holds are.
    """
    records = [r for r in history if r.get("winner") is not None and len(r.get("fitness") or ()) >= 2]
    ties = [sum(f == max(r["fitness"]) for f in r["fitness"]) > 1 for r in records]
    perfect = next((r["generation"] for r in history if r.get("best_fitness") is not None
                    and r["best_fitness"] >= 1.0), None)
    out: dict[str, Any] = {"tournaments": len(records), "tie_fraction": float(np.mean(ties)) if ties else None,
                           "first_perfect_generation": perfect, "tie_fraction_after_perfect": None,
                           "best_changes_after_perfect": None, "best_drift_after_perfect": None,
                           "pick_distance_before_perfect": None, "pick_distance_after_perfect": None}
    distances = [_module_distance(*r["genotypes"][:2]) for r in records]
    before = [d for r, d in zip(records, distances) if perfect is None or r["generation"] < perfect]
    out["pick_distance_before_perfect"] = float(np.mean(before)) if before else None
    if perfect is None:
        return out
    after = [i for i, r in enumerate(records) if r["generation"] >= perfect]
    best = [r["best_genotype"] for r in history if r["generation"] >= perfect and r.get("best_genotype") is not None]
    out.update(tie_fraction_after_perfect=float(np.mean([ties[i] for i in after])) if after else None,
               best_changes_after_perfect=int(sum(a != b for a, b in zip(best, best[1:]))) if best else None,
               best_drift_after_perfect=_module_distance(best[0], best[-1]) if best else None,
               pick_distance_after_perfect=float(np.mean([distances[i] for i in after])) if after else None)
    return out


@dataclass
class EvolutionResult:
    """What :func:`evolve` returns.

    Attributes
    ----------
    population : ndarray (S, L, N)   final genotypes
    fitness : ndarray (S,)           last known fitness of each (NaN: not evaluated since it last changed)
    best_index : int                 index of the best pathway (module docstring)
    best_genotype : ndarray (L, N)
    best_fitness : float             its training accuracy (NaN when G = 0)
    history : History
    frozen : Frozen or None          modules active in every pathway (transfer)
    """

    population: np.ndarray
    fitness: np.ndarray
    best_index: int
    best_genotype: np.ndarray
    best_fitness: float
    history: History
    frozen: Frozen | None


class BatchStream:
    """Mini-batches of a training set: each pass is a fresh random permutation.

    Batches have ``batch_size`` samples except the last of a pass. The stream
    runs on across pathway trainings, so one-pass budgets see every sample once.

    Parameters
    ----------
    X : torch.Tensor, (n, input_dim) float32
    y : torch.Tensor, (n,) int64, on the device of ``X``
    batch_size : int
    generator : torch.Generator
        Seeded CPU generator of the permutations (owned by the stream): the
        batch order is the same on every device. Each pass's permutation is
        moved to ``X``'s device once.

    Notes
    -----
    :meth:`next` gathers into buffers allocated once: a fresh 3 MB batch per
    step costs page faults that slow a paper-sized step by about a quarter.
    The returned tensors are overwritten by the following call.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.X, self.y, self.batch_size, self.generator = X, y, batch_size, generator
        self.order = torch.empty(0, dtype=torch.long, device=X.device)
        self.position = 0
        size = min(batch_size, X.shape[0])
        self._x = torch.empty(size, X.shape[1], device=X.device)
        self._y = torch.empty(size, dtype=torch.long, device=X.device)

    def next_indices(self) -> torch.Tensor:
        """Indices of the next mini-batch."""
        if self.position >= len(self.order):
            self.order = torch.randperm(self.X.shape[0], generator=self.generator).to(self.X.device)
            self.position = 0
        batch = self.order[self.position:self.position + self.batch_size]
        self.position += len(batch)
        return batch

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next mini-batch ``(x, y)`` (views of buffers reused by the next call)."""
        index = self.next_indices()
        x, y = self._x[:len(index)], self._y[:len(index)]
        torch.index_select(self.X, 0, index, out=x)
        torch.index_select(self.y, 0, index, out=y)
        return x, y

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(meta, tensors)`` to store in a checkpoint."""
        return {"position": self.position}, {"stream.generator": self.generator.get_state(),
                                             "stream.order": self.order.cpu().clone()}

    def restore(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(tensors["stream.generator"])
        self.order = tensors["stream.order"].to(self.X.device).clone()
        self.position = int(meta["position"])


def check_architecture(config: Config, net: PathNet) -> None:
    """Raise :class:`ConfigError` if ``config`` describes another network than ``net``."""
    mine, theirs = config.to_dict(), net.config.to_dict()
    differ = [f"{name}={mine[name]!r} (network: {theirs[name]!r})" for name in ARCHITECTURE_FIELDS
              if mine[name] != theirs[name]]
    if differ:
        raise ConfigError("the configuration does not match the network's architecture: " + ", ".join(differ))


def train_steps(net: PathNet, genotype: np.ndarray, task: str, frozen: Frozen | None, stream: BatchStream,
                steps: int, config: Config, masks: torch.Generator | None = None,
                dropout: torch.Generator | None = None) -> None:
    """Train one pathway for ``steps`` SGD steps on batches from ``stream`` (one session); with ``masks``, each
    batch first gets the SpecAugment-style masks of ``config`` drawn from it (:mod:`mtl.pathnet.augment`);
    with ``config.dropout > 0``, the dropout masks are drawn from ``dropout``."""
    with net.session(genotype, task, frozen, lr=config.lr, momentum=config.momentum,
                     weight_decay=config.weight_decay, dropout=config.dropout) as session:
        session.dropout_generator = dropout
        for _ in range(steps):
            x, y = stream.next()
            session.step(mask_batch(x, config, masks) if masks is not None else x, y)


def best_individual(fitness: np.ndarray) -> int:
    """Index of the highest known (non-NaN) fitness, lowest index on a tie; 0 if none is known."""
    known = np.flatnonzero(~np.isnan(fitness))
    if not len(known):
        return 0
    return int(known[np.argmax(fitness[known])])


def fitness_split(X: torch.Tensor, y: torch.Tensor, config: Config, task: str
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X_train, y_train, X_fitness, y_fitness)``: what pathways train on, and what their fitness is measured on.

    ``config.fitness_on="train"`` (the paper): both are all of ``X, y``.
    ``"validation"``: a stratified random ``config.fitness_fraction`` of
    every class with two or more samples (at least one sample each) is
    held out for the fitness and never trained on; the split comes from a
    stream of its own (seed, ``"fitness-split"``, ``task``), so the GA's
    and the batches' streams are the paper's. The split is over samples: on
    segments of one utterance it holds out near-copies of trained ones
    unless the caller's training part is grouped.
    """
    if config.fitness_on == "train":
        return X, y, X, y
    rng = numpy_generator(config.seed, "fitness-split", task)
    labels = y.cpu().numpy()
    held = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) >= 2:
            held.extend(members[:max(1, int(round(config.fitness_fraction * len(members))))].tolist())
    mask = np.zeros(len(labels), dtype=bool)
    mask[held] = True
    if mask.all() or not mask.any():
        raise BadArgumentError(f"fitness_on='validation': {len(labels)} training samples leave nothing to "
                               f"{'train on' if mask.all() else 'measure the fitness on'}")
    keep, out = (torch.from_numpy(np.flatnonzero(m)).to(X.device) for m in (~mask, mask))
    return X[keep], y[keep], X[out], y[out]


def _prepare(net: PathNet, X: Any, y: Any, config: Config, task: str, X_val: Any, y_val: Any
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    check_architecture(config, net)
    n_classes = net.head(task).out_features
    X = as_features(X, net.config, "X")
    y = as_labels(y, X.shape[0], n_classes, "y", device=X.device)
    if (X_val is None) != (y_val is None):
        raise BadArgumentError("X_val and y_val: give both or neither")
    if X_val is not None:
        X_val = as_features(X_val, net.config, "X_val")
        y_val = as_labels(y_val, X_val.shape[0], n_classes, "y_val", device=X.device)
    return X, y, X_val, y_val


def _signature(kind: str, config: Config, task: str, X: torch.Tensor, y: torch.Tensor, X_val: Any, y_val: Any,
               **extra: Any) -> dict[str, Any]:
    settings = {k: v for k, v in config.recorded_dict().items() if k not in RESULT_NEUTRAL_FIELDS}
    validation = None if X_val is None else data_fingerprint(X_val, y_val)
    return {"kind": kind, "config": settings, "task": task, "data": data_fingerprint(X, y),
            "validation": validation, **extra}


def _load_checkpoint(path: Path, kind: str, signature: dict[str, Any]
                     ) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    if not path.exists():
        return None
    meta, tensors = load_state(path, kind)
    if meta["signature"] != signature:
        differ = sorted(key for key in signature if meta["signature"].get(key) != signature[key])
        if "config" in differ:
            old = meta["signature"]["config"]
            differ += [f"config.{k}" for k in signature["config"] if old.get(k) != signature["config"][k]]
        raise StateFileError(f"{path}: checkpoint of a different run (differs in: {', '.join(differ)}); "
                             "delete it or pass another checkpoint_path")
    return meta, tensors


def _val_due(generation: int, config: Config, has_val: bool) -> bool:
    due = config.eval_every and generation % config.eval_every == 0
    return has_val and bool(due or generation == config.generations)


def _checkpoint_due(generation: int, config: Config) -> bool:
    return bool(config.checkpoint_every) and (generation % config.checkpoint_every == 0
                                              or generation == config.generations)


def _end_generation(entry: dict[str, Any], history: History, config: Config, save: Callable[[int], None] | None,
                    bar: Any, postfix: dict[str, str], callback: Callback | None) -> None:
    """Close one generation: its history entry, a checkpoint when one is due, the progress bar, the callback."""
    history.append(entry)
    if save is not None and _checkpoint_due(entry["generation"], config):
        save(entry["generation"])
    bar.update(1)
    bar.set_postfix(postfix)
    if callback is not None:
        callback(entry)


def evolve(net: PathNet, X: Any, y: Any, config: Config, *, task: str = "task", frozen: Any = None,
           X_val: Any = None, y_val: Any = None, checkpoint_path: str | Path | None = None,
           progress: bool = False, callback: Callback | None = None) -> EvolutionResult:
    """Evolve pathways of ``net`` on one task by the microbial GA (module docstring).

    Parameters
    ----------
    net : PathNet
        Network to train in place; it must already have a head for ``task``.
    X : array-like, (n, H, W, C) or (n, input_dim)
        Training samples, float, already standardised by the caller.
    y : array-like of int, (n,)
        Labels in ``[0, C-1]``, C being the head's number of classes.
    config : Config
        S (``population``), K (``tournament``), G (``generations``), T
        (``steps_for(n)``), SGD (``lr``, ``batch_size``, ``momentum``,
        ``weight_decay``, ``dropout``), mutation (``per_gene_mutation_rate``,
        ``mutation_range``, ``boundary``), ``frozen_counts_toward_n``,
        ``eval_every``, ``checkpoint_every``, ``seed``. Its architecture fields
        must match ``net.config``.
    task : str, default "task"
        Head to train; also part of the random streams' seeds.
    frozen : sequence of L lists of module indices, or None (default)
        Modules active in every pathway and never trained (transfer).
    X_val, y_val : array-like or None, default None
        Held-out data for ``val_accuracy`` in the history.
    checkpoint_path : str or Path or None, default None
        Where to checkpoint; an existing checkpoint of the same run is resumed.
    progress : bool, default False
        Show a tqdm progress bar.
    callback : callable or None, default None
        Called with each generation's history record, after any checkpoint.

    Returns
    -------
    EvolutionResult
    """
    X, y, X_val, y_val = _prepare(net, X, y, config, task, X_val, y_val)
    frozen = check_frozen(frozen, config)
    frozen_lists = None if frozen is None else [layer.tolist() for layer in frozen]
    signature = _signature("evolve", config, task, X, y, X_val, y_val, frozen=frozen_lists,
                           classes=net.head(task).out_features)
    X, y, X_fitness, y_fitness = fitness_split(X, y, config, task)
    steps = config.steps_for(X.shape[0])

    rng = numpy_generator(config.seed, "evolve", task)
    stream = BatchStream(X, y, config.batch_size, torch_generator(config.seed, "batches", task))
    population = np.stack([random_genotype(config, rng) for _ in range(config.population)])
    fitness = np.full(config.population, np.nan)
    history, done, elapsed = History(), 0, 0.0
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    loaded = _load_checkpoint(path, "mtl.pathnet.evolve/1", signature) if path is not None else None
    if loaded is not None:
        meta, tensors = loaded
        net.load_state_dict(strip_prefix(tensors))
        population, fitness = tensors["population"].numpy().copy(), tensors["fitness"].numpy().copy()
        rng.bit_generator.state = meta["rng"]
        stream.restore(meta["stream"], tensors)
        history, done, elapsed = History(meta["history"]), meta["generation"], meta["elapsed"]

    def save(generation: int) -> None:
        stream_meta, stream_tensors = stream.state()
        meta = {"signature": signature, "generation": generation, "elapsed": elapsed, "rng": rng.bit_generator.state,
                "stream": stream_meta, "history": history.to_list()}
        tensors = {"population": torch.from_numpy(population.copy()), "fitness": torch.from_numpy(fitness.copy()),
                   **stream_tensors, **net_tensors(net.state_dict())}
        save_state(path, "mtl.pathnet.evolve/1", meta, tensors)

    with tqdm(total=config.generations, initial=done, desc=f"evolve {task}", disable=not progress,
              leave=False) as bar:
        for generation in range(done + 1, config.generations + 1):
            started = time.perf_counter()
            picked = rng.choice(config.population, size=config.tournament, replace=False)
            trained = population[picked].copy()
            for index in picked:
                masks = (torch_generator(config.seed, "spec-masks", task, str(generation), str(index))
                         if masking(config) else None)
                drops = (torch_generator(config.seed, "dropout", task, str(generation), str(index))
                         if config.dropout else None)
                train_steps(net, population[index], task, frozen, stream, steps, config, masks, drops)
                fitness[index] = net.accuracy(X_fitness, y_fitness, population[index], task, frozen)
            scores = fitness[picked]
            winner = int(picked[int(np.argmax(scores))])
            for loser in picked:
                if loser != winner:
                    population[loser] = mutate(population[winner], config, rng)
                    fitness[loser] = np.nan
            best = best_individual(fitness)
            val = (net.accuracy(X_val, y_val, population[best], task, frozen)
                   if _val_due(generation, config, X_val is not None) else None)
            seconds = time.perf_counter() - started
            elapsed += seconds
            entry = {"generation": generation, "steps": generation * config.tournament * steps,
                     "picked": picked.tolist(), "genotypes": trained.tolist(), "fitness": scores.tolist(),
                     "winner": winner, "best_index": best, "best_genotype": population[best].tolist(),
                     "best_fitness": float(fitness[best]), "val_accuracy": val, "seconds": seconds,
                     "elapsed": elapsed}
            _end_generation(entry, history, config, save if path is not None else None, bar,
                            {"best": f"{fitness[best]:.3f}"}, callback)
    best = best_individual(fitness)
    return EvolutionResult(population=population, fitness=fitness, best_index=best,
                           best_genotype=population[best].copy(), best_fitness=float(fitness[best]),
                           history=history, frozen=frozen)


def finetune(net: PathNet, X: Any, y: Any, config: Config, *, genotype: Any, task: str = "task",
             X_val: Any = None, y_val: Any = None, checkpoint_path: str | Path | None = None,
             progress: bool = False, callback: Callback | None = None) -> History:
    """Train every module of one pathway (no freezing, no evolution) for G*K*T SGD steps.

    The budget equals an evolution run's (``config.generations`` x
    ``config.tournament`` x T). One optimiser (one session) runs throughout; the
    history gets one record per chunk of K*T steps, with the pathway's training
    accuracy as ``best_fitness`` (module docstring).

    Parameters
    ----------
    net : PathNet
        Network to train in place; it must have a head for ``task``.
    X, y, config, task, X_val, y_val, checkpoint_path, progress, callback
        As in :func:`evolve` (``frozen`` does not apply).
    genotype : array-like of int, shape (L, N)
        The pathway to train (the source's best pathway).

    Returns
    -------
    History
    """
    X, y, X_val, y_val = _prepare(net, X, y, config, task, X_val, y_val)
    genotype = check_genotype(genotype, config)
    chunk = config.tournament * config.steps_for(X.shape[0])
    signature = _signature("finetune", config, task, X, y, X_val, y_val, genotype=genotype.tolist(),
                           classes=net.head(task).out_features)
    stream = BatchStream(X, y, config.batch_size, torch_generator(config.seed, "batches", task))
    history, done, elapsed, buffers = History(), 0, 0.0, None
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    loaded = _load_checkpoint(path, "mtl.pathnet.finetune/1", signature) if path is not None else None
    if loaded is not None:
        meta, tensors = loaded
        net.load_state_dict(strip_prefix(tensors))
        stream.restore(meta["stream"], tensors)
        history, done, elapsed = History(meta["history"]), meta["generation"], meta["elapsed"]
        buffers = [tensors.get(f"momentum.{i}") for i in range(meta["n_momentum"])]

    session = net.session(genotype, task, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                          dropout=config.dropout)
    if buffers is not None:
        session.load_momentum_buffers(buffers)

    def save(generation: int) -> None:
        stream_meta, stream_tensors = stream.state()
        momentum = session.momentum_buffers()
        meta = {"signature": signature, "generation": generation, "elapsed": elapsed, "stream": stream_meta,
                "history": history.to_list(), "n_momentum": len(momentum)}
        tensors = {**stream_tensors, **net_tensors(net.state_dict()),
                   **{f"momentum.{i}": b for i, b in enumerate(momentum) if b is not None}}
        save_state(path, "mtl.pathnet.finetune/1", meta, tensors)

    with tqdm(total=config.generations, initial=done, desc=f"finetune {task}", disable=not progress,
              leave=False) as bar:
        for generation in range(done + 1, config.generations + 1):
            started = time.perf_counter()
            if config.dropout:  # a stream per generation: a resumed run draws the masks it would have
                session.dropout_generator = torch_generator(config.seed, "dropout", task, str(generation))
            for _ in range(chunk):
                session.step(*stream.next())
            session.write_back()
            accuracy = net.accuracy(X, y, genotype, task)
            val = net.accuracy(X_val, y_val, genotype, task) if _val_due(generation, config, X_val is not None) \
                else None
            seconds = time.perf_counter() - started
            elapsed += seconds
            # Fine-tuning has no population: the tournament fields stay empty.
            entry = {"generation": generation, "steps": generation * chunk, "picked": [], "genotypes": [],
                     "fitness": [], "winner": None, "best_index": None, "best_genotype": genotype.tolist(),
                     "best_fitness": accuracy, "val_accuracy": val, "seconds": seconds, "elapsed": elapsed}
            _end_generation(entry, history, config, save if path is not None else None, bar,
                            {"train": f"{accuracy:.3f}"}, callback)
    session.write_back()
    return history

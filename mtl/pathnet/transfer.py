"""Source training, transfer and the baselines on one code path (§3.3.2, §4.2).

* :func:`train_source` evolves a PathNet on the source task (one corpus, or
  several: pass their samples concatenated) and returns a :class:`SourceModel`.
* :class:`PathNetClassifier` is the scikit-learn-like estimator the experiments
  use, with three methods:

  ``"scratch"``  evolve on the target from a freshly initialised network;
  ``"transfer"`` take the source's best pathway, freeze it, reinitialise every
                 other module and use a fresh target head, then evolve a new
                 population with the frozen pathway active in every pathway;
  ``"finetune"`` keep training every module of the source's best pathway
                 (nothing frozen, no evolution) with a fresh target head, for
                 the same SGD budget as evolution (G*K*T steps).

Inputs are assumed already standardised by the caller (e.g. per-feature
z-scores computed on the training fold); nothing here rescales them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl.config import METHODS, Config
from mtl.errors import ConfigError
from mtl.pathnet.checks import BadArgumentError, as_features, as_labels, check_n_classes, derived_seed
from mtl.pathnet.evolution import (Callback, EvolutionResult, History, check_architecture, evolve,
                                   finetune)
from mtl.pathnet.genotype import Frozen, check_genotype, frozen_modules
from mtl.pathnet.model import PathNet
from mtl.pathnet.state import StateFileError, load_state, net_tensors, save_state, strip_prefix

_MODEL_FORMAT = "mtl.pathnet.source/1"


@dataclass
class SourceModel:
    """A PathNet trained on a source task, ready to transfer.

    Attributes
    ----------
    net : PathNet            the trained network (with the source head)
    best_genotype : ndarray  (L, N) best pathway found on the source
    best_fitness : float     its training accuracy
    history : History        the source run's history
    n_classes : int          classes of the source task
    task : str               name of the source head
    config : Config          configuration of the source run
    """

    net: PathNet
    best_genotype: np.ndarray
    best_fitness: float
    history: History
    n_classes: int
    task: str
    config: Config

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` atomically (tensors + JSON; loads without unpickling)."""
        meta = {"config": self.config.to_dict(), "best_genotype": self.best_genotype.tolist(),
                "best_fitness": self.best_fitness, "history": self.history.to_list(), "n_classes": self.n_classes,
                "task": self.task, "heads": {name: head.out_features for name, head in self.net.heads.items()}}
        save_state(path, _MODEL_FORMAT, meta, net_tensors(self.net.state_dict()))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "SourceModel":
        """Read a model written by :meth:`save` (``torch.load(weights_only=True)``).

        ``device`` (a ``Config.device`` value) places it; ``None``: where its own configuration says.
        """
        meta, tensors = load_state(path, _MODEL_FORMAT)
        config = Config.from_dict(meta["config"])
        if device is not None:
            config = config.replace(device=device)
        net = PathNet(config)
        for name, n_classes in meta["heads"].items():
            net.add_head(name, n_classes)
        try:
            net.load_state_dict(strip_prefix(tensors))
        except RuntimeError as error:
            raise StateFileError(f"{path}: tensors do not fit the stored configuration ({error})") from error
        return cls(net=net, best_genotype=check_genotype(meta["best_genotype"], config),
                   best_fitness=float(meta["best_fitness"]), history=History(meta["history"]),
                   n_classes=int(meta["n_classes"]), task=meta["task"], config=config)


def _n_classes(y: Any, n_classes: int | None) -> int:
    labels = as_labels(y, len(y), n_classes)
    return check_n_classes(int(labels.max()) + 1 if n_classes is None else n_classes,
                           "n_classes (from the labels)" if n_classes is None else "n_classes")


def train_source(X: Any, y: Any, config: Config, *, task: str = "source", n_classes: int | None = None,
                 X_val: Any = None, y_val: Any = None, progress: bool = False,
                 checkpoint_path: str | Path | None = None, callback: Callback | None = None) -> SourceModel:
    """Evolve a fresh PathNet on the source task.

    Parameters
    ----------
    X : array-like, (n, H, W, C) or (n, input_dim)
        Source samples (standardised). For a union of corpora pass them concatenated.
    y : array-like of int, (n,)
        Labels 0..C-1.
    config : Config
        Architecture and evolution settings (see :func:`~mtl.pathnet.evolution.evolve`).
    task : str, default "source"
        Name of the source head.
    n_classes : int or None, default None
        C; ``None`` means ``max(y) + 1``.
    X_val, y_val : optional held-out source data for the history's ``val_accuracy``.
    progress : bool, default False
        tqdm progress bar.
    checkpoint_path : str or Path or None, default None
        Checkpoint file; an existing one of the same run is resumed.
    callback : callable or None
        Called with each generation's history record.
    """
    n_classes = _n_classes(y, n_classes)
    net = PathNet(config)
    net.add_head(task, n_classes)
    result = evolve(net, X, y, config, task=task, X_val=X_val, y_val=y_val, checkpoint_path=checkpoint_path,
                    progress=progress, callback=callback)
    return SourceModel(net=net, best_genotype=result.best_genotype, best_fitness=result.best_fitness,
                       history=result.history, n_classes=n_classes, task=task, config=config)


def transfer_network(source: SourceModel, config: Config, task: str, n_classes: int) -> tuple[PathNet, Frozen]:
    """A copy of the source network prepared for transfer, and its frozen modules.

    The source's best pathway is kept (frozen); every other module is
    reinitialised (seed derived from ``config.seed``), every head is dropped and
    a fresh ``task`` head with ``n_classes`` outputs is added. The copy takes
    ``config`` (same architecture, checked), so the target's N and
    ``frozen_counts_toward_n`` apply. ``source`` is not modified.
    """
    check_architecture(config, source.net)
    frozen = frozen_modules(source.best_genotype, source.config)
    net = source.net.copy().to_config_device(config)  # same architecture (checked); the target's N, frozen rule, device
    net.reinitialize(keep=frozen, seed=derived_seed(config.seed, "transfer"))
    net.heads.clear()
    net.add_head(task, n_classes, seed=derived_seed(config.seed, "transfer-head"))
    return net, frozen


class PathNetClassifier:
    """PathNet trained on a target task by evolution from scratch, transfer or fine-tuning.

    Parameters
    ----------
    config : Config
        Architecture and training settings of the target run. With a source,
        its architecture fields must equal the source's.
    method : {"scratch", "transfer", "finetune"}, default "scratch"
        See the module docstring.
    source : SourceModel or None, default None
        Required by ``"transfer"`` and ``"finetune"``; ignored by ``"scratch"``.
    task : str, default "target"
        Name of the target head (also seeds the target's random streams).
    n_classes : int or None, default None
        C; ``None`` means ``max(y) + 1`` at :meth:`fit` (pass it when a fold may
        miss the highest class).
    progress : bool, default False
        tqdm progress bar.

    Attributes (after :meth:`fit`)
    -------------------------------
    net_ : PathNet                 the trained network
    history_ : History             one record per generation (or fine-tuning chunk)
    best_genotype_ : ndarray       (L, N) pathway used by :meth:`predict`
    best_fitness_ : float          its training accuracy
    frozen_ : list of lists or None per layer, the frozen source modules (transfer only)
    n_classes_ : int
    result_ : EvolutionResult or None   the full evolution result (None for finetune)

    Inputs are float32 ``(n, 64, 64, 3)`` or ``(n, 12288)`` arrays (the
    configured ``input_shape``), standardised by the caller; labels are ints 0..C-1.
    """

    def __init__(self, config: Config, method: str = "scratch", source: SourceModel | None = None,
                 task: str = "target", n_classes: int | None = None, progress: bool = False):
        self.config = config
        self.method = method
        self.source = source
        self.task = task
        self.n_classes = n_classes
        self.progress = progress

    def _validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.method != "scratch" and not isinstance(self.source, SourceModel):
            raise ConfigError(f"method={self.method!r} needs source=SourceModel (from train_source or "
                              f"SourceModel.load), got {type(self.source).__name__}")

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
            checkpoint_path: str | Path | None = None, callback: Callback | None = None) -> "PathNetClassifier":
        """Train on the target data.

        Parameters
        ----------
        X : array-like, (n, H, W, C) or (n, input_dim)
        y : array-like of int, (n,)
        X_val, y_val : array-like or None, default None
            Held-out target data for the learning curve (``history_``'s
            ``val_accuracy`` every ``config.eval_every`` generations).
        checkpoint_path : str or Path or None, default None
            Checkpoint file; an existing one of the same run is resumed.
        callback : callable or None, default None
            Called with each generation's history record.

        Returns
        -------
        self
        """
        self._validate()
        self.n_classes_ = _n_classes(y, self.n_classes)
        common = dict(task=self.task, X_val=X_val, y_val=y_val, checkpoint_path=checkpoint_path,
                      progress=self.progress, callback=callback)
        self.result_: EvolutionResult | None = None
        self.frozen_: list[list[int]] | None = None
        if self.method == "finetune":
            check_architecture(self.config, self.source.net)
            net = self.source.net.copy().to_config_device(self.config)
            net.heads.clear()
            net.add_head(self.task, self.n_classes_, seed=derived_seed(self.config.seed, "finetune-head"))
            self.history_ = finetune(net, X, y, self.config, genotype=self.source.best_genotype, **common)
            self.best_genotype_ = self.source.best_genotype.copy()
            self.best_fitness_ = self.history_[-1]["best_fitness"] if len(self.history_) else float("nan")
            self.net_ = net
            return self
        if self.method == "transfer":
            net, frozen = transfer_network(self.source, self.config, self.task, self.n_classes_)
            self.frozen_ = [layer.tolist() for layer in frozen]
        else:
            net, frozen = PathNet(self.config), None
            net.add_head(self.task, self.n_classes_)
        result = evolve(net, X, y, self.config, frozen=frozen, **common)
        self.net_, self.result_, self.history_ = net, result, result.history
        self.best_genotype_, self.best_fitness_ = result.best_genotype, result.best_fitness
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise BadArgumentError("this PathNetClassifier is not fitted yet: call fit(X, y) first")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, C)`` (softmax of the target head) through the best pathway."""
        self._check_fitted()
        features = as_features(X, self.config, "X")
        logits = self.net_.predict_logits(features, self.best_genotype_, self.task, self.frozen_)
        return torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels ``(n,)`` (int64)."""
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)``."""
        predicted = self.predict(X)
        labels = as_labels(y, len(predicted), self.n_classes_).numpy()
        return float(np.mean(predicted == labels))

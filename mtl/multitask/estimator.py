"""``MultiTaskClassifier``: the residual CNN trained on emotion and action units at once.

The estimator has :class:`mtl.pathnet.PathNetClassifier`'s interface (``fit``,
``predict``, ``predict_proba``, ``score``, a seed, checkpoints that resume to
the identical result, a progress bar) and takes heterogeneous labels: each
sample has an emotion label, AU labels, both, or -- within one task -- none.

Training. ``steps`` steps of SGD with momentum (``lr``, ``momentum``,
``weight_decay``) on mini-batches of ``config.batch_size`` samples drawn from
all the training samples together (a fresh random order at every pass, so a
batch mixes the corpora), minimising :func:`mtl.multitask.loss.multitask_loss` (with ``au_balance``, the
positive AU entries weighted by :func:`~mtl.multitask.loss.balancing_weights`
of the training labels).
The history gets one record every ``record_every`` steps: the mean loss and
its two terms over those steps.

Reproducibility. The initial weights and the batch order come from seeds
derived from ``config.seed`` (:func:`mtl.pathnet.checks.derived_seed`), never
from global state: the same seed and thread count give bitwise-identical
weights on the CPU. With ``config.checkpoint_every > 0`` the whole state
(weights, batch-norm statistics, momentum, the batch generator and order,
the history) is written atomically after every record; calling :meth:`fit`
again with the same ``checkpoint_path`` resumes and ends exactly where an
uninterrupted run ends. ``config.device`` places the network and the data
(:func:`mtl.pathnet.checks.torch_device`).

Inputs are float32 ``(n, 64, 64, 3)`` (or flattened) arrays standardised by
the caller, as for PathNet.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from mtl.config import RESULT_NEUTRAL_FIELDS, Config
from mtl.errors import ConfigError
from mtl.evaluation import au_scores
from mtl.multitask.loss import balancing_weights, check_tasks, multitask_loss
from mtl.multitask.network import ResidualNet
from mtl.pathnet.checks import BadArgumentError, CHUNK_ROWS, as_features, derived_seed, torch_generator
from mtl.pathnet.evolution import BatchStream, History
from mtl.pathnet.state import StateFileError, data_fingerprint, load_state, net_tensors, save_state, strip_prefix

__all__ = ["MultiTaskClassifier", "DEFAULT_HEAD"]

DEFAULT_HEAD = "emotion"
"""The name of the emotion head when ``fit`` is given no ``corpus``."""
_FORMAT = "mtl.multitask.fit/1"


def _emotion_labels(y: Any, n: int) -> np.ndarray:
    labels = np.full(n, -1, dtype=np.int64) if y is None else np.asarray(y)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or (labels < -1).any():
        raise BadArgumentError(f"y: expected {n} integer class labels (-1 = no emotion label), "
                               f"got {labels.dtype} {labels.shape}")
    return labels.astype(np.int64)


def _au_labels(au: Any, n: int, au_names: Sequence[str] | None) -> tuple[np.ndarray | None, list[str]]:
    if au is None:
        return None, list(au_names or [])
    values = np.asarray(au, dtype=np.float32)
    names = list(au_names) if au_names is not None else [f"AU{k}" for k in range(values.shape[-1])]
    if values.shape != (n, len(names)):
        raise BadArgumentError(f"au: expected shape ({n}, {len(names)}) (one column per AU of {names}), "
                               f"got {values.shape}")
    bad = ~np.isnan(values) & (values != 0) & (values != 1)
    if bad.any():
        row, column = map(int, np.argwhere(bad)[0])
        raise BadArgumentError(f"au: {names[column]} of sample {row} is {values[row, column]!r}; AU labels must be "
                               f"0 (absent), 1 (present) or NaN (unknown) ({int(bad.sum())} such values)")
    return values, names


class MultiTaskClassifier:
    """Emotion recognition and AU detection by one residual CNN (module docstring).

    Parameters
    ----------
    config : Config
        Uses ``seed``, ``batch_size``, ``checkpoint_every``, ``device`` and ``input_shape``.
    tasks : {"both", "emotion", "au"}, default "both"
        The single-task switch of :func:`~mtl.multitask.loss.multitask_loss`.
    emotion_weight, au_weight : float, default 1.0
        Weights of the two loss terms.
    width, blocks : network size (:class:`~mtl.multitask.network.ResidualNet`), default 16, (1, 1, 1).
    steps : int, default 300
        SGD steps.
    lr, momentum, weight_decay : SGD settings, default 0.05, 0.9, 5e-4.
    record_every : int, default 25
        Steps per history record (and per checkpoint).
    au_balance : bool, default True
        Weight the positive AU entries by negatives / positives of the training labels.
    n_classes : int, dict of head -> int, or None
        Classes of each emotion head; ``None``: the highest label of the head + 1.
    au_names : list of str or None
        Names of the AU columns (default ``AU0``, ``AU1`` ...).
    progress : bool, default False
        tqdm progress bar over the steps.

    Attributes (after :meth:`fit`)
    -------------------------------
    net_ : ResidualNet;  heads_ : {head: classes};  au_names_ : list of str;  history_ : History
    """

    def __init__(self, config: Config, tasks: str = "both", emotion_weight: float = 1.0, au_weight: float = 1.0,
                 width: int = 16, blocks: Sequence[int] = (1, 1, 1), steps: int = 300, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 5e-4, record_every: int = 25,
                 au_balance: bool = True, n_classes: int | dict[str, int] | None = None,
                 au_names: Sequence[str] | None = None, progress: bool = False):
        self.config, self.tasks = config, tasks
        self.emotion_weight, self.au_weight = emotion_weight, au_weight
        self.width, self.blocks, self.steps = width, tuple(blocks), steps
        self.lr, self.momentum, self.weight_decay, self.record_every = lr, momentum, weight_decay, record_every
        self.au_balance, self.n_classes, self.au_names, self.progress = au_balance, n_classes, au_names, progress

    def _settings(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "emotion_weight": self.emotion_weight, "au_weight": self.au_weight,
                "width": self.width, "blocks": list(self.blocks), "steps": self.steps, "lr": self.lr,
                "momentum": self.momentum, "weight_decay": self.weight_decay, "record_every": self.record_every,
                "au_balance": self.au_balance}

    def _validate(self) -> None:
        check_tasks(self.tasks)
        for name in ("width", "steps", "record_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.blocks or min(self.blocks) < 1:
            raise ConfigError(f"blocks must be a non-empty list of positive block counts, got {self.blocks!r}")
        if self.tasks == "both" and min(self.emotion_weight, self.au_weight) < 0:
            raise ConfigError("emotion_weight and au_weight must be >= 0")

    def _heads(self, labels: np.ndarray, corpus: np.ndarray) -> dict[str, int]:
        names = sorted(set(corpus[labels >= 0].tolist()))
        given = self.n_classes if isinstance(self.n_classes, dict) else {n: self.n_classes for n in names}
        heads = {}
        for name in names:
            highest = int(labels[(corpus == name) & (labels >= 0)].max()) + 1
            n = highest if given.get(name) is None else int(given[name])
            if n < highest:
                raise BadArgumentError(f"y: head {name!r} has label {highest - 1} but n_classes={n}")
            heads[name] = n
        return heads

    def fit(self, X: Any, y: Any = None, au: Any = None, corpus: Any = None,
            checkpoint_path: str | Path | None = None,
            callback: Callable[[dict[str, Any]], None] | None = None) -> "MultiTaskClassifier":
        """Train on whatever labels each sample has.

        Parameters
        ----------
        X : array-like, (n, H, W, C) or (n, H*W*C), standardised
        y : array-like of int (n,), or None
            Emotion class within the sample's head; -1 = none; None = no sample has one.
        au : array-like (n, n_aus) of 0, 1 or NaN (unknown), or None (no AU labels)
        corpus : array-like of str (n,), or None
            Emotion head of each sample (its corpus); None: one head, :data:`DEFAULT_HEAD`.
        checkpoint_path : str or Path or None
            Checkpoint file; an existing one of the same run is resumed.
        callback : callable or None
            Called with each history record, after its checkpoint.
        """
        self._validate()
        features = as_features(X, self.config, "X")
        n = features.shape[0]
        labels = _emotion_labels(y, n)
        au_values, self.au_names_ = _au_labels(au, n, self.au_names)
        heads = np.full(n, DEFAULT_HEAD, dtype=object) if corpus is None else np.asarray(corpus, dtype=object)
        if heads.shape != (n,):
            raise BadArgumentError(f"corpus: expected one head name per sample ({n}), got shape {heads.shape}")
        if self.tasks in ("both", "emotion") and not (labels >= 0).any():
            raise BadArgumentError(f"tasks={self.tasks!r} trains emotion, but no sample has an emotion label "
                                   "(y is None or all -1)")
        if self.tasks in ("both", "au") and (au_values is None or not np.isfinite(au_values).any()):
            raise BadArgumentError(f"tasks={self.tasks!r} trains action units, but no sample has an AU label "
                                   "(au is None or all NaN)")
        self.heads_ = self._heads(labels, heads)
        order = list(self.heads_)
        head_index = np.array([order.index(h) if h in self.heads_ else -1 for h in heads], dtype=np.int64)
        device = features.device
        emotion = torch.from_numpy(labels).to(device)
        head = torch.from_numpy(head_index).to(device)
        au_tensor = None if au_values is None else torch.from_numpy(au_values).to(device)
        pos_weight = balancing_weights(au_tensor) if self.au_balance and au_tensor is not None else None
        self.net_ = ResidualNet(self.heads_, len(self.au_names_), self.width, self.blocks, self.config.input_shape,
                                seed=derived_seed(self.config.seed, "multitask-init")).to(device)
        optimizer = torch.optim.SGD(self.net_.parameters(), lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        stream = BatchStream(features, emotion, self.config.batch_size,
                             torch_generator(self.config.seed, "multitask-batches"))
        fingerprint = data_fingerprint(features, torch.cat([emotion.float(), head.float()] + (
            [] if au_tensor is None else [torch.nan_to_num(au_tensor, nan=-1.0).reshape(-1)])))
        signature = {"settings": self._settings(), "heads": self.heads_, "au_names": self.au_names_,
                     "data": fingerprint,
                     "config": {k: v for k, v in self.config.to_dict().items() if k not in RESULT_NEUTRAL_FIELDS}}
        path = Path(checkpoint_path) if checkpoint_path is not None and self.config.checkpoint_every else None
        self.history_, done, elapsed = History(), 0, 0.0
        if path is not None and path.exists():
            meta, tensors = load_state(path, _FORMAT)
            if meta["signature"] != signature:
                differ = sorted(k for k in signature if meta["signature"].get(k) != signature[k])
                raise StateFileError(f"{path}: checkpoint of a different run (differs in: {', '.join(differ)}); "
                                     "delete it or pass another checkpoint_path")
            self.net_.load_state_dict(strip_prefix(tensors))
            optimizer.load_state_dict(_optimizer_state(optimizer, tensors))
            stream.restore(meta["stream"], tensors)
            self.history_, done, elapsed = History(meta["history"]), meta["step"], meta["elapsed"]

        def save(step: int) -> None:
            stream_meta, stream_tensors = stream.state()
            buffers = {f"momentum.{i}": state["momentum_buffer"] for i, state in optimizer.state_dict()["state"].items()
                       if state.get("momentum_buffer") is not None}
            save_state(path, _FORMAT, {"signature": signature, "step": step, "elapsed": elapsed, "stream": stream_meta,
                                       "history": self.history_.to_list()},
                       {**stream_tensors, **net_tensors(self.net_.state_dict()), **buffers})

        self.net_.train()
        with tqdm(total=self.steps, initial=done, desc=f"multitask {self.tasks}", disable=not self.progress,
                  leave=False) as bar:
            sums, started = np.zeros(3), time.perf_counter()
            for step in range(done + 1, self.steps + 1):
                rows = stream.next_indices()
                emotion_logits, au_logits = self.net_(features[rows])
                loss, parts = multitask_loss(emotion_logits, au_logits, emotion[rows], head[rows],
                                             None if au_tensor is None else au_tensor[rows],
                                             self.emotion_weight, self.au_weight, self.tasks, pos_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sums += (float(loss.detach()), parts["emotion"], parts["au"])
                bar.update(1)
                if step % self.record_every == 0 or step == self.steps:
                    count = step - (self.history_[-1]["step"] if len(self.history_) else 0)
                    seconds = time.perf_counter() - started
                    elapsed += seconds
                    loss_mean, emotion_mean, au_mean = (float(v) / count for v in sums)
                    entry = {"step": step, "loss": loss_mean, "emotion_loss": emotion_mean, "au_loss": au_mean,
                             "seconds": seconds, "elapsed": elapsed}
                    self.history_.append(entry)
                    if path is not None:
                        save(step)
                    bar.set_postfix({"loss": f"{entry['loss']:.3f}"})
                    if callback is not None:
                        callback(entry)
                    sums, started = np.zeros(3), time.perf_counter()
        self.net_.eval()
        return self

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise BadArgumentError("this MultiTaskClassifier is not fitted yet: call fit(X, y, au) first")

    def _outputs(self, X: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        self._check_fitted()
        features = as_features(X, self.config, "X")
        emotions: dict[str, list[torch.Tensor]] = {name: [] for name in self.heads_}
        aus: list[torch.Tensor] = []
        with torch.no_grad():
            for start in range(0, features.shape[0], CHUNK_ROWS):
                emotion_logits, au_logits = self.net_(features[start:start + CHUNK_ROWS])
                for name, logits in emotion_logits.items():
                    emotions[name].append(logits)
                if au_logits is not None:
                    aus.append(au_logits)
        return {k: torch.cat(v) for k, v in emotions.items()}, torch.cat(aus) if aus else None

    def _head(self, corpus: str | None) -> str:
        if not self.heads_:
            raise BadArgumentError("this model was trained without emotion labels (tasks='au'): it has no emotion head")
        name = corpus if corpus is not None else next(iter(self.heads_))
        if name not in self.heads_:
            raise BadArgumentError(f"no emotion head {name!r}; this model has {', '.join(self.heads_)}")
        return name

    def predict_proba(self, X: Any, corpus: str | None = None) -> np.ndarray:
        """Emotion probabilities ``(n, C)`` of head ``corpus`` (default: the first head)."""
        name = self._head(corpus)
        return torch.softmax(self._outputs(X)[0][name], dim=1).cpu().numpy().astype(np.float64)

    def predict(self, X: Any, corpus: str | None = None) -> np.ndarray:
        """Predicted emotion class ``(n,)`` (int64) of head ``corpus``."""
        return self.predict_proba(X, corpus).argmax(axis=1).astype(np.int64)

    def score(self, X: Any, y: Any, corpus: str | None = None) -> float:
        """Emotion accuracy on ``(X, y)``."""
        predicted = self.predict(X, corpus)
        return float(np.mean(predicted == _emotion_labels(y, len(predicted))))

    def predict_au_proba(self, X: Any) -> np.ndarray:
        """Probability of occurrence of every AU, ``(n, n_aus)``."""
        logits = self._outputs(X)[1]
        if logits is None:
            raise BadArgumentError("this model has no AU head (it was fitted without AU names or labels)")
        return torch.sigmoid(logits).cpu().numpy().astype(np.float64)

    def predict_au(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """Predicted occurrence (0/1, int64) of every AU, ``(n, n_aus)``."""
        return (self.predict_au_proba(X) >= threshold).astype(np.int64)

    def au_score(self, X: Any, au: Any) -> float:
        """Mean F1 over the AUs (:func:`mtl.evaluation.au_scores`) on ``(X, au)``."""
        values, names = _au_labels(au, len(np.asarray(au)), self.au_names_)
        return au_scores(values, self.predict_au_proba(X), names)["mean_f1"]


def _optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The optimiser's state dict with the momentum buffers of a checkpoint."""
    state = optimizer.state_dict()
    state["state"] = {int(name.split(".")[1]): {"momentum_buffer": tensor}
                      for name, tensor in tensors.items() if name.startswith("momentum.")}
    return state

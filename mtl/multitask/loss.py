"""The loss for heterogeneously labelled samples: each sample pays only for the labels it has.

Pons & Masip (2018) train one network on corpora labelled for different
tasks -- some for emotion, some for action units (AUs) -- by summing only the
loss terms a sample is labelled for. Here, for a batch:

``loss = emotion_weight * L_emotion + au_weight * L_au``

* ``L_emotion``: cross-entropy of each sample that has an emotion label,
  through the emotion head of its corpus, averaged over those samples;
* ``L_au``: binary cross-entropy of each (sample, AU) entry that has a label
  (0 or 1; NaN = unknown), averaged over those entries; with ``au_pos_weight``
  the positive entries of AU ``j`` count ``au_pos_weight[j]`` times (AUs are
  rare: unweighted, a short training learns to predict "absent" everywhere).

A term with no labelled sample in the batch is 0. Unlabelled samples and
entries are masked out (``torch.where``), so they contribute exactly zero
gradient, whatever the network outputs for them. When every sample has every
label, the loss is the weighted sum of the two single-task losses.

The single-task switch ``tasks`` gives the baselines on the same network:
``"emotion"`` drops the AU term, ``"au"`` the emotion term, ``"both"`` keeps
both (the multi-task model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mtl.errors import ConfigError

__all__ = ["TASKS", "check_tasks", "multitask_loss", "balancing_weights"]

TASKS: tuple[str, ...] = ("both", "emotion", "au")
"""Values of the single-task switch: the multi-task model, or one of its two tasks alone."""


def check_tasks(tasks: str) -> str:
    """``tasks`` if it is one of :data:`TASKS`, else :class:`~mtl.errors.ConfigError`."""
    if tasks not in TASKS:
        raise ConfigError(f"tasks must be one of {', '.join(TASKS)}, got {tasks!r}")
    return tasks


def multitask_loss(emotion_logits: dict[str, torch.Tensor], au_logits: torch.Tensor | None,
                   emotion: torch.Tensor, head: torch.Tensor, au: torch.Tensor | None,
                   emotion_weight: float = 1.0, au_weight: float = 1.0, tasks: str = "both",
                   au_pos_weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The masked multi-task loss of one batch (module docstring).

    Parameters
    ----------
    emotion_logits : {head name: (n, C_head) logits}, in the order of the head indices
        Every head's output for every sample of the batch.
    au_logits : (n, n_aus) logits, or None when the network has no AU head
    emotion : int64 (n,)
        Class index of each sample within its head's classes; -1 = no emotion label.
    head : int64 (n,)
        Index (into ``emotion_logits``' order) of the head of each sample's corpus.
    au : float (n, n_aus), or None
        1 = the AU occurs, 0 = it does not, NaN = unknown.
    emotion_weight, au_weight : float, default 1.0
        Weights of the two terms.
    tasks : {"both", "emotion", "au"}, default "both"
        Which terms count (the single-task switch).
    au_pos_weight : (n_aus,) tensor or None (default: every entry counts once)
        Weight of the positive entries of each AU (:func:`balancing_weights`).

    Returns
    -------
    (loss, parts)
        The scalar loss to minimise, and ``{"emotion": L_emotion, "au": L_au}``
        as floats (0 for a term that does not count or has no label).
    """
    check_tasks(tasks)
    total = torch.zeros((), device=emotion.device)
    parts = {"emotion": 0.0, "au": 0.0}
    if tasks in ("both", "emotion"):
        labelled = emotion >= 0
        summed = torch.zeros((), device=emotion.device)
        for index, logits in enumerate(emotion_logits.values()):
            rows = labelled & (head == index)
            if bool(rows.any()):
                summed = summed + F.cross_entropy(logits[rows], emotion[rows], reduction="sum")
        term = summed / labelled.sum().clamp(min=1)
        total = total + emotion_weight * term
        parts["emotion"] = float(term.detach())
    if tasks in ("both", "au") and au is not None and au_logits is not None:
        known = torch.isfinite(au)
        entries = F.binary_cross_entropy_with_logits(au_logits, torch.where(known, au, torch.zeros_like(au)),
                                                     reduction="none", pos_weight=au_pos_weight)
        term = torch.where(known, entries, torch.zeros_like(entries)).sum() / known.sum().clamp(min=1)
        total = total + au_weight * term
        parts["au"] = float(term.detach())
    return total, parts


def balancing_weights(au: torch.Tensor, limit: float = 20.0) -> torch.Tensor:
    """Per-AU weight of a positive entry: negatives / positives among the labelled entries, in [1, ``limit``].

    An AU without a labelled positive gets ``limit``; one more often present than absent gets 1.
    """
    known = torch.isfinite(au)
    positives = torch.where(known, au, torch.zeros_like(au)).sum(dim=0)
    negatives = known.sum(dim=0) - positives
    return (negatives / positives.clamp(min=1e-9)).clamp(min=1.0, max=limit)

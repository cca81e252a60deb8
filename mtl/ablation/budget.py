"""The budget of the committed ablation, declared once.

The records under ``results/real/ablation`` and ``results/real/ablation-nested``
were computed on a smaller budget than the paper's. Every place that needs
that budget reads :data:`BUDGET`: ``scripts/run_ablation.py`` (its defaults),
:func:`mtl.ablation.grid.budget_cells` (the grid it lists),
:func:`mtl.ablation.chapter.plan_ablation` (the grid the chapter costs) and
the chapter's prose (:func:`describe_budget`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mtl.config import PAPER

__all__ = ["AblationBudget", "BUDGET", "describe_budget"]


@dataclass(frozen=True)
class AblationBudget:
    """What the ablation's records were computed with, besides the paper's profile.

    Attributes
    ----------
    profile : str, default "paper"
        The profile every cell starts from (S = 20, K = 2, L = 3, M = 20, N = 4, lr 0.02, batch 64).
    generations : int, default 50
        G of the ``one_pass`` settings (the paper: 200). The whole grid at
        G = 200 with T read literally costs hundreds of core-hours.
    budget : str, default "equal_steps"
        ``literal_epochs`` at about the SGD steps of ``one_pass``: its G
        becomes ``max(1, round(G / T))`` (:func:`mtl.ablation.grid.ablation_cells`).
    source_budget : str, default "one_pass"
        Transfer under either reading of T starts from one source model per
        module type, trained as the ``one_pass`` setting (its G included).
    seeds : tuple of int, default (0,)
    n_inner : int, default 3
        Inner folds of the nested selections.
    selections : tuple of (protocol, metric), default speaker by UAR, paper by accuracy
        The nested selections run, and the inner score each chooses by.
    """

    profile: str = "paper"
    generations: int = 50
    budget: str = "equal_steps"
    source_budget: str = "one_pass"
    seeds: tuple[int, ...] = (0,)
    n_inner: int = 3
    selections: tuple[tuple[str, str], ...] = (("speaker", "uar"), ("paper", "accuracy"))


BUDGET = AblationBudget()
"""The budget of the committed records (and the defaults of the script and the chapter)."""

_METRIC_NAMES = {"uar": "unweighted average recall (UAR)", "accuracy": "segment accuracy"}


def describe_budget(budget: AblationBudget = BUDGET, T: int | None = None,
                    literal_generations: int | None = None) -> str:
    """The budget in words (Markdown bullets) for the chapter.

    Parameters
    ----------
    budget : AblationBudget, default :data:`BUDGET`
    T : int or None
        SGD steps of one pass over the target's training part, as the records
        have it; None: said without a number.
    literal_generations : int or None
        G of the ``literal_epochs`` settings as the records have it; None:
        said without a number.
    """
    t_text = f"T = {T}" if T is not None else "T"
    lines = [f"* **G = {budget.generations} generations** for the one-pass settings instead of the paper's "
             f"{PAPER.generations}. The whole grid at G = {PAPER.generations} with T read literally costs hundreds "
             "of core-hours here (the cost table below shows the chapter's own grid). The linear one-pass runs at "
             f"G = {PAPER.generations} under the paper and speaker protocols exist already -- they are the "
             "*Real recordings* chapter's -- and appear beside the others as anchors (rows with "
             f"G = {PAPER.generations}): they show what the cut in G costs."]
    if budget.budget == "equal_steps":
        literal = f"G = {literal_generations}" if literal_generations is not None else "fewer"
        lines.append(f"* **T read literally, at the same number of SGD steps.** T epochs of T steps per pathway "
                     f"({t_text} on EMO-DB's training folds) at G = {budget.generations} would train {T or 'T'} "
                     f"times longer than one pass. Here `literal_epochs` runs {literal} generations instead, so "
                     "both readings spend about the same SGD steps on the target: long training of few pathways "
                     "against short training of many.")
    else:
        lines.append(f"* **T read literally at the same G**: `literal_epochs` trains {T or 'T'} times more SGD "
                     "steps per pathway than one pass.")
    if budget.source_budget == "one_pass":
        lines.append("* **One source model per module type.** Transfer under either reading of T starts from the "
                     f"same source model, evolved on all of RAVDESS (one pass, G = {budget.generations}), so the T "
                     "factor varies only how the target trains.")
    for protocol, metric in budget.selections:
        grouped = {"speaker": "grouped by speaker", "utterance": "grouped by utterance",
                   "paper": "random over segments"}[protocol]
        lines.append(f"* **Nested selection under the {protocol} protocol**: among the four module-type x T "
                     f"settings, on {budget.n_inner} inner folds {grouped}, by {_METRIC_NAMES.get(metric, metric)}.")
    return "\n".join(lines)

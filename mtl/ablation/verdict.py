"""What the ablation adds up to, in sentences computed from its records.

:func:`ablation_summary` says which settings, if any, reach the paper's
numbers under the paper's own protocol, and what the nested selections reach
with a setting chosen on inner validation folds. :func:`ablation_findings`
ranks the factors by how far they move the scores (:func:`~mtl.ablation.analysis.factor_effects`),
says what a larger G buys (the anchors) and how much of the gap to the paper
the largest gain closes. The chapter shows both as they come out: no number
in its conclusions is typed by hand.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mtl.ablation.analysis import DECISIONS, ablation_table, factor_effects, mean_sd
from mtl.ablation.grid import ABLATION, TARGET
from mtl.ablation.records import outer_only
from mtl.results import paper_values

__all__ = ["AblationSummary", "ablation_summary", "AblationFindings", "ablation_findings", "paper_numbers"]


def _text(self) -> str:
    """The Markdown text (how a notebook shows a summary, and what ``str`` gives)."""
    return self.text


@dataclass
class AblationSummary:
    """What the ablation found, in words (:attr:`text`, markdown) and numbers.

    Attributes
    ----------
    paper_protocol : DataFrame
        Settings under the paper's protocol with their mean segment and
        utterance accuracy, the paper's number for their method and whether
        they reach it.
    reaching : list of str
        Settings (and decision level) whose mean accuracy reaches the paper's.
    nested_accuracy : dict or None
        The paper-protocol nested selection's outer-test accuracy: ``mean``,
        ``sd``, ``n``, ``utterance_mean``, ``metric``, ``chosen``; None
        without scored folds.
    nested_uar : dict or None
        The nested selection's outer-test UAR: ``protocol`` (``"speaker"``
        for the speaker-independent number), ``mean``, ``sd``, ``n`` (outer
        folds scored), ``metric`` (the inner score that chose) and ``chosen``
        (``{(seed, fold): setting}``); None without scored folds.
    text : str
    """

    paper_protocol: pd.DataFrame
    reaching: list[str]
    nested_uar: dict[str, Any] | None
    nested_accuracy: dict[str, Any] | None
    text: str

    _repr_markdown_ = __str__ = _text


def paper_numbers() -> dict[str, float]:
    """The paper's EMO-DB accuracy per method (Table 4): scratch 0.89, transfer 0.97, fine-tuning 0.83."""
    table = paper_values("table4")
    table = table[table["target"] == TARGET]
    return dict(zip(table["method"], table["overall"].astype(float)))


def _scored_outer_folds(scored: pd.DataFrame, score: str) -> dict[str, Any]:
    """Mean, sd and count of ``score`` over a nested selection's scored outer folds, its metric and choices."""
    mean, sd, n = mean_sd(scored[score])
    return {"mean": mean, "sd": sd, "n": n, "metric": str(scored["metric"].iloc[0]),
            "chosen": dict(zip(zip(scored["seed"], scored["fold"]), scored["chosen"]))}


def _sd_text(sd: float, digits: int) -> str:
    return f" ± {sd:.{digits}f}" if not math.isnan(sd) else ""


def _choices_text(chosen: Mapping[tuple[int, int], str]) -> str:
    """How often each setting was chosen (``module_type=conv in 5 of 5 outer folds``), then fold by fold."""
    counts: dict[str, Counter] = {}
    for name in chosen.values():
        for item in str(name).split(", "):
            key, _, value = item.partition("=")
            counts.setdefault(key, Counter())[value] += 1
    n = len(chosen)
    tally = "; ".join(f"{key}=" + ", ".join(f"{value} in {k} of {n}" for value, k in values.most_common())
                      for key, values in counts.items())
    return (f"{tally} outer folds (" + "; ".join(f"seed {s}, fold {f}: {c}" for (s, f), c in chosen.items())
            + ")")


def ablation_summary(records: pd.DataFrame, nested: pd.DataFrame | None = None, digits: int = 2,
                     paper_nested: pd.DataFrame | None = None) -> AblationSummary:
    """Which settings reach the paper's EMO-DB accuracy under its own protocol, and the best
    speaker-independent UAR chosen on inner validation folds.

    Parameters
    ----------
    records : DataFrame
        :func:`load_ablation_records` (outer-fold records).
    nested : DataFrame or None
        :meth:`NestedSelection.results` of a speaker-protocol selection; its
        scored folds give the speaker-independent UAR. None: not reported.
    digits : int, default 2
    paper_nested : DataFrame or None
        :meth:`NestedSelection.results` of a paper-protocol selection; its
        scored folds give the accuracy reached under the paper's protocol
        without choosing on the test folds. None: not reported.

    Notes
    -----
    "Reaches" means the mean over folds (and seeds) is at least the paper's
    value for that method -- 0.89 from scratch, 0.97 for transfer (Table 4),
    at the segment level (the paper's decisions) or the utterance level
    (mean probability), each said separately. The paper's protocol is random
    folds over segments, which puts overlapping segments of one utterance on
    both sides; numbers under it measure recognition of seen recordings.
    """
    paper = paper_numbers()
    frame = outer_only(records)
    lines: list[str] = []
    rows = []
    reaching: list[str] = []
    on_paper = frame[frame["protocol"] == "paper"] if not frame.empty else frame
    if on_paper.empty:
        lines.append("**No ablation records under the paper's protocol yet**, so nothing can be said about "
                     f"reaching the paper's EMO-DB accuracy ({paper['scratch']:.2f} from scratch, "
                     f"{paper['transfer']:.2f} with transfer).")
    else:
        keys = ["method", "module_type", "training_budget", "generations", "data_kind"]
        for key, group in on_paper.groupby(keys, sort=True):
            row = dict(zip(keys, key))
            row["folds"] = int(len(group))
            row["paper"] = paper.get(row["method"], float("nan"))
            for decision in ("segment", "utterance (mean prob.)"):
                mean, sd, _ = mean_sd(group[DECISIONS[decision]])
                row[f"{decision} mean"], row[f"{decision} sd"] = mean, sd
                reached = bool(mean >= row["paper"]) if not math.isnan(mean) else False
                row[f"{decision} reaches"] = reached
                if reached:
                    reaching.append(f"{row['method']}, {row['module_type']} modules, {row['training_budget']}, "
                                    f"G={row['generations']} ({decision} decisions: {mean:.{digits}f})")
            rows.append(row)
        best = max(rows, key=lambda r: (r["segment mean"] if not math.isnan(r["segment mean"]) else -1))
        if reaching:
            lines.append("**Settings that reach the paper's EMO-DB accuracy under its own protocol** "
                         "(random folds over segments): " + "; ".join(reaching) + ".")
        else:
            lines.append(f"**No setting reaches the paper's EMO-DB accuracy under its own protocol** "
                         f"({paper['scratch']:.2f} from scratch, {paper['transfer']:.2f} with transfer). The best "
                         f"mean segment accuracy is {best['segment mean']:.{digits}f} ({best['method']}, "
                         f"{best['module_type']} modules, {best['training_budget']}, G={best['generations']}, "
                         f"{best['folds']} folds) -- the best of {len(rows)} settings on their test folds, so if "
                         f"anything an optimistic number.")
        kinds = sorted(set(on_paper["data_kind"].dropna()))
        if kinds != ["real"] and kinds != ["mixed"]:
            lines.append(f"Careful: these records are on {', '.join(kinds)} data, not only the real EMO-DB.")
    nested_uar = None
    if nested is not None and not nested.empty:
        scored = nested[nested["status"] == "scored"]
        protocol = str(nested["protocol"].iloc[0])
        what = {"speaker": "speaker-independent", "utterance": "utterance-grouped (not speaker-independent)",
                "paper": "random-segment-fold (not speaker-independent)"}[protocol]
        if scored.empty:
            lines.append(f"**No {what} nested selection is complete yet** (no outer fold scored).")
        else:
            found = nested_uar = {"protocol": protocol, **_scored_outer_folds(scored, "uar")}
            lines.append(f"**Best {what} unweighted average recall, with the setting chosen on inner validation "
                         f"folds** (by {found['metric']}): {found['mean']:.{digits}f}{_sd_text(found['sd'], digits)} "
                         f"on the outer test folds, {found['n']} of {len(nested)} scored (chance: {1 / 7:.2f} for 7 "
                         f"classes). Chosen per outer fold: {_choices_text(found['chosen'])}.")
    elif nested is not None:
        lines.append("**No nested selection has run yet.**")
    nested_accuracy = None
    if paper_nested is not None and not paper_nested.empty:
        scored = paper_nested[paper_nested["status"] == "scored"]
        if not scored.empty:
            utterance, _, _ = mean_sd(scored["utt_accuracy_mean_prob"])
            found = nested_accuracy = {**_scored_outer_folds(scored, "accuracy"), "utterance_mean": utterance}
            verdict = "reaches" if found["mean"] >= paper["scratch"] else "stays below"
            lines.append(f"**Under the paper's own protocol, with the setting chosen on inner validation folds** "
                         f"(by {found['metric']}): segment accuracy {found['mean']:.{digits}f}"
                         f"{_sd_text(found['sd'], digits)} and utterance accuracy (mean prob.) "
                         f"{utterance:.{digits}f} on the outer test folds, {found['n']} of {len(paper_nested)} "
                         f"scored; this {verdict} the paper's {paper['scratch']:.2f} from scratch. Chosen per outer "
                         f"fold: {_choices_text(found['chosen'])}.")
    return AblationSummary(paper_protocol=pd.DataFrame(rows), reaching=reaching, nested_uar=nested_uar,
                           nested_accuracy=nested_accuracy, text="\n\n".join(lines))




SMALL = 0.01
"""A mean difference below this (in accuracy or UAR) is said to move the numbers by "less than 0.01"."""

_LABELS: dict[str, str] = {
    "linear -> conv": "Convolutional modules",
    "one_pass -> literal_epochs": "Reading T literally",
    "scratch -> transfer": "Transfer from RAVDESS",
    "segment -> utterance (mean prob.)": "Utterance decisions (mean probability)",
    "paper -> speaker": "Speaker-independent folds",
    "paper -> utterance": "Folds grouped by utterance",
}
"""How :func:`ablation_findings` names each contrast of :func:`~mtl.ablation.analysis.factor_effects` (level b)."""
_AGAINST: dict[str, str] = {
    "linear -> conv": "the paired linear runs", "one_pass -> literal_epochs": "the paired one-pass runs",
    "scratch -> transfer": "the paired runs from scratch",
    "segment -> utterance (mean prob.)": "segment decisions of the same runs",
    "paper -> speaker": "the paper's random segment folds", "paper -> utterance": "the paper's random segment folds",
}


@dataclass
class AblationFindings:
    """The factors ranked by their effect, in words (:attr:`text`, Markdown) and numbers.

    Attributes
    ----------
    effects : DataFrame
        :func:`~mtl.ablation.analysis.factor_effects` on segment accuracy,
        with ``uar_difference`` (the same contrast on segment UAR) and
        ``better`` (pairs in which level b scored higher).
    g_effect : tuple of float or None
        Smallest and largest change of mean segment accuracy from the lowest to
        the highest G of a setting (the anchors), or None without two G.
    gap_closed : float or None
        Share of the gap between the paper's own setting here and the paper's
        scratch number that the largest gain closes; None without both.
    text : str
    """

    effects: pd.DataFrame
    g_effect: tuple[float, float] | None
    gap_closed: float | None
    text: str

    _repr_markdown_ = __str__ = _text


def _effect_sentence(row: pd.Series, digits: int) -> str:
    comparison = row["comparison"]
    unit = "settings" if row["factor"] == "protocol" else "pairs"
    better = f"better in {int(row['better'])} of {int(row['pairs'])} {unit}"
    if abs(row["mean_difference"]) < SMALL and abs(row["uar_difference"]) < SMALL:
        return (f"**{_LABELS[comparison]}**: less than {SMALL} on average in accuracy and UAR "
                f"({row['mean_difference']:+.3f} and {row['uar_difference']:+.3f} against {_AGAINST[comparison]}; "
                f"{better}).")
    return (f"**{_LABELS[comparison]}**: {row['mean_difference']:+.{digits}f} accuracy and "
            f"{row['uar_difference']:+.{digits}f} UAR against {_AGAINST[comparison]}, {better}.")


def _g_effect(records: pd.DataFrame) -> tuple[tuple[float, float], int, int] | None:
    """(smallest, largest) change of mean segment accuracy from a setting's lowest G to its highest, and the Gs."""
    table = ablation_table(records, ["segment"])
    changes, lows, highs = [], set(), set()
    for _, group in table.groupby(["protocol", "module_type", "training_budget"], sort=False):
        if "generations" not in group or group["generations"].nunique() < 2:
            continue
        ordered = group.sort_values("generations")
        low, high = ordered.iloc[0], ordered.iloc[-1]
        lows.add(int(low["generations"]))
        highs.add(int(high["generations"]))
        changes += [high[f"{m}_mean"] - low[f"{m}_mean"] for m in ("scratch", "transfer")
                    if not (math.isnan(high[f"{m}_mean"]) or math.isnan(low[f"{m}_mean"]))]
    if not changes or len(lows) != 1 or len(highs) != 1:
        return None
    return (min(changes), max(changes)), lows.pop(), highs.pop()


def ablation_findings(records: pd.DataFrame, digits: int = 2, experiment: str = ABLATION) -> AblationFindings:
    """The factors ranked by how far they move segment accuracy, what G buys, and how much of the gap closes.

    Parameters
    ----------
    records : DataFrame
        :func:`~mtl.ablation.records.load_ablation_records` of the grid, with
        :func:`~mtl.ablation.records.anchor_records` for the effect of G.
    digits : int, default 2
    experiment : str, default "ablation"
        The grid whose records are paired (see :func:`~mtl.ablation.analysis.factor_effects`).

    Notes
    -----
    The paper's own setting here is the linear one-pass scratch setting under
    the paper's protocol at the grid's G; the gap is the paper's scratch
    accuracy (Table 4) minus its mean segment accuracy.
    """
    accuracy, uar = factor_effects(records, "accuracy", experiment), factor_effects(records, "uar", experiment)
    effects = accuracy.assign(uar_difference=uar["mean_difference"].to_numpy(),
                              better=(accuracy["b_better"] * accuracy["pairs"]).round())
    effects = effects[effects["pairs"] > 0]
    if effects.empty:
        return AblationFindings(effects, None, None, "*No two records of the grid differ in one factor only yet, "
                                                     "so no factor can be ranked.*")
    frame = outer_only(records)
    grid = frame[frame["experiment"] == experiment]
    ranked = effects.reindex(effects["mean_difference"].abs().sort_values(ascending=False).index)
    lines = [f"On the records of the grid ({_seeds_folds(grid)}), the factors ranked by how far they move "
             "accuracy (of segment decisions, but where the decision level is the factor):", ""]
    lines += [f"* {_effect_sentence(row, digits)}" for _, row in ranked.iterrows()]
    paper = paper_numbers()
    transfer = effects[effects["comparison"] == "scratch -> transfer"]
    if len(transfer):
        gain, found = paper["transfer"] - paper["scratch"], float(transfer["mean_difference"].iloc[0])
        lines.append(f"* The paper's transfer gain (+{gain:.{digits}f} on EMO-DB, Table 4) is "
                     f"{'reproduced' if found >= gain / 2 else 'not reproduced'} here ({found:+.3f}).")
    found_g = _g_effect(frame)
    g_effect = None
    if found_g is not None:
        g_effect, low, high = found_g
        lines.append(f"* **G = {high} instead of {low}** (the anchors) changes mean segment accuracy by "
                     f"{g_effect[0]:+.{digits}f} to {g_effect[1]:+.{digits}f}.")
    faithful = grid[(grid["protocol"] == "paper") & (grid["module_type"] == "linear")
                    & (grid["training_budget"] == "one_pass") & (grid["method"] == "scratch")]
    gap_closed = None
    gains = effects[effects["factor"] != "protocol"]
    if len(faithful) and len(gains) and gains["mean_difference"].max() > 0:
        best = gains.loc[gains["mean_difference"].idxmax()]
        faithful_mean = mean_sd(faithful["accuracy"])[0]
        gap = paper["scratch"] - faithful_mean
        gap_closed = float(best["mean_difference"] / gap) if gap > 0 else None
        if gap_closed is not None:
            lines += ["", f"The paper's own setting here (linear modules, one pass, from scratch, its protocol) "
                          f"scores {faithful_mean:.{digits}f} against the paper's {paper['scratch']:.2f}. The "
                          f"largest gain found, {_LABELS[best['comparison']].lower()} "
                          f"({best['mean_difference']:+.{digits}f}), closes {gap_closed:.0%} of that gap."]
    return AblationFindings(effects.reset_index(drop=True), g_effect, gap_closed, "\n".join(lines))


def _seeds_folds(records: pd.DataFrame) -> str:
    seeds = sorted(records["seed"].unique())
    return (f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, "
            f"{records['fold'].nunique()} folds, {len(records)} runs")

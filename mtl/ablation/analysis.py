"""Tables and statistics of the ablation's records: mean ± sd per setting, paired tests, factor effects.

:func:`ablation_table` gives mean ± sd over folds for every setting and
decision level, with paired tests of transfer against scratch over the same
folds (paired t-test and Wilcoxon signed-rank). :func:`factor_effects` pairs
records that differ in one factor only and says how far each factor moves a
score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mtl.ablation.grid import ABLATION, check_one_of
from mtl.ablation.records import outer_only
from mtl.config import MODULE_TYPES, PROTOCOLS, TRAINING_BUDGETS
from mtl.errors import ConfigError
from mtl.results import format_mean_sd

__all__ = ["DECISIONS", "SETTING_COLUMNS", "CONTRASTS", "paired_test", "mean_sd", "ablation_table",
           "factor_effects"]

DECISIONS: dict[str, str] = {
    "segment": "accuracy",
    "utterance (mean prob.)": "utt_accuracy_mean_prob",
    "utterance (vote)": "utt_accuracy_vote",
    "segment UAR": "uar",
    "utterance UAR (mean prob.)": "utt_uar",
}
"""Decision level -> record metric (:func:`mtl.results.load_records` column); all come from one run."""

SETTING_COLUMNS: tuple[str, ...] = ("protocol", "module_type", "training_budget", "method", "generations",
                                    "data_kind", "content_hash", "base_id")
"""Record columns that tell two settings apart: the factors, G, the data copy and ``base_id`` (the rest of the
configuration). Result-neutral fields such as the profile's name are left out, as in cell keys
(:data:`mtl.config.RESULT_NEUTRAL_FIELDS`): records differing only there are one setting."""

def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Paired t-test and Wilcoxon signed-rank test of ``b`` against ``a`` (same folds, same order).

    Returns ``n`` (pairs), ``mean_difference`` (b - a), ``t_p`` and
    ``wilcoxon_p`` (two-sided). A p-value is NaN when the test is undefined:
    fewer than two pairs, or every difference zero (the t-test also when the
    differences are all equal). With 5 folds the exact Wilcoxon test cannot go
    below p = 0.0625: read it as a sign of direction, not of significance.
    """
    from scipy import stats  # here, not above: ~0.8 s to import, and only the tests' tables need it first

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ConfigError(f"paired_test needs as many values on both sides, got {len(a)} and {len(b)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    out = {"n": int(len(a)), "mean_difference": float(np.mean(b - a)) if len(a) else float("nan"),
           "t_p": float("nan"), "wilcoxon_p": float("nan")}
    differences = b - a
    if len(a) < 2 or np.allclose(differences, 0):
        return out
    if not np.allclose(differences, differences[0]):
        out["t_p"] = float(stats.ttest_rel(b, a).pvalue)
    out["wilcoxon_p"] = float(stats.wilcoxon(b, a).pvalue)
    return out


def mean_sd(values: pd.Series) -> tuple[float, float, int]:
    """Mean, sample sd (NaN below two values) and count of the numeric, non-missing ``values``."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    mean = float(values.mean()) if len(values) else float("nan")
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return mean, sd, int(len(values))


def ablation_table(records: pd.DataFrame, decisions: Sequence[str] | None = ("segment", "utterance (mean prob.)"),
                   baseline: str = "scratch", treatment: str = "transfer", digits: int = 2) -> pd.DataFrame:
    """Mean ± sd over folds of every setting and decision level, with transfer tested against scratch.

    Parameters
    ----------
    records : DataFrame
        From :func:`load_ablation_records` (outer-fold records; inner-fold
        rows are ignored).
    decisions : sequence of str or None, default segment and utterance (mean prob.)
        Keys of :data:`DECISIONS`; None: all of them.
    baseline, treatment : str, default "scratch" and "transfer"
        The methods compared. Pairs are records of the same setting, seed and
        fold: the same training and test samples.
    digits : int, default 2
        Decimals of the ``"mean ± sd"`` text columns.

    Returns
    -------
    DataFrame
        One row per protocol x module type x budget x decision (and G,
        data copy and configuration id when they vary): ``<method>`` (text, mean ±
        sd over folds and seeds), ``<method>_mean``, ``<method>_sd``,
        ``<method>_n`` for both methods, and the paired comparison over the
        folds both have: ``n_pairs``, ``difference`` (treatment - baseline),
        ``t_p``, ``wilcoxon_p``.
    """
    decisions = list(DECISIONS) if decisions is None else list(decisions)
    unknown = [d for d in decisions if d not in DECISIONS]
    if unknown:
        raise ConfigError(f"unknown decision level(s) {', '.join(map(repr, unknown))}; choose from "
                          f"{', '.join(DECISIONS)}")
    columns = ["protocol", "module_type", "training_budget", "decision", baseline, treatment, "n_pairs",
               "difference", "t_p", "wilcoxon_p"]
    if records is None or records.empty:
        return pd.DataFrame(columns=columns)
    frame = outer_only(records)
    setting = [c for c in SETTING_COLUMNS if c != "method"]
    rows = []
    for key, group in frame.groupby(setting, dropna=False, sort=False):
        for decision in decisions:
            metric = DECISIONS[decision]
            row = dict(zip(setting, key), decision=decision, metric=metric)
            by_method = {}
            for method in (baseline, treatment):
                part = group[group["method"] == method]
                mean, sd, n = mean_sd(part[metric])
                row.update({method: format_mean_sd(mean, sd, digits), f"{method}_mean": mean, f"{method}_sd": sd,
                            f"{method}_n": n})
                by_method[method] = part.set_index(["seed", "fold"])[metric].astype(float)
            paired = pd.concat(by_method, axis=1, join="inner").dropna()
            test = paired_test(paired[baseline], paired[treatment]) if len(paired) else paired_test([], [])
            row.update(n_pairs=test["n"], difference=test["mean_difference"], t_p=test["t_p"],
                       wilcoxon_p=test["wilcoxon_p"])
            rows.append(row)
    table = pd.DataFrame(rows)
    varying = [c for c in ("generations", "data_kind", "content_hash", "base_id")
               if table[c].nunique(dropna=False) > 1]
    # The factors' own level order (the paper's level first), then G: anchors at another G follow their setting.
    order = {"protocol": PROTOCOLS, "module_type": MODULE_TYPES, "training_budget": TRAINING_BUDGETS}
    table = table.sort_values(["protocol", "module_type", "training_budget", "generations"], kind="stable",
                              key=lambda s: s.map({v: i for i, v in enumerate(order[s.name])}) if s.name in order
                              else pd.to_numeric(s, errors="coerce"))
    keep = ["protocol", "module_type", "training_budget", *varying, "decision", baseline, treatment,
            f"{baseline}_mean", f"{baseline}_sd", f"{baseline}_n", f"{treatment}_mean", f"{treatment}_sd",
            f"{treatment}_n", "n_pairs", "difference", "t_p", "wilcoxon_p"]
    return table[keep].reset_index(drop=True)


CONTRASTS: tuple[tuple[str, str, str], ...] = (
    ("module_type", "linear", "conv"),
    ("training_budget", "one_pass", "literal_epochs"),
    ("method", "scratch", "transfer"),
)
"""Paired contrasts of :func:`factor_effects`: (factor, level a, level b); each row reports b - a."""
_UTTERANCE_OF = {"accuracy": "utt_accuracy_mean_prob", "uar": "utt_uar"}


def _effect_row(factor: str, comparison: str, differences: pd.Series, keys: list[str]) -> dict[str, Any]:
    """One row of :func:`factor_effects` from paired differences indexed by setting keys (+ seed, fold)."""
    per_setting = differences.groupby(level=keys).mean() if len(differences) else differences
    return {"factor": factor, "comparison": comparison, "settings": int(len(per_setting)),
            "pairs": int(len(differences)),
            "mean_difference": float(differences.mean()) if len(differences) else float("nan"),
            "sd": float(differences.std(ddof=1)) if len(differences) > 1 else float("nan"),
            "smallest": float(per_setting.min()) if len(per_setting) else float("nan"),
            "largest": float(per_setting.max()) if len(per_setting) else float("nan"),
            "b_better": float((differences > 0).mean()) if len(differences) else float("nan")}


def factor_effects(records: pd.DataFrame, metric: str = "accuracy", experiment: str = ABLATION) -> pd.DataFrame:
    """How far each factor moves a score, as differences paired over the grid.

    Parameters
    ----------
    records : DataFrame
        :func:`load_ablation_records` (inner-fold rows are ignored).
    metric : {"accuracy", "uar"}, default "accuracy"
        Segment-level score; the decision-level row compares it with its
        utterance-level counterpart (mean probability).
    experiment : str, default "ablation"
        Only this experiment's records are paired: anchors computed elsewhere
        (another G) have no partner in the grid.

    Returns
    -------
    DataFrame
        One row per contrast ``a -> b`` (:data:`CONTRASTS`, then the decision
        level, then the protocols): ``settings`` (matched settings),
        ``pairs``, ``mean_difference`` (b - a over pairs), ``sd``,
        ``smallest`` and ``largest`` (over the settings' mean differences),
        ``b_better`` (share of pairs where b scores higher).

    Notes
    -----
    A pair is two records that differ in the factor only -- same other
    settings, seed and fold, so the same training and test samples. The
    training budget is paired across G, which its two levels set apart by
    design (``budget="equal_steps"``). The decision level is paired within
    each record. A protocol changes the folds themselves, so protocols are
    compared between setting means (speaker or utterance minus paper, for
    settings alike in everything else); there ``pairs`` counts settings.
    """
    check_one_of("metric", metric, tuple(_UTTERANCE_OF))
    frame = outer_only(records)
    if not frame.empty and "experiment" in frame:
        frame = frame[frame["experiment"] == experiment]
    columns = ["factor", "comparison", "settings", "pairs", "mean_difference", "sd", "smallest", "largest",
               "b_better"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(**{k: frame[k].astype(str) for k in SETTING_COLUMNS})
    rows = []
    for factor, a, b in CONTRASTS:
        keys = [k for k in SETTING_COLUMNS if k != factor and not (factor == "training_budget" and k == "generations")]
        index = [*keys, "seed", "fold"]
        sides = {}
        for level in (a, b):
            part = frame[frame[factor] == level].set_index(index)[metric].astype(float)
            sides[level] = part[~part.index.duplicated()]
        paired = pd.concat(sides, axis=1, join="inner").dropna()
        rows.append(_effect_row(factor, f"{a} -> {b}", paired[b] - paired[a], keys))
    utterance = frame.set_index([*SETTING_COLUMNS, "seed", "fold"])
    differences = (utterance[_UTTERANCE_OF[metric]].astype(float) - utterance[metric].astype(float)).dropna()
    rows.append(_effect_row("decision", "segment -> utterance (mean prob.)", differences, list(SETTING_COLUMNS)))
    means = frame.groupby(list(SETTING_COLUMNS))[metric].mean()
    keys = [k for k in SETTING_COLUMNS if k != "protocol"]
    by_protocol = means.unstack("protocol") if len(means) else pd.DataFrame()
    for other in ("utterance", "speaker"):
        if "paper" in by_protocol and other in by_protocol:
            differences = (by_protocol[other] - by_protocol["paper"]).dropna()
        else:
            differences = pd.Series(dtype=float)
        if len(differences):
            differences.index = differences.index.set_names(keys)
        rows.append(_effect_row("protocol", f"paper -> {other}", differences, keys))
    return pd.DataFrame(rows, columns=columns)


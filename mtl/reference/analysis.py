"""The chapter "Where could 0.89 come from?" as tables: reference methods beside PathNet, from committed records.

Everything here reads records (:func:`mtl.results.load_records`); nothing
trains. The records are those of the real EMO-DB copy under
``results/real/``: the reference methods (experiment
:data:`REFERENCE_EXPERIMENT`), PathNet runs with their GA diagnostics
(:data:`PATHNET_EXPERIMENT`), and the earlier PathNet runs of the chapters
*Real recordings* and *Beyond the paper* (every PathNet setting tried).

Intervals. A mean over the records of one method and protocol (seeds x
folds) comes with a 95% t-interval, ``mean +- t(0.975, n-1) * sd / sqrt(n)``;
folds of one seed share training data, so the interval is narrower than
an interval over independent runs would be: read it as a description of
the spread, not as a test. Comparisons are paired by (seed, fold) -- the
same held-out recordings -- with :func:`mtl.ablation.analysis.paired_test`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import numpy as np
import pandas as pd

from mtl.ablation.analysis import paired_test
from mtl.pathnet import ga_diagnostics
from mtl.paths import project_root
from mtl.results import load_records

__all__ = ["REFERENCE_EXPERIMENT", "PATHNET_EXPERIMENT", "PATHNET_METHODS", "METRICS", "SELECTED_LABEL", "load_where089",
           "mean_ci", "method_table", "paired_table", "leakage_table", "ga_table", "best_speaker_independent",
           "selected_variants", "load_inner_runs"]

REFERENCE_EXPERIMENT = "where089-reference"
"""The experiment label of the reference methods' records (``results/real/where089-reference``)."""
PATHNET_EXPERIMENT = "where089-pathnet"
"""The experiment label of PathNet runs recorded with their GA diagnostics (``results/real/where089-pathnet``)."""
PATHNET_METHODS = ("scratch", "finetune", "transfer")
METRICS = {"uar": "segment UAR", "utt_uar": "utterance UAR (mean prob.)", "accuracy": "segment accuracy",
           "utt_accuracy_mean_prob": "utterance accuracy (mean prob.)"}
"""Record columns the chapter reports, and how it names them."""
_PATHNET_SOURCES = ("real_recordings", PATHNET_EXPERIMENT, "ablation")
"""Experiments whose PathNet records the chapter reads: the paper's settings, and the ablation's variants."""
SELECTED_LABEL = "PathNet scratch, variant chosen on inner folds [functionals, literal epochs]"
"""How the tables name the nested selection of :mod:`mtl.reference.selection` (one refit per seed x outer fold)."""
_NOT_A_SETTING = {"protocol", "seed", "profile", "frame_step", "input_shape"}
"""Config differences that do not name a PathNet variant (per cell, or without effect on speech)."""


def load_where089(records_dir: str | Path | None = None) -> pd.DataFrame:
    """The records the chapter reads, one row per cell, with ``family`` ("reference" or "PathNet") and ``label``.

    ``records_dir``: the folder of committed real-data records (default
    ``<project>/results/real``), of which the experiments
    :data:`REFERENCE_EXPERIMENT` and :data:`_PATHNET_SOURCES` are read. The
    ``label`` names the method and, for a PathNet variant, its settings
    beyond the paper's (``G=50, module_type=conv``); a cell recorded twice
    (once plain, once with its diagnostics) counts once, as its diagnosed
    record. Empty when nothing is committed.
    """
    folder = Path(records_dir) if records_dir is not None else project_root() / "results" / "real"
    folders = [folder / name for name in (REFERENCE_EXPERIMENT, *_PATHNET_SOURCES) if (folder / name).is_dir()]
    frame = load_records(folders) if folders else load_records([folder / REFERENCE_EXPERIMENT])
    if frame.empty:
        return frame.assign(family=pd.Series(dtype=str), label=pd.Series(dtype=str))
    frame = frame[frame["data_kind"] == "real"].copy()
    frame["family"] = np.where(frame["method"].isin(PATHNET_METHODS), "PathNet", "reference")
    frame["label"] = [_label(m, s, r) for m, s, r in zip(frame["method"], frame["sources"], frame["record"])]
    diagnosed = frame["record"].map(lambda r: r.get("stage") == "ga-diagnostics").astype(bool)
    outer = frame["record"].map(lambda r: r.get("outer_cell_key")).where(diagnosed)
    frame["same_cell"] = outer.fillna(frame["cell_key"])
    # Of a cell recorded twice the diagnosed record is kept: the same run (the same metrics), and its diagnostics.
    order = np.argsort(~diagnosed.to_numpy(), kind="stable")
    return frame.iloc[order].drop_duplicates(["same_cell"]).sort_index().reset_index(drop=True)


def load_inner_runs(records_dir: str | Path | None = None) -> pd.DataFrame:
    """The inner-fold runs of the variant selection (``<records_dir>/where089-nested``, default ``results/real``).

    What they cost is part of the chapter's grid; their scores are on inner folds and are read by
    :meth:`mtl.reference.selection.VariantSelection.selection`, not shown as results.
    """
    from mtl.reference.selection import INNER_EXPERIMENT

    folder = (Path(records_dir) if records_dir is not None else project_root() / "results" / "real") / INNER_EXPERIMENT
    return load_records([folder]) if folder.is_dir() else load_records([])


def mean_ci(values: Sequence[float]) -> dict[str, float]:
    """Mean, 95% t-interval (``low``, ``high``; NaN below two values) and ``n`` of the finite ``values``."""
    from scipy import stats

    values = pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna().to_numpy(dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n}
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


_SHORT = {"generations": lambda v: f"G={v}", "module_type": str, "training_budget": lambda v: v.replace("_", " "),
          "input_kind": str, "fitness_on": lambda v: f"fitness on {v}"}
"""How a label spells the ablation's factors."""


def _label(method: str, sources: str, record: dict) -> str:
    """``svm``; ``PathNet transfer from ravdess``; ``PathNet scratch [G=50, conv]``."""
    if method not in PATHNET_METHODS:
        return method
    setting = ", ".join(_SHORT.get(k, lambda v, k=k: f"{k}={v}")(v[1])
                        for k, v in sorted((record.get("config_differences") or {}).items()) if k not in _NOT_A_SETTING)
    return f"PathNet {method}" + (f" from {sources}" if sources else "") + (f" [{setting}]" if setting else "")


def method_table(frame: pd.DataFrame, metric: str = "utt_uar", digits: int = 2) -> pd.DataFrame:
    """Mean [95% interval] (n) of ``metric`` per method (rows) and protocol (columns)."""
    if frame.empty:
        return pd.DataFrame()
    cells: dict[str, dict[str, str]] = {}
    for (label, protocol), group in frame.groupby(["label", "protocol"], sort=True):
        ci = mean_ci(group[metric])
        text = f"{ci['mean']:.{digits}f}"
        if ci["n"] > 1:
            text += f" [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"
        cells.setdefault(label, {})[protocol] = f"{text} (n={ci['n']})"
    table = pd.DataFrame(cells).T.reindex(columns=[p for p in ("paper", "utterance", "speaker")
                                                   if p in set(frame["protocol"])])
    table.index.name = METRICS.get(metric, metric)
    return table.fillna("-")


def paired_table(frame: pd.DataFrame, comparisons: Sequence[tuple[str, str]], metric: str = "utt_uar"
                 ) -> pd.DataFrame:
    """Each comparison ``(a, b)`` of method labels (as :func:`method_table` names them) per protocol, paired by
    (seed, fold): pairs, mean difference b - a, t-test and Wilcoxon p."""
    rows = []
    for a, b in comparisons:
        for protocol, group in frame.groupby("protocol", sort=True):
            sides = [group[group["label"] == side].set_index(["seed", "fold"])[metric] for side in (a, b)]
            common = sides[0].index.intersection(sides[1].index)
            if len(common) < 2:
                continue
            test = paired_test(sides[0].loc[common].to_numpy(), sides[1].loc[common].to_numpy())
            rows.append({"comparison": f"{b} - {a}", "protocol": protocol, **test})
    return pd.DataFrame(rows, columns=["comparison", "protocol", "n", "mean_difference", "t_p", "wilcoxon_p"])


def leakage_table(frame: pd.DataFrame) -> pd.DataFrame:
    """1-NN per protocol: segment accuracy and UAR, and how often the neighbour was the same recording or speaker."""
    knn = frame[frame["method"] == "knn1"]
    if knn.empty:
        return pd.DataFrame()
    details = pd.DataFrame(list(knn["record"].map(lambda r: r.get("reference") or {})), index=knn.index)
    knn = knn.assign(same_recording=details.get("same_recording"), same_speaker=details.get("same_speaker"))
    table = knn.groupby("protocol")[["accuracy", "uar", "same_recording", "same_speaker"]].mean()
    table["records"] = knn.groupby("protocol").size()
    return table.reindex([p for p in ("paper", "utterance", "speaker") if p in table.index])


def ga_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The GA diagnostics of every PathNet evolution at the paper's settings or recorded with them, one row per run.

    Records with a ``ga`` field (:mod:`mtl.reference.diagnosed`) give every
    diagnostic; the others give what their learning curve holds, the first
    generation at training fitness 1.0 (:func:`mtl.pathnet.ga_diagnostics` of
    the curve), the rest NaN.
    """
    if frame.empty:
        return pd.DataFrame()
    rows = []
    diagnosed = frame["record"].map(lambda r: "ga" in r)
    wanted = frame["method"].isin(("scratch", "transfer")) & (~frame["label"].str.contains("[", regex=False)
                                                              | diagnosed)
    for _, row in frame[wanted].iterrows():
        record = row["record"]
        ga = record.get("ga") or ga_diagnostics(record.get("learning_curve") or [])
        rows.append({"label": row["label"], "method": row["method"],
                     "input": _input(record.get("config") or {}), "protocol": row["protocol"],
                     "seed": row["seed"], "fold": row["fold"], "diagnosed": "ga" in record,
                     **{k: np.nan if v is None else v for k, v in ga.items()}})
    return pd.DataFrame(rows)


def _input(config: dict) -> str:
    """What a run's pathways read and are chosen on: ``segments``, ``functionals``, ``+ held-out fitness``."""
    held_out = " + held-out fitness" if config.get("fitness_on", "train") == "validation" else ""
    return config.get("input_kind", "segments") + held_out


def best_speaker_independent(frame: pd.DataFrame, metric: str = "utt_uar") -> pd.DataFrame:
    """The best mean speaker-independent ``metric`` of any PathNet setting and of any method, with its interval.

    Chosen on the test folds it reports (an upper bound for that family, not
    a selection a user could make without them).
    """
    speaker = frame[frame["protocol"] == "speaker"]
    rows = []
    for family, scope in (("any PathNet setting", speaker[speaker["family"] == "PathNet"]), ("any method", speaker)):
        if scope.empty:
            continue
        best = scope.groupby("label")[metric].mean().idxmax()
        rows.append({"best of": family, "method": best, **mean_ci(scope.loc[scope["label"] == best, metric])})
    return pd.DataFrame(rows)


def selected_variants() -> pd.DataFrame:
    """The outer test scores of every scored :class:`~mtl.reference.selection.VariantSelection`, as chapter rows.

    One row per seed x outer fold whose variant was chosen on inner folds and
    refitted: ``label`` (:data:`SELECTED_LABEL`), ``family`` ("PathNet"),
    ``method``, ``protocol``, ``seed``, ``fold``, ``chosen`` (the variant),
    ``inner_score``, the scores of :data:`METRICS`, ``cell_key`` (the
    refit's) and ``n_inner``; rows of outer folds not yet scored are left
    out. Concatenated to :func:`load_where089`'s frame, the selection is one
    more method of :func:`method_table`, :func:`paired_table` and
    :func:`best_speaker_independent`. Read from :func:`mtl.results.default_search_path`
    (local runs and ``results/real``).
    """
    from mtl.reference.selection import saved_variant_selections

    parts = []
    for selection in saved_variant_selections():
        results = selection.results()
        results = results[results["status"] == "scored"]
        if results.empty:
            continue
        parts.append(results.assign(label=SELECTED_LABEL, family="PathNet", method=selection.method,
                                    n_inner=selection.n_inner, cell_key=results["refit_key"]))
    columns = ["label", "family", "method", "protocol", "seed", "fold", "chosen", "inner_score", *METRICS,
               "cell_key", "n_inner"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]

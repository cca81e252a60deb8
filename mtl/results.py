"""Result records, the paper's reported numbers, and tables that put the two side by side.

:func:`load_records` reads the JSON records (:mod:`mtl.records`) written by
the runner (:mod:`mtl.runner`) into one DataFrame (one row per cell);
:func:`summarise` averages them over folds and seeds; :data:`PAPER_VALUES`
holds Tables 1-4 of the paper exactly as printed; :func:`paper_comparison`
lines the two up, naming for every reproduced number the data it came from
(real or synthetic, which copy), the protocol, the profile, the seeds and the
number of folds.

Where records are searched (:func:`default_search_path`):

* ``results_dir()/runs`` -- records written by runs on this machine;
* ``results_dir()/real`` and ``<project>/results/real`` -- records of runs on
  the real corpora committed to the repository (copy a run's folder there);
* ``<project>/results/default`` -- the committed records of the default
  profile, which the default book shows.

The same cell found twice (same ``cell_key`` and experiment) is read once.
A file that is not JSON, or a record that fails its checks (fields, digest:
:func:`mtl.records.validate_record`), is left out and reported: one warning
naming every such file, and the list in ``frame.attrs["unreadable"]``. JSON
files that are not records (saved selections, notes) are passed over silently.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl.config import RESULT_NEUTRAL_FIELDS, differences_from_defaults
from mtl.corpora.labels import ABBREVIATIONS, paper_order
from mtl.errors import ConfigError
from mtl.io import stable_hash
from mtl.paths import results_dir as _results_dir
from mtl.records import RecordError, committed_folders, upgrade_record, validate_record

log = logging.getLogger(__name__)

__all__ = [
    "default_search_path", "load_records", "summarise", "config_id", "PAPER_VALUES", "paper_values",
    "paper_comparison", "format_mean_sd", "to_markdown", "style_table", "learning_curves_frame", "pooled_confusion",
    "TABLE_EXPERIMENTS", "STAND_INS",
]

# Columns that identify one summarised row.
GROUP_COLUMNS: tuple[str, ...] = ("experiment", "method", "sources", "target", "modality", "classes", "protocol",
                                  "data_kind", "corpus_copy", "profile", "config_id")
METRIC_COLUMNS: tuple[str, ...] = ("accuracy", "uar", "utt_accuracy_mean_prob", "utt_accuracy_vote", "utt_uar")


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def default_search_path() -> list[Path]:
    """``results_dir()/runs``, ``results_dir()/real``, then the committed folders (existing, no duplicates).

    The committed folders are :func:`mtl.records.committed_folders`:
    ``<project>/results/real`` and ``<project>/results/default``.
    """
    candidates = [_results_dir() / "runs", _results_dir() / "real", *committed_folders()]
    out: list[Path] = []
    for path in candidates:
        resolved = path.resolve()
        if resolved.is_dir() and resolved not in out:
            out.append(resolved)
    return out


def _record_files(folders: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            files.append(folder)
        elif folder.is_dir():
            files.extend(p for p in sorted(folder.rglob("*.json")) if not p.name.startswith("."))
    return files


def _data_kind(kinds: dict[str, str]) -> str:
    values = set(kinds.values())
    return values.pop() if len(values) == 1 else "mixed"


def _flatten(record: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """One record as a flat row; the full record stays in the ``record`` column."""
    metrics = record.get("metrics", {})
    utterance = metrics.get("utterance", {})
    config = record.get("config", {})
    kinds = record.get("data", {}).get("kinds", {})
    provenance = record.get("data", {}).get("provenance", {})
    target = record.get("target")
    group = config_id(config)
    row: dict[str, Any] = {
        "experiment": record.get("experiment"),
        "method": record.get("method"),
        "sources": "+".join(record.get("sources", [])),
        "target": target,
        "modality": record.get("modality"),
        "classes": ",".join(record.get("classes", [])),
        "protocol": record.get("protocol"),
        "seed": record.get("seed"),
        "fold": record.get("fold"),
        "n_folds": record.get("n_folds"),
        "data_kind": _data_kind(kinds) if kinds else None,
        "target_data_kind": kinds.get(target),
        "corpus_copy": provenance.get(target, {}).get("copy"),
        "content_hash": provenance.get(target, {}).get("content_hash"),
        "profile": config.get("profile"),
        "config_id": group,
        "generations": config.get("generations"),
        "accuracy": metrics.get("accuracy"),
        "uar": metrics.get("uar"),
        "utt_accuracy_mean_prob": utterance.get("mean_prob", {}).get("accuracy"),
        "utt_accuracy_vote": utterance.get("vote", {}).get("accuracy"),
        "utt_uar": utterance.get("mean_prob", {}).get("uar"),
        "n_test": record.get("n_test"),
        "target_seconds": record.get("timings", {}).get("target_seconds"),
        "cell_key": record.get("cell_key"),
        "created": record.get("created"),
        "file": str(path) if path else None,
        "record": record,
    }
    for name, value in metrics.get("per_class", {}).items():
        row[f"acc_{name}"] = _number(value)
    return row


def config_id(config: dict[str, Any]) -> str:
    """Hash of the configuration that a group of folds and seeds shares.

    Only the fields that differ from the paper's defaults enter, the seed and
    :data:`mtl.config.RESULT_NEUTRAL_FIELDS` left out: a field added to
    :class:`~mtl.config.Config` later, at its default, keeps old and new
    records of the same settings in one group (as it keeps their cell keys).
    """
    shared = differences_from_defaults(config, RESULT_NEUTRAL_FIELDS | {"seed"})
    return stable_hash(shared, length=8) if config else ""


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def load_records(results_dir: str | Path | Sequence[str | Path] | None = None, experiment: str | None = None,
                 **filters: Any) -> pd.DataFrame:
    """Every result record found, one row per cell.

    Parameters
    ----------
    results_dir : folder, list of folders, or None
        Where to look (recursively, ``*.json``); default
        :func:`default_search_path`.
    experiment : str, optional
        Keep records of this experiment only.
    **filters
        ``column=value`` (or ``column=[values]``) on the row columns, e.g.
        ``method="transfer"``, ``protocol=["paper", "speaker"]``,
        ``data_kind="real"``.

    Returns
    -------
    DataFrame
        Columns: experiment method sources ("enterface+savee", "" for scratch)
        target modality classes protocol seed fold n_folds data_kind
        ("real"/"synthetic"/"mixed") target_data_kind corpus_copy content_hash
        profile config_id generations accuracy uar utt_accuracy_mean_prob
        utt_accuracy_vote utt_uar n_test target_seconds cell_key created
        file record (the full dict) and ``acc_<class>`` per class.
        ``attrs["unreadable"]``: ``[(file, reason), ...]``, the files left out
        because they do not parse or fail their checks (also logged as one warning).
    """
    if results_dir is None:
        folders = default_search_path()
    elif isinstance(results_dir, (str, Path)):
        folders = [Path(results_dir)]
    else:
        folders = [Path(p) for p in results_dir]
    rows, seen, unreadable = [], set(), []
    for path in _record_files(folders):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # truncated, not UTF-8, unreadable
            unreadable.append((str(path), f"not readable JSON ({type(error).__name__}: {error})"))
            continue
        if not (isinstance(content, dict) and "cell_key" in content):  # not a record (notes, saved selections)
            continue
        try:
            record = upgrade_record(validate_record(content))
        except RecordError as error:
            unreadable.append((str(path), str(error)))
            continue
        identity = (record["cell_key"], record.get("experiment"))
        if identity in seen:
            continue
        seen.add(identity)
        rows.append(_flatten(record, path))
    if unreadable:
        log.warning("%d result file(s) left out, unreadable or failing their checks: %s", len(unreadable),
                    "; ".join(f"{path}: {reason}" for path, reason in unreadable))
    frame = _filtered(pd.DataFrame(rows), experiment, filters)
    frame.attrs["unreadable"] = unreadable
    return frame


def _filtered(frame: pd.DataFrame, experiment: str | None, filters: dict[str, Any]) -> pd.DataFrame:
    """The rows of :func:`load_records` that pass its filters, sorted; an empty frame has its main columns."""
    if frame.empty:
        return pd.DataFrame(columns=[*GROUP_COLUMNS, "seed", "fold", *METRIC_COLUMNS, "record"])
    if experiment is not None:
        filters = {"experiment": experiment, **filters}
    for column, value in filters.items():
        if column not in frame.columns:
            raise ConfigError(f"cannot filter on {column!r}: records have no such column "
                              f"(columns: {', '.join(c for c in frame.columns if c != 'record')})")
        if isinstance(value, (list, tuple, set, frozenset)):
            frame = frame[frame[column].isin(list(value))]
        else:
            frame = frame[frame[column] == value]
    return frame.sort_values(["experiment", "target", "method", "sources", "protocol", "seed", "fold"],
                             kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------
def summarise(records: pd.DataFrame | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Mean and sample standard deviation over folds and seeds, per experiment row.

    Groups by :data:`GROUP_COLUMNS` (experiment, method, sources, target,
    modality, classes, protocol, data kind, corpus copy, profile and a hash of
    the configuration), so runs on different data or settings are never
    averaged together. The standard deviation pools folds and seeds (ddof=1;
    NaN for a single record).

    Returns one row per group with ``<metric>_mean`` and ``<metric>_sd`` for
    accuracy, uar, utterance-level scores and every ``acc_<class>``;
    ``n_records``, ``n_folds`` (folds of the protocol), ``seeds`` (list).
    """
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame([_flatten(r, None) for r in records])
    if frame.empty:
        return pd.DataFrame(columns=[*GROUP_COLUMNS, "n_records", "n_folds", "seeds"])
    metrics = [*METRIC_COLUMNS, *sorted(c for c in frame.columns if c.startswith("acc_"))]
    out = []
    for key, group in frame.groupby(list(GROUP_COLUMNS), dropna=False, sort=True):
        row = dict(zip(GROUP_COLUMNS, key))
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").dropna()
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else float("nan")
            row[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        row["n_records"] = int(len(group))
        row["n_folds"] = int(group["n_folds"].max())
        row["folds_done"] = int(group["fold"].nunique())
        row["seeds"] = sorted(int(s) for s in group["seed"].unique())
        out.append(row)
    return pd.DataFrame(out)


def format_mean_sd(mean: float, sd: float, digits: int = 2) -> str:
    """``"0.62 ± 0.03"``; ``"0.62"`` when sd is NaN (one record); ``"—"`` when nothing was run."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


# ---------------------------------------------------------------------------
# the paper's numbers
# ---------------------------------------------------------------------------
def _row(table: str, model: str, method: str, sources: tuple[str, ...], target: str, modality: str,
         overall: float, per_class: dict[str, float] | None = None, note: str = "") -> dict[str, Any]:
    return dict(table=table, model=model, method=method, sources=sources, target=target, modality=modality,
                overall=overall, per_class=per_class or {}, note=note)


_SIX = ("anger", "surprise", "disgust", "fear", "happiness", "sadness")  # the paper's column order

PAPER_VALUES: dict[str, list[dict[str, Any]]] = {
    "table1": [
        _row("table1", "V_eNTER→SAV", "transfer", ("enterface",), "savee", "video", 0.94,
             dict(zip(_SIX, (0.93, 0.94, 0.96, 0.92, 0.94, 0.95)))),
        _row("table1", "V_SAV→eNTER", "transfer", ("savee",), "enterface", "video", 0.94,
             dict(zip(_SIX, (0.96, 0.95, 0.81, 0.96, 0.97, 0.97)))),
    ],
    "table2": [
        _row("table2", "Fine-tuning [46] (trained on visual eNTERFACE)", "finetune", ("enterface",), "savee",
             "video", 0.85),
        _row("table2", "V_SAV", "scratch", (), "savee", "video", 0.89),
        _row("table2", "V_eNTER→SAV", "transfer", ("enterface",), "savee", "video", 0.94),
        _row("table2", "Fine-tuning [46] (trained on visual SAVEE)", "finetune", ("savee",), "enterface",
             "video", 0.88),
        _row("table2", "V_eNTER", "scratch", (), "enterface", "video", 0.88),
        _row("table2", "V_SAV→eNTER", "transfer", ("savee",), "enterface", "video", 0.94),
    ],
    "table3": [
        _row("table3", "A_eNTER→SAV", "transfer", ("enterface",), "savee", "audio", 0.71,
             dict(zip(_SIX, (0.73, 0.70, 0.56, 0.72, 0.80, 0.77)))),
        _row("table3", "A_eNTER+SAV→EMO", "transfer", ("enterface", "savee"), "emodb", "audio", 0.97,
             dict(zip(_SIX, (0.99, 0.99, 1.0, 0.94, 0.94, 0.96))),
             note="the paper prints a surprise column for EMO-DB, which has no surprise class"),
    ],
    "table4": [
        _row("table4", "Fine-tuning [46] (trained on audio eNTERFACE)", "finetune", ("enterface",), "savee",
             "audio", 0.69),
        _row("table4", "A_SAV", "scratch", (), "savee", "audio", 0.81),
        _row("table4", "A_eNTER→SAV", "transfer", ("enterface",), "savee", "audio", 0.85,
             note="Table 3 gives 0.71 for the same model"),
        _row("table4", "Fine-tuning [46] (trained on audio eNTERFACE+SAVEE)", "finetune", ("enterface", "savee"),
             "emodb", "audio", 0.83),
        _row("table4", "A_EMO", "scratch", (), "emodb", "audio", 0.89),
        _row("table4", "A_eNTER+SAV→EMO", "transfer", ("enterface", "savee"), "emodb", "audio", 0.97),
    ],
}
"""Tables 1-4 of Nguyen et al. (2023) as printed. Each row: table, model (the
paper's name), method, sources, target, modality, overall accuracy, per-class
accuracy (Tables 1 and 3 only; canonical class names), note."""

STAND_INS: dict[tuple[tuple[str, ...], str], tuple[tuple[str, ...], str]] = {
    (("enterface", "savee"), "emodb"): (("ravdess",), "real RAVDESS stands in for eNTERFACE+SAVEE"),
}
"""Reproduced sources accepted for a paper row whose own sources are not available as real data."""


def paper_values(table: str | None = None) -> pd.DataFrame:
    """The paper's numbers as a DataFrame: one row per model, ``overall`` and per-class columns."""
    tables = [table] if table is not None else list(PAPER_VALUES)
    rows = []
    for name in tables:
        if name not in PAPER_VALUES:
            raise ConfigError(f"unknown table {name!r}; choose one of {', '.join(PAPER_VALUES)}")
        for entry in PAPER_VALUES[name]:
            row = {k: v for k, v in entry.items() if k != "per_class"}
            row["sources"] = "+".join(entry["sources"])
            row.update(entry["per_class"])
            rows.append(row)
    return pd.DataFrame(rows)


TABLE_EXPERIMENTS: dict[str, tuple[str, ...]] = {
    "table1": ("table1_visual_transfer",),
    "table2": ("table2_visual_baselines",),
    "table3": ("table3_speech_transfer", "real_recordings"),
    "table4": ("table4_speech_baselines", "real_recordings"),
}
"""Experiments whose records :func:`paper_comparison` uses for each table by default."""


def paper_comparison(summary: pd.DataFrame, table: str = "table1", digits: int = 2, stand_ins: bool = True,
                     experiments: Sequence[str] | str | None = None) -> pd.DataFrame:
    """The paper's values beside the reproduced ones, for one table.

    Each paper row is matched to every :func:`summarise` row with the same
    method, sources, target and modality, from the experiments
    ``experiments`` (default :data:`TABLE_EXPERIMENTS` of the table; ``"all"``
    for any experiment). With ``stand_ins``, RAVDESS runs also match
    eNTERFACE+SAVEE -> EMO-DB rows (:data:`STAND_INS`). One output row per
    match (e.g. one per protocol or data kind), or one row marked "not run".
    Then one row per summary row no paper row matched (a run on other
    corpora, or on a corpus of your own), with Model "not in the paper" and
    no paper values; the table's own experiments include their
    ``"<experiment>-custom"`` runs (a chapter run on corpora of your choosing).

    Columns: Model, Method, Sources (used), Target, Modality, then for
    "Overall" and each class of the paper's table "<name> (paper)" (float) and
    "<name> (ours)" ("0.62 ± 0.03", mean ± sd over folds and seeds), "Δ
    overall" (ours - paper), then Data (real/synthetic/mixed), Corpus copy,
    Protocol, Profile, Seeds, Folds (folds done / folds of the protocol),
    Experiment, Note; last, for figures and summaries of the comparison,
    "Overall mean" and "Overall sd" (floats, NaN when not run), "Classes" (the
    run's classes, comma-separated), "Records" (folds x seeds averaged) and
    "Config id" (the :func:`summarise` group's configuration hash).
    """
    if table not in PAPER_VALUES:
        raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(PAPER_VALUES)}")
    entries = PAPER_VALUES[table]
    if experiments is None:
        experiments = TABLE_EXPERIMENTS[table]
    if experiments != "all" and summary is not None and not summary.empty:
        named = [experiments] if isinstance(experiments, str) else list(experiments)
        # a chapter's runs on corpora of the reader's choosing are filed under "<experiment>-custom"
        summary = summary[summary["experiment"].isin(named + [f"{name}-custom" for name in named])]
    class_columns = paper_order({c for e in entries for c in e["per_class"]})
    rows, matched = [], set()
    for entry in entries:
        matches = _matches(summary, entry, stand_ins)
        matched.update(match.name for match, _ in matches)
        rows += [_comparison_row(entry, match, note, class_columns, digits)
                 for match, note in matches or [(None, "not run")]]
    # Runs the paper does not report (other corpora, a corpus of your own): shown after its rows, no paper value.
    for index, match in ([] if summary is None else list(summary.iterrows())):
        if index not in matched:
            entry = {"model": "not in the paper", "method": match["method"], "target": match["target"],
                     "modality": match["modality"], "sources": (), "overall": float("nan"), "per_class": {},
                     "note": "a run the paper does not report"}
            rows.append(_comparison_row(entry, match, "", class_columns, digits))
    return pd.DataFrame(rows)


def _comparison_row(entry: dict[str, Any], match: pd.Series | None, note: str, class_columns: Sequence[str],
                    digits: int) -> dict[str, Any]:
    """One row of :func:`paper_comparison`: a paper ``entry`` beside its ``match`` (None: not run)."""
    row = {"Model": entry["model"], "Method": entry["method"], "Target": entry["target"], "Modality": entry["modality"]}
    row["Sources"] = (match["sources"] if match is not None else "+".join(entry["sources"])) or "—"
    row["Overall (paper)"] = entry["overall"]
    row["Overall (ours)"] = (format_mean_sd(match["accuracy_mean"], match["accuracy_sd"], digits)
                             if match is not None else "—")
    for name in class_columns:
        label = ABBREVIATIONS.get(name, name)
        row[f"{label} (paper)"] = entry["per_class"].get(name, float("nan"))
        if match is not None and f"acc_{name}_mean" in match.index:
            row[f"{label} (ours)"] = format_mean_sd(match[f"acc_{name}_mean"], match[f"acc_{name}_sd"], digits)
        else:
            row[f"{label} (ours)"] = "—"
    row["Δ overall"] = (round(match["accuracy_mean"] - entry["overall"], digits + 1)
                        if match is not None else float("nan"))
    row["Data"] = match["data_kind"] if match is not None else "—"
    row["Corpus copy"] = match["corpus_copy"] if match is not None else "—"
    row["Protocol"] = match["protocol"] if match is not None else "—"
    row["Profile"] = match["profile"] if match is not None else "—"
    row["Seeds"] = ", ".join(map(str, match["seeds"])) if match is not None else "—"
    row["Folds"] = f"{match['folds_done']}/{match['n_folds']}" if match is not None else "—"
    row["Experiment"] = match["experiment"] if match is not None else "—"
    row["Note"] = "; ".join(n for n in (entry["note"], note) if n)
    for column, field, empty in (("Overall mean", "accuracy_mean", float("nan")),
                                 ("Overall sd", "accuracy_sd", float("nan")), ("Classes", "classes", ""),
                                 ("Records", "n_records", 0), ("Config id", "config_id", "")):
        row[column] = match[field] if match is not None else empty
    return row


def _matches(summary: pd.DataFrame, entry: dict[str, Any], stand_ins: bool) -> list[tuple[pd.Series, str]]:
    if summary is None or summary.empty:
        return []
    wanted = {"+".join(sorted(entry["sources"])): ""}
    if stand_ins and (tuple(sorted(entry["sources"])), entry["target"]) in STAND_INS:
        substitute, note = STAND_INS[(tuple(sorted(entry["sources"])), entry["target"])]
        wanted["+".join(sorted(substitute))] = note
    found = summary[(summary["method"] == entry["method"]) & (summary["target"] == entry["target"])
                    & (summary["modality"] == entry["modality"]) & (summary["sources"].isin(list(wanted)))]
    return [(row, wanted[row["sources"]]) for _, row in found.iterrows()]


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------
def to_markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-flavoured markdown table (floats to ``digits`` decimals, NaN as "—")."""
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "—" if pd.isna(v) else f"{v:.{digits}f}")
    shown = shown.fillna("—").astype(str)
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def style_table(frame: pd.DataFrame, digits: int = 2) -> "pd.io.formats.style.Styler":
    """A pandas Styler for notebooks: floats to ``digits`` decimals, NaN as "—", no index,
    and the "(ours)" columns shaded so they stand out beside the paper's."""
    float_columns = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    styler = frame.style.format({c: f"{{:.{digits}f}}" for c in float_columns}, na_rep="—").hide(axis="index")
    ours = [c for c in frame.columns if str(c).endswith("(ours)")]
    if ours:
        styler = styler.set_properties(subset=ours, **{"background-color": "#eef4fb"})
    return styler


def learning_curves_frame(records: pd.DataFrame | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Long table of learning curves: one row per (record, generation) with method, sources, target,
    protocol, seed, fold, generation, best_fitness, val_accuracy."""
    items = records["record"].tolist() if isinstance(records, pd.DataFrame) else list(records)
    rows = []
    for record in items:
        for point in record.get("learning_curve", []):
            rows.append({"experiment": record.get("experiment"), "method": record.get("method"),
                         "sources": "+".join(record.get("sources", [])), "target": record.get("target"),
                         "protocol": record.get("protocol"), "seed": record.get("seed"), "fold": record.get("fold"),
                         "generation": point.get("generation"),
                         "best_fitness": _number(point.get("best_fitness")),
                         "val_accuracy": _number(point.get("val_accuracy"))})
    return pd.DataFrame(rows, columns=["experiment", "method", "sources", "target", "protocol", "seed", "fold",
                                       "generation", "best_fitness", "val_accuracy"])


def pooled_confusion(records: pd.DataFrame | Iterable[dict[str, Any]], level: str = "segment", *,
                     method: str | None = None, target: str | None = None,
                     sources: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Confusion counts summed over records (e.g. every fold of one run), and the class order.

    ``level`` is ``"segment"``, ``"utterance_mean_prob"`` or ``"utterance_vote"``.
    ``method``, ``target`` and ``sources`` (any order; ``()`` for scratch)
    keep only the records of one run. Every record kept must have the same
    classes. Plot with :func:`mtl.plots.confusion_matrix_plot` (the paper's Figs. 7-8).
    """
    items = records["record"].tolist() if isinstance(records, pd.DataFrame) else list(records)
    chosen = [r for r in items if (method is None or r.get("method") == method)
              and (target is None or r.get("target") == target)
              and (sources is None or sorted(r.get("sources", [])) == sorted(sources))]
    if not chosen:
        run = " ".join(str(v) for v in (method, f"{'+'.join(sorted(sources or ()))}->{target}" if target else None)
                       if v)
        raise ConfigError(f"pooled_confusion: no records{f' of {run}' if run else ''} among {len(items)}")
    items = chosen
    if level not in ("segment", "utterance_mean_prob", "utterance_vote"):
        raise ConfigError(f"level must be 'segment', 'utterance_mean_prob' or 'utterance_vote', got {level!r}")
    total, classes = None, None
    for record in items:
        metrics = record["metrics"]
        if level != "segment":
            metrics = metrics["utterance"][level[len("utterance_"):]]
        counts = np.asarray(metrics["confusion"], dtype=np.int64)
        if classes is None:
            total, classes = counts, list(metrics["classes"])
        elif list(metrics["classes"]) != classes:
            raise ConfigError(f"records have different classes: {classes} and {metrics['classes']}")
        else:
            total = total + counts
    return total, classes

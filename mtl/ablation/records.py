"""Finding and loading the ablation's records, with factor columns.

Records of a cell may be local runs (``results_dir()/runs/``) or committed
ones (``results/real/``): :func:`record_index` knows both. Each row of
:func:`load_ablation_records` carries the factors read from the record's
configuration and ``base_id``, a hash of everything else in it, so records
that differ in anything but the factors never mix in a table.
:func:`anchor_records` adds the settings other experiments computed
(``real_recordings``: the paper's G), :func:`records_overview` says what a set
of records was computed with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl.ablation.grid import ABLATION, DEFAULT_SOURCES, TARGET
from mtl.config import RESULT_NEUTRAL_FIELDS, differences_from_defaults
from mtl.corpora import corpus_card
from mtl.io import stable_hash
from mtl.records import usable_record
from mtl.results import default_search_path, load_records

__all__ = ["FACTOR_FIELDS", "ANCHORS", "load_ablation_records", "anchor_records", "with_anchors", "records_overview",
           "record_index", "find_record", "outer_only", "with_factors"]

FACTOR_FIELDS: tuple[str, ...] = ("protocol", "module_type", "training_budget", "generations", "seed")
"""Config fields that are columns of their own in the ablation's tables (the factors, G and the seed)."""
_NOT_IN_BASE_ID = frozenset(FACTOR_FIELDS) | RESULT_NEUTRAL_FIELDS


def with_factors(frame: pd.DataFrame) -> pd.DataFrame:
    """Factor columns from each record's configuration, and an id of everything else in it.

    The id hashes the fields that differ from the paper's defaults (as cell
    keys do), so a record written before a field existed matches one written
    after with that field at its default; the factor fields (their own
    columns) and the result-neutral ones (:data:`mtl.config.RESULT_NEUTRAL_FIELDS`)
    are left out.
    """
    if frame.empty:
        return frame.assign(module_type=[], training_budget=[], inner_fold=[], base_id=[])
    configs = frame["record"].map(lambda r: r.get("config", {}))
    return frame.assign(
        module_type=configs.map(lambda c: c.get("module_type", "linear")),
        training_budget=configs.map(lambda c: c.get("training_budget", "one_pass")),
        inner_fold=frame["record"].map(lambda r: r.get("inner_fold")),
        base_id=configs.map(lambda c: stable_hash(differences_from_defaults(c, _NOT_IN_BASE_ID), length=8)))


def record_index() -> dict[str, Path]:
    """Cell key -> record file, over :func:`mtl.results.default_search_path` (local runs first)."""
    index: dict[str, Path] = {}
    for folder in default_search_path():
        for path in sorted(folder.rglob("*.json")):
            index.setdefault(path.stem, path)
    return index


def find_record(cell: Any, index: Mapping[str, Path] | None) -> Path | None:
    """The record file of ``cell``: its own path, else the one ``index`` (:func:`record_index`) knows.

    Only a usable record counts (:func:`mtl.records.usable_record`): a damaged
    file is reported and passed over, so the cell shows as not done and its
    computation runs again.
    """
    for path in (cell.record_path, (index or {}).get(cell.key)):
        if path is not None and usable_record(path) is not None:
            return path
    return None


def load_ablation_records(cells: Sequence[Any] | None = None, experiment: str = ABLATION) -> pd.DataFrame:
    """Records of the ablation, one row per cell, with factor columns.

    ``cells`` given: the records of those cells that exist, wherever they are
    (a cell computed for another experiment, or committed under
    ``results/real``, counts too). Otherwise every record of ``experiment``
    under :func:`mtl.results.default_search_path` (local runs and committed
    real-data runs), whatever its profile. Columns are
    :func:`mtl.results.load_records`'s plus ``module_type``,
    ``training_budget``, ``inner_fold`` and ``base_id`` (a hash of the rest of
    the configuration, so rows that differ in anything else stay apart).
    """
    if cells is None:
        return with_factors(load_records(experiment=experiment))
    index = record_index()
    paths = [path for path in (find_record(cell, index) for cell in cells) if path is not None]
    frame = load_records(paths) if paths else load_records([])
    return with_factors(frame.drop_duplicates("cell_key").reset_index(drop=True) if not frame.empty else frame)


def records_overview(records: pd.DataFrame) -> pd.DataFrame:
    """What a set of records was computed with: one row per experiment x setting x method.

    Columns: ``experiment``, ``protocol``, ``module_type``,
    ``training_budget``, ``generations``, ``method``, ``stage`` (``outer``
    or ``inner`` for nested-selection runs), ``runs``, ``folds`` (outer
    folds present), ``seeds``, ``data`` (real or synthetic, and a digest of the corpus copy), ``commit`` (of the
    code, ``+dirty`` for uncommitted changes) and ``cpu_minutes`` (target
    training, one thread; source models not included).
    """
    columns = ["experiment", "protocol", "module_type", "training_budget", "generations", "method", "stage", "runs",
               "folds", "seeds", "data", "commit", "cpu_minutes"]
    if records is None or records.empty:
        return pd.DataFrame(columns=columns)

    def commit(record: Mapping[str, Any]) -> str:
        code = record.get("code") or {}
        return f"{(code.get('commit') or 'unknown')[:7]}{'+dirty' if code.get('dirty') else ''}"

    frame = records.assign(stage=np.where(records["inner_fold"].isna(), "outer", "inner"),
                           commit=records["record"].map(commit))
    rows = []
    keys = ["experiment", "protocol", "module_type", "training_budget", "generations", "method", "stage"]
    for key, group in frame.groupby(keys, sort=False, dropna=False):
        rows.append(dict(zip(keys, key), runs=int(len(group)), folds=int(group["fold"].nunique()),
                         seeds=", ".join(map(str, sorted(group["seed"].unique()))),
                         data=", ".join(sorted({f"{kind} (content {str(digest)[:8]})" for kind, digest in
                                                zip(group["data_kind"], group["content_hash"])})),
                         commit=", ".join(sorted(group["commit"].unique())),
                         cpu_minutes=float(pd.to_numeric(group["target_seconds"], errors="coerce").sum() / 60)))
    return pd.DataFrame(rows, columns=columns)


ANCHORS: tuple[str, ...] = ("real_recordings",)
"""Experiments whose EMO-DB scratch and RAVDESS-transfer records are ablation settings too
(``real_recordings``: linear modules, one pass, the paper's G = 200)."""


def anchor_records(experiments: Sequence[str] = ANCHORS, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Records of other experiments that are settings of the ablation, with factor columns.

    Kept: EMO-DB targets with all 7 classes, from scratch or transferred
    from RAVDESS alone -- the same cells as the grid's, computed elsewhere
    (e.g. at another G) -- at ``seeds`` (None: every seed; :func:`with_anchors`
    takes the grid's). Columns as :func:`load_ablation_records`.
    """
    frame = load_records(experiment=list(experiments)) if experiments else load_records([])
    if frame.empty:
        return with_factors(frame)
    keep = ((frame["target"] == TARGET) & frame["method"].isin(["scratch", "transfer"])
            & frame["sources"].isin(["", "+".join(DEFAULT_SOURCES)])
            & (frame["classes"] == ",".join(corpus_card(TARGET).classes)))
    if seeds is not None:
        keep &= frame["seed"].isin(list(seeds))
    return with_factors(frame[keep].reset_index(drop=True))


def with_anchors(own: pd.DataFrame, experiments: Sequence[str] = ANCHORS) -> pd.DataFrame:
    """The ablation's records ``own`` (:func:`load_ablation_records`) and :func:`anchor_records` at their seeds.

    The anchors' experiments ran more seeds than the grid; G's effect should
    compare like runs. With no record of its own, the anchors of every seed.
    """
    anchors = anchor_records(experiments, seeds=sorted(set(own["seed"])) if not own.empty else None)
    frames = [frame for frame in (own, anchors) if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else own


def outer_only(records: pd.DataFrame | None) -> pd.DataFrame:
    """``records`` without the nested selections' inner-fold rows (an empty frame for None)."""
    frame = records if records is not None else pd.DataFrame()
    return frame[frame["inner_fold"].isna()] if not frame.empty and "inner_fold" in frame else frame



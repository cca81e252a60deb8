"""Action-unit occurrence labels of a face corpus, beside its emotion labels.

:func:`load_au_faces` reads a corpus's face crops through
:func:`mtl.datasets.load_dataset` (the feature cache, unchanged: no pixel
and no cache key moves) and gives every crop the binary occurrence of each
action unit (AU), from one of two places:

* columns of the corpus table named ``AU<number>`` (case-insensitive) -- a
  corpus card's ``attributes`` (see :mod:`mtl.corpora.cards`) -- holding 0,
  1 or nothing (unknown); anything else is a
  :class:`~mtl.errors.BadInputError` naming the card's corpus and the value;
* else ``au_labels.csv`` at the corpus root, which :mod:`mtl.synthetic`
  writes beside every generated video corpus: the intensity in [0, 1] of every
  AU in every frame (``path`` relative to the root, ``frame``, one column per
  AU). A crop's AU *occurs* when the intensity of its frame reaches
  ``threshold`` (default :data:`DEFAULT_THRESHOLD`).

A crop whose frame is not in the table gets NaN (unknown) for every AU;
a corpus with neither source is an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mtl.config import Config
from mtl.datasets import corpus_root, load_dataset, resolve_data_kind
from mtl.errors import BadInputError, ConfigError

__all__ = ["AU_TABLE", "DEFAULT_THRESHOLD", "AuFaces", "au_occurrence", "check_same_aus", "load_au_faces"]

AU_TABLE = "au_labels.csv"
"""The per-frame AU intensities beside a synthetic corpus (:data:`mtl.synthetic.corpora.AU_LABELS`)."""
DEFAULT_THRESHOLD = 0.3
"""Intensity from which an AU counts as occurring: above the synthetic faces' leaks (at most
0.2, :data:`mtl.synthetic.faces.LEAK_MAX`), below their weakest apex (0.35 x 0.65)."""
_AU_COLUMN = re.compile(r"^au(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class AuFaces:
    """Face crops of one corpus with their emotion and AU labels."""

    features: Any
    """The :class:`~mtl.features.cache.FeatureSet` (``X``, ``samples``)."""
    au: np.ndarray
    """float32 ``(n, n_aus)``: 1 occurs, 0 does not, NaN unknown."""
    au_names: list[str]
    provenance: dict[str, Any]
    """:func:`mtl.datasets.load_dataset`'s provenance, plus ``au_source`` and ``au_threshold``."""


def _table_columns(samples: pd.DataFrame) -> list[str]:
    columns = [c for c in samples.columns if _AU_COLUMN.match(str(c))]
    return sorted(columns, key=lambda c: int(_AU_COLUMN.match(str(c)).group(1)))


def au_occurrence(samples: pd.DataFrame, root: str | Path, threshold: float = DEFAULT_THRESHOLD
                  ) -> tuple[np.ndarray, list[str], str]:
    """``(au, au_names, source)``: the AU occurrence of every sample (module docstring).

    ``source`` is ``"table columns"`` or the AU table's name.
    """
    if not 0.0 < float(threshold) <= 1.0:
        raise ConfigError(f"AU threshold must be in (0, 1], got {threshold!r}")
    root = Path(root)
    columns = _table_columns(samples)
    if columns:
        raw = samples[columns]
        values = raw.apply(pd.to_numeric, errors="coerce")
        blank = raw.isna() | raw.apply(lambda column: column.astype(str).str.strip() == "")
        unusable = (values.isna() & ~blank) | (values.notna() & ~values.isin([0, 1]))
        if unusable.to_numpy().any():
            row, column = np.argwhere(unusable.to_numpy())[0]
            raise BadInputError(samples["path"].iloc[row], f"{columns[column]} is {str(raw.iloc[row, column])!r}; "
                                "AU columns must hold 0 (absent), 1 (present) or nothing (unknown)")
        return values.to_numpy(np.float32), [str(c).upper() for c in columns], "table columns"
    table_path = root / AU_TABLE
    if not table_path.is_file():
        raise BadInputError(root, f"no AU labels: the corpus table has no AU<number> columns and there is no "
                                  f"{AU_TABLE} (a synthetic video corpus writes one)")
    table = pd.read_csv(table_path)
    names = [c for c in table.columns if _AU_COLUMN.match(str(c))]
    if not {"path", "frame"} <= set(table.columns) or not names:
        raise BadInputError(table_path, "expected the columns path, frame and AU<number>...")
    intensity = table[names].to_numpy(np.float32)
    if not np.all(np.isfinite(intensity)) or intensity.min() < 0 or intensity.max() > 1:
        raise BadInputError(table_path, "AU intensities must be numbers in [0, 1]")
    lookup = pd.Series(np.arange(len(table)), index=pd.MultiIndex.from_arrays(
        [table["path"].astype(str), table["frame"].astype(int)]))
    # Both sides resolved: the cache may be reached through a symbolic link on one side only.
    resolved = root.resolve()
    relative = [Path(os.path.relpath(Path(p).resolve(), resolved)).as_posix() for p in samples["path"]]
    where = lookup.reindex(pd.MultiIndex.from_arrays([relative, samples["frame"].astype(int)])).to_numpy()
    found = ~np.isnan(where)
    if len(samples) and not found.any():
        raise BadInputError(table_path, f"lists none of the corpus's {len(samples)} face crops (first: "
                                        f"{relative[0]}, frame {int(samples['frame'].iloc[0])})")
    au = np.full((len(samples), len(names)), np.nan, dtype=np.float32)
    au[found] = (intensity[where[found].astype(int)] >= threshold).astype(np.float32)
    return au, names, AU_TABLE


def check_same_aus(au_names: Mapping[str, Sequence[str]]) -> list[str]:
    """The AU list every corpus shares; :class:`~mtl.errors.ConfigError` when two corpora's lists differ."""
    items = list(au_names.items())
    first_corpus, first = items[0]
    for corpus, names in items[1:]:
        if list(names) != list(first):
            only_first, only_other = sorted(set(first) - set(names)), sorted(set(names) - set(first))
            order = "; same AUs in another order" if set(first) == set(names) else ""
            raise ConfigError(
                f"the AU lists of {first_corpus} and {corpus} differ ({first_corpus} only: {only_first or 'none'}; "
                f"{corpus} only: {only_other or 'none'}{order}); one AU head needs one list: give both corpora "
                "the same AU columns")
    return list(first)


def load_au_faces(corpus: str, config: Config, classes: Iterable[str] | None = None, data: str = "auto",
                  threshold: float = DEFAULT_THRESHOLD, progress: bool = False) -> AuFaces:
    """The face crops of ``corpus`` (video) with their AU occurrence labels.

    Parameters as :func:`mtl.datasets.load_dataset` (``modality="video"``),
    plus ``threshold``, the intensity from which an AU occurs.
    """
    features, provenance = load_dataset(corpus, "video", config, classes, data=data, progress=progress)
    root = corpus_root(corpus, resolve_data_kind(corpus, data), config)
    au, names, source = au_occurrence(features.samples, root, threshold)
    return AuFaces(features, au, names, {**provenance, "au_source": source, "au_threshold": float(threshold)})

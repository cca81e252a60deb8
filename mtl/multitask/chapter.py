"""The chapter "A related method": its plan, and the tables it shows from the records.

:func:`plan_related` checks the notebook's parameters and lists the cells:
for every direction (auxiliary corpus -> target corpus, by default
eNTERFACE's AUs with SAVEE's emotions, and the reverse), protocol, seed and
fold, the three :class:`~mtl.multitask.experiment.MultiTaskCell` methods and
the PathNet transfer cell of the same folds. :meth:`RelatedPlan.run` computes
the multi-task cells (or reads their records) and *reads* the PathNet ones:
they belong to Tables 1 and 2 (committed for the default profile, computed by
those chapters or ``mtl sweep`` otherwise); only at the ``smoke`` profile,
where a PathNet run takes seconds, are they computed here. Folds run
(:data:`FOLDS_RUN`): the first only at ``classroom`` and ``smoke`` (the
minute's budget), every one of the protocol at ``default`` and ``paper`` (the
speaker protocol gives SAVEE's four speakers four folds). Protocols and seeds
run when the notebook leaves them at None: :data:`PROTOCOLS_RUN` and
:data:`SEEDS_RUN` (the grid whose records are committed for the default
profile).

:func:`sweep_cells` gives ``mtl sweep --experiments related_method`` the
same cells, so the grid runs on all cores, resumably, into the same records.

:func:`results_table`, :func:`per_au_table` and :func:`paired_tests` turn the
records into the chapter's tables, :func:`pathnet_coverage` says which
protocols and seeds the PathNet records read cover; paired tests are
:func:`mtl.ablation.analysis.paired_test` over the (seed, fold) pairs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mtl.ablation.analysis import mean_sd, paired_test
from mtl.cells import parse_run_spec
from mtl.config import DATA_MODES, PROTOCOLS, Config, check_choice, check_seeds, get_profile
from mtl.errors import ConfigError, MissingDataError
from mtl.multitask.experiment import MT_METHODS, MultiTaskCell, make_multitask_cell, training_for
from mtl.experiments import protocol_folds
from mtl.records import read_record, reuse_stored, stored_record
from mtl.runner import run

__all__ = ["DIRECTIONS", "FOLDS_RUN", "METHOD_LABELS", "PROTOCOLS_RUN", "SEEDS_RUN", "RelatedPlan", "plan_related",
           "sweep_cells", "record_rows", "results_table", "per_au_table", "paired_tests", "pathnet_coverage"]

DIRECTIONS: tuple[str, ...] = ("enterface->savee", "savee->enterface")
"""``auxiliary->target``: the AUs of the first corpus, the emotions of the second."""
METHOD_LABELS = {"multitask": "multi-task (emotion + AUs)", "emotion_only": "emotion only",
                 "au_only": "AUs only", "pathnet": "PathNet transfer"}
_THRESHOLD = "au_threshold"
FOLDS_RUN: dict[str, int] = {"smoke": 1, "classroom": 1}
"""How many of the k folds (the first ones) a profile runs; a profile not listed runs all k."""
PROTOCOLS_RUN: dict[str, tuple[str, ...]] = {"smoke": ("paper",), "classroom": ("paper",)}
"""Protocols a profile runs when ``protocol`` is None; a profile not listed runs all three (:data:`PROTOCOLS`)."""
SEEDS_RUN: dict[str, tuple[int, ...]] = {"default": (0, 1, 2)}
"""Seeds a profile runs when ``seeds`` is None; a profile not listed runs its config's seed (0)."""


@dataclass
class RelatedPlan:
    """The chapter's checked parameters and its cells (:func:`plan_related`)."""

    profile: str
    config: Any
    directions: tuple[tuple[str, str], ...]
    protocols: tuple[str, ...]
    seeds: tuple[int, ...]
    folds: tuple[int, ...]
    training: dict[str, Any]
    au_threshold: float
    cells: list[MultiTaskCell]

    def settings(self) -> pd.DataFrame:
        """The run's settings as a two-column table."""
        rows = [("profile", self.profile),
                ("runs", "; ".join(f"{t} emotions + {a} AUs (its emotions withheld)" for a, t in self.directions)),
                ("data", "; ".join(sorted({f"{c}: {k}" for cell in self.cells for c, k in cell.data}))),
                ("protocol", ", ".join(self.protocols)),
                ("folds", f"{self.config.folds}-fold (speaker protocol: at most one fold per speaker); folds run: "
                          f"{', '.join(map(str, self.folds))}"),
                ("seeds", ", ".join(map(str, self.seeds))),
                ("network", f"residual CNN, width {self.training['width']}, blocks {list(self.training['blocks'])}"),
                ("training", f"{self.training['steps']} SGD steps of {self.config.batch_size} crops; at most "
                             f"{self.training['aux_samples']} auxiliary crops"),
                ("AU occurrence", f"intensity >= {self.au_threshold}"),
                ("cells", f"{len(self.cells)} multi-task cells (3 methods) + {len(self.cells) // 3} PathNet cells")]
        return pd.DataFrame(rows, columns=["setting", "value"])

    def _repr_html_(self) -> str:
        return self.settings().to_html(index=False, border=0, classes="mtl-settings")

    def __repr__(self) -> str:
        return self.settings().to_string(index=False)

    def run(self, progress: bool = False) -> pd.DataFrame:
        """Every multi-task record (computed or read) and every stored PathNet record, as :func:`record_rows`."""
        records = [run(cell, progress) for cell in self.cells]
        for cell in self.cells[::3]:  # one PathNet cell per direction, protocol, seed and fold
            found = run(cell.pathnet, progress) if self.profile == "smoke" else reuse_stored(cell.pathnet)
            if found is not None:
                records.append(found)
        return record_rows(records)


def plan_related(profile: str = "default", corpora: Sequence[str] | str | None = None, data: str | None = None,
                 data_root: str | Path | None = None, seeds: Sequence[int] | int | None = None,
                 folds: int | None = None, protocol: str | Sequence[str] | None = None,
                 batch_size: int | None = None, overrides: dict[str, Any] | None = None) -> RelatedPlan:
    """Check the chapter's parameters (each may be None: the profile's) and list its cells.

    ``corpora``: ``"auxiliary->target"`` runs (default :data:`DIRECTIONS`).
    ``overrides``: settings of the network and its training (keys of
    :data:`mtl.multitask.experiment.TRAINING`, e.g. ``{"steps": 600}``) and
    ``au_threshold``. The rest as in :func:`mtl.chapters.plan_notebook`.
    """
    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if not root.is_dir():
            raise MissingDataError(f"data_root {str(data_root)!r} does not exist (resolved to {root})")
        os.environ["MTL_DATA_ROOT"] = str(root)
    config = get_profile(profile, **{k: v for k, v in (("folds", folds), ("batch_size", batch_size)) if v is not None})
    data = check_choice(data or "auto", DATA_MODES, "data mode")
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or PROTOCOLS_RUN.get(profile, PROTOCOLS))
    for name in protocols:
        check_choice(name, PROTOCOLS, "protocol")
    seeds = check_seeds(SEEDS_RUN.get(profile, config.seed) if seeds is None else seeds)
    directions = []
    for text in ([corpora] if isinstance(corpora, str) else list(corpora or DIRECTIONS)):
        spec = parse_run_spec(text)
        if len(spec.sources) != 1:
            raise ConfigError(f"corpora: {text!r} must be one 'auxiliary->target' pair (AUs of the first corpus, "
                              "emotions of the second)")
        directions.append((spec.sources[0], spec.target))
    training = training_for(profile)
    extra = dict(overrides or {})
    threshold = float(extra.pop(_THRESHOLD, 0.3))
    unknown = sorted(set(extra) - set(training))
    if unknown:
        raise ConfigError(f"overrides: unknown setting(s) {', '.join(unknown)}; the settings are "
                          f"{', '.join([*training, _THRESHOLD])}")
    training.update(extra)
    wanted = min(FOLDS_RUN.get(profile, config.folds), config.folds)
    cells = []
    for auxiliary, target in directions:
        for name in protocols:
            for seed in seeds:
                first = [make_multitask_cell(method, target, auxiliary, config, protocol=name, seed=seed, fold=0,
                                             data=data, training=training, au_threshold=threshold)
                         for method in MT_METHODS]
                for fold in range(min(wanted, _fold_count(first[0]))):
                    cells += [dataclasses.replace(cell, pathnet=dataclasses.replace(cell.pathnet, fold=fold))
                              for cell in first]
    fold_list = tuple(sorted({cell.fold for cell in cells}))
    return RelatedPlan(profile, config, tuple(directions), protocols, seeds, fold_list, training, threshold, cells)


def _fold_count(cell: MultiTaskCell) -> int:
    """Folds ``cell``'s protocol gives its target: k, or for the speaker protocol at most the speakers.

    Counting speakers loads the target's features, so a stored record of the
    cell (or of its PathNet cell), which knows the count, is read first: the
    book's committed records then need no data at all.
    """
    if cell.protocol != "speaker":
        return cell.config.folds
    for candidate in (cell, cell.pathnet):
        path = stored_record(candidate)
        if path is not None:
            return int(read_record(path)["n_folds"])
    return protocol_folds(cell.pathnet)


def sweep_cells(profile: str = "default", protocols: Sequence[str] | None = None,
                seeds: Sequence[int] | None = None, folds: Sequence[int] | None = None, data: str | None = None,
                corpora: Sequence[str] | None = None, parameters: dict[str, Any] | None = None) -> list[MultiTaskCell]:
    """The cells of ``mtl sweep --experiments related_method``: :func:`plan_related`'s, the same records.

    ``folds`` are fold *indices* (the sweep's ``--folds``), None for the
    profile's; ``parameters`` (``-p NAME VALUE``) may set the chapter's
    ``folds`` (k) and ``batch_size`` and the settings of its ``overrides``
    (e.g. ``steps``, ``au_threshold``); other Config fields are not settings
    of this experiment and are an error.
    """
    parameters = dict(parameters or {})
    k, batch_size = parameters.pop("folds", None), parameters.pop("batch_size", None)
    allowed = {*training_for(profile), _THRESHOLD}
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise ConfigError(f"related_method: unknown parameter(s) {', '.join(unknown)}; it takes folds, batch_size "
                          f"and {', '.join(sorted(allowed))}")
    plan = plan_related(profile, corpora=list(corpora) if corpora else None, data=data, seeds=seeds,
                        folds=k, protocol=list(protocols) if protocols else None, batch_size=batch_size,
                        overrides=parameters or None)
    if folds is None:
        return plan.cells
    missing = sorted(set(folds) - {cell.fold for cell in plan.cells})
    if missing:
        raise ConfigError(f"related_method: fold(s) {missing} are not among the folds the {profile} profile plans "
                          f"({', '.join(map(str, plan.folds))})")
    return [cell for cell in plan.cells if cell.fold in set(folds)]


def record_rows(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: direction, method, protocol, seed, fold and the scores (NaN where a method has none)."""
    rows = []
    for record in records:
        metrics = record["metrics"]
        pathnet = "auxiliary" not in record
        auxiliary = record["sources"][0] if pathnet else record["auxiliary"]["corpus"]
        compound = metrics.get("compound", {})
        au = metrics.get("au", {})
        rows.append({
            "direction": f"{auxiliary}->{record['target']}", "target": record["target"], "auxiliary": auxiliary,
            "method": "pathnet" if pathnet else record["method"], "protocol": record["protocol"],
            "seed": record["seed"], "fold": record["fold"],
            "accuracy": _number(metrics.get("accuracy")), "uar": _number(metrics.get("uar")),
            "au_f1": _number(au.get("mean_f1")), "compound_au": _number(compound.get("accuracy_au")),
            "compound_au_emotion": _number(compound.get("accuracy_au_emotion")),
            "compound_chance": _number(compound.get("chance")),
            "f1": au.get("f1", {}), "seconds": _number(record["timings"].get("target_seconds")),
            "sgd_steps": _sgd_steps(record),
        })
    return pd.DataFrame(rows)


def _sgd_steps(record: dict[str, Any]) -> int:
    """SGD steps of the run's target training: the multi-task settings', or PathNet's G x K x T."""
    if "training" in record:
        return int(record["training"]["steps"])
    config = Config.from_dict(record["config"])
    return config.generations * config.tournament * config.steps_for(int(record["n_train"]))


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")


_SCORES = {"accuracy": "emotion accuracy", "uar": "emotion UAR", "au_f1": "AU mean F1 (target)",
           "compound_au": "compound acc. (AUs)", "compound_au_emotion": "compound acc. (AUs + emotion)"}


def results_table(rows: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Mean ± sd over seeds and folds per direction, protocol and method ("–" where a method has no such score),
    and the median SGD steps of a run's target training."""
    out = []
    for (direction, protocol, method), group in rows.groupby(["direction", "protocol", "method"], sort=False):
        entry = {"run (AUs->emotions)": direction, "protocol": protocol, "method": METHOD_LABELS[method]}
        for column, label in _SCORES.items():
            mean, sd, n = mean_sd(group[column])
            entry[label] = "–" if n == 0 else f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if n > 1 else "")
        entry["SGD steps"] = int(group["sgd_steps"].median())
        entry["runs"] = len(group)
        out.append(entry)
    return pd.DataFrame(out)


def per_au_table(rows: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Mean F1 of every AU on the target's held-out crops, per direction and method (multi-task and AUs only)."""
    kept = rows[rows["method"].isin(["multitask", "au_only"])]
    table = {}
    for (direction, method), group in kept.groupby(["direction", "method"], sort=False):
        frame = pd.DataFrame(list(group["f1"]))
        table[(direction, METHOD_LABELS[method])] = frame.mean(axis=0).round(digits)
    if not table:
        return pd.DataFrame()
    order = list(dict.fromkeys(name for column in table.values() for name in column.index))  # the AUs' own order
    return pd.DataFrame(table).T[order]


def paired_tests(rows: pd.DataFrame) -> pd.DataFrame:
    """Multi-task against each baseline on the same (seed, fold) pairs: the mean difference and two p-values.

    Per direction and protocol: emotion accuracy and UAR against emotion-only
    training and against PathNet transfer; mean AU F1 against AU-only
    training. A baseline without records there (PathNet at a protocol or seed
    Table 1 has not run) gives a row with 0 pairs, so that the gap shows.
    """
    contrasts = (("accuracy", "emotion_only"), ("accuracy", "pathnet"), ("uar", "emotion_only"),
                 ("uar", "pathnet"), ("au_f1", "au_only"))
    out = []
    for (direction, protocol), group in rows.groupby(["direction", "protocol"], sort=False):
        indexed = group.set_index(["method", "seed", "fold"])
        methods = set(group["method"])
        for score, baseline in contrasts:
            if {baseline, "multitask"} <= methods:
                pairs = pd.concat([indexed.loc[baseline][score].rename("a"),
                                   indexed.loc["multitask"][score].rename("b")], axis=1, join="inner").dropna()
                test = paired_test(pairs["a"], pairs["b"])
                seeds = pairs.index.get_level_values("seed")
            else:
                test, seeds = {"n": 0, "mean_difference": float("nan"), "t_p": float("nan"),
                               "wilcoxon_p": float("nan")}, []
            out.append({"run (AUs->emotions)": direction, "protocol": protocol, "score": _SCORES[score],
                        "multi-task against": METHOD_LABELS[baseline], "pairs": test["n"],
                        "seeds": _seeds_text(seeds),
                        "mean difference": round(test["mean_difference"], 3), "t-test p": _p(test["t_p"]),
                        "Wilcoxon p": _p(test["wilcoxon_p"])})
    return pd.DataFrame(out)


def pathnet_coverage(rows: pd.DataFrame) -> pd.DataFrame:
    """Which (direction, protocol) has PathNet transfer records, at which seeds, against the multi-task runs.

    One row per direction and protocol of the records in ``rows``
    (:func:`record_rows`): the seeds and number of PathNet runs read there
    ("–" and 0 where there are none) and of multi-task runs, so that the
    share of the multi-task grid a comparison with PathNet can pair shows.
    """
    out = []
    for (direction, protocol), group in rows.groupby(["direction", "protocol"], sort=False):
        pathnet, multitask = group[group["method"] == "pathnet"], group[group["method"] == "multitask"]
        out.append({"run (AUs->emotions)": direction, "protocol": protocol,
                    "PathNet seeds": _seeds_text(pathnet["seed"]), "PathNet runs": len(pathnet),
                    "multi-task seeds": _seeds_text(multitask["seed"]), "multi-task runs": len(multitask)})
    return pd.DataFrame(out)


def _seeds_text(seeds: Any) -> str:
    """Seeds as the chapter's tables show them: "0, 1, 2" (sorted, each once), "–" for none."""
    return ", ".join(map(str, sorted(set(seeds)))) or "–"


def _p(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.3f}"

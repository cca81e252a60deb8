"""What the notebooks call, so that they stay narrative over library calls.

* :func:`plan_notebook` -- the cell right after ``parameters``: checks every
  parameter (unknown corpus or protocol, corpora without a shared class, a
  missing data root stop the notebook there, saying why) and resolves them
  into a :class:`NotebookPlan` whose display is the run's settings table and
  whose :meth:`NotebookPlan.run` computes (or loads) the experiment's records;
* :func:`compare_with_paper` -- the paper's numbers beside the reproduced ones
  (:mod:`mtl.comparison`: the key figure, the "what this shows" box, the tables);
* :func:`log_each_message_once` -- a chapter says a repeated warning once;
* :func:`committed_real_records` -- the real-data records committed under
  ``results/real`` (or a plain statement that there are none);
* :func:`learning_curve_finding`, :func:`pathway_finding` -- the "what this
  shows" boxes of the convergence and pathway chapters;
* :func:`corpus_tables`, :func:`corpus_overview` -- the data chapter's corpora;

The figures the chapters draw are in :mod:`mtl.plots`; executing a notebook is
:mod:`mtl.notebooks`' work and building the book :mod:`mtl.book`'s; the
ablation chapter's views are :class:`mtl.ablation.AblationPlan`'s.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mtl.cells import RunSpec, parse_run_spec, resolve_classes
from mtl.config import DATA_MODES, MODALITIES, PAPER, PAPER_SYMBOLS, PROTOCOLS, check_choice, check_seeds, get_profile
from mtl.corpora import CORPORA, corpus_card, load_corpus, resolve_corpus
from mtl.datasets import corpus_root, resolve_data_kind
from mtl.errors import ConfigError, MissingDataError
from mtl.experiments import EXPERIMENTS, experiment_cells
from mtl.paths import data_root as current_data_root
from mtl.paths import portable_path, project_root
from mtl.comparison import Finding, compare_with_paper
from mtl.plots import learning_curves
from mtl.results import learning_curves_frame, load_records, to_markdown
from mtl.sweep import computed_records


# ----------------------------------------------------------------------------
# a chapter says each warning once
# ----------------------------------------------------------------------------
class _EachMessageOnce(logging.Filter):
    """Lets a log message through the first time only (the same text from the same logger is dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def log_each_message_once() -> logging.Handler | None:
    """Print the package's warnings as a chapter's kernel would, but each distinct message once.

    A chapter loads the same corpus for every fold and method, and the
    loader's "3 file(s) missing ..." would be printed each time. Where logging
    is not configured (a notebook kernel: the message would go to stderr via
    :data:`logging.lastResort`), this installs one stderr handler on the
    ``mtl`` logger, at WARNING and with the message alone, that drops repeats;
    called again it changes nothing. Where the root logger has handlers (an
    application or pytest configured logging) it leaves logging alone and
    returns None. Called by :func:`plan_notebook` and :func:`committed_real_records`.
    """
    logger = logging.getLogger("mtl")
    for handler in logger.handlers:
        if any(isinstance(f, _EachMessageOnce) for f in handler.filters):
            return handler
    if logging.getLogger().handlers:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))  # as logging.lastResort prints it
    handler.addFilter(_EachMessageOnce())
    logger.addHandler(handler)
    return handler


# ----------------------------------------------------------------------------
# a notebook's parameters, checked and resolved (the cell after `parameters`)
# ----------------------------------------------------------------------------
def _pair_text(sources: Sequence[str], target: str) -> str:
    return str(RunSpec(target, tuple(sources) or None))


@dataclass
class NotebookPlan:
    """A notebook's parameters after checking: the configuration, the data and (for experiments) the cells.

    Built by :func:`plan_notebook`; displayed in a notebook, it shows the
    settings of the run as a small table. :meth:`run` computes (or loads from
    the record cache) every cell and returns the records.
    """

    experiment: str | None
    paper_ref: str
    profile: str
    config: Any
    seeds: tuple[int, ...]
    protocols: tuple[str, ...]
    modality: str | None
    corpora: tuple[str, ...]
    pairs: tuple[tuple[tuple[str, ...], str], ...]
    data: str
    data_root: Path
    data_kinds: dict[str, str]
    cells: list[Any]

    def settings(self) -> "Any":
        """The run's settings as a two-column DataFrame (what, value)."""
        import pandas as pd


        config = self.config
        rows: list[tuple[str, str]] = []
        if self.experiment:
            rows.append(("experiment", f"{self.experiment} ({self.paper_ref})"))
        rows.append(("profile", self.profile))
        if self.pairs:
            methods = sorted({c.method for c in self.cells}) if self.cells else []
            rows.append(("runs", "; ".join(_pair_text(s, t) for s, t in self.pairs)
                         + (f" — methods: {', '.join(methods)}" if methods else "")))
        if self.modality:
            rows.append(("modality", self.modality))
        if self.data_kinds:
            rows.append(("data", "; ".join(f"{c}: {k}" for c, k in self.data_kinds.items())))
        shown = portable_path(self.data_root)
        where = shown if shown.startswith(("$", "…")) else f"{shown}/ in the project"
        rows.append(("data root", where + ("" if self.data_root.is_dir() else " (absent)")))
        classes = sorted({", ".join(c.classes) for c in self.cells})
        if classes:
            rows.append(("classes", " | ".join(classes)))
        if self.experiment:
            rows.append(("protocol", ", ".join(self.protocols)))
            folds_run = sorted({c.fold for c in self.cells})
            rows.append(("folds", f"{config.folds}-fold; folds run: {', '.join(map(str, folds_run)) or '-'}"))
        rows.append(("seeds", ", ".join(map(str, self.seeds))))
        symbols = {field: symbol for symbol, field in PAPER_SYMBOLS.items()}
        for name in ("population", "generations", "steps_per_pathway", "lr", "batch_size"):
            value, paper = getattr(config, name), getattr(PAPER, name)
            label = f"{name} ({symbols[name]})" if name in symbols else name
            if name == "steps_per_pathway":
                value = value if value is not None else f"one pass over the training set ({config.training_budget})"
                paper = "one pass over the training set (one_pass)"
            rows.append((label, f"{value}" + ("" if value == paper else f" (paper: {paper})")))
        shown = {"population", "generations", "steps_per_pathway", "lr", "batch_size", "protocol", "folds", "seed"}
        other = {k: v for k, v in config.differences_from_paper().items() if k not in shown}
        if other:
            rows.append(("other differences from the paper",
                         "; ".join(f"{k}={mine!r} (paper {paper!r})" for k, (paper, mine) in other.items())))
        if self.cells:
            rows.append(("cells", f"{len(self.cells)} (method x run x protocol x seed x fold)"))
        return pd.DataFrame(rows, columns=["setting", "value"])

    def _repr_html_(self) -> str:
        return self.settings().to_html(index=False, border=0, classes="mtl-settings")

    def __repr__(self) -> str:
        return self.settings().to_string(index=False)

    def run(self, progress: bool = False) -> list[dict[str, Any]]:
        """Compute every cell (or load its stored record) and return the records, in cell order.

        The missing cells go through :func:`mtl.sweep.computed_records` (the
        way every grid of the package is run): in this process, or on
        ``config.workers`` processes when the profile asks for more than one
        (the classroom profile: two).
        """
        return computed_records(self.cells, progress=progress, workers=self.config.workers)


def plan_notebook(experiment: str | None = None, *, data_root: str | Path | None = None,
                  corpora: Sequence[str] | str | None = None, modality: str | None = None,
                  classes: Sequence[str] | str | None = None, data: str | None = None,
                  profile: str = "default", seeds: Sequence[int] | int | None = None, folds: int | None = None,
                  protocol: str | Sequence[str] | None = None, population: int | None = None,
                  generations: int | None = None, steps_per_pathway: int | None = None, lr: float | None = None,
                  batch_size: int | None = None) -> NotebookPlan:
    """Check a notebook's parameters and resolve them into a :class:`NotebookPlan`.

    Every parameter may be ``None``, meaning the profile's (or the experiment's)
    default. Errors are :class:`~mtl.errors.ConfigError`,
    :class:`~mtl.corpora.labels.LabelError` or
    :class:`~mtl.errors.MissingDataError`, each naming the parameter.

    Parameters
    ----------
    experiment:
        An id of :data:`mtl.experiments.EXPERIMENTS`, or None for notebooks that
        run no experiment (then ``corpora`` are plain corpus names).
    data_root:
        Folder holding the real corpora (``emodb/``, ``ravdess-speech-16k/`` ...);
        it must exist. It becomes ``MTL_DATA_ROOT`` for this process. None: the
        environment's, else ``<project>/data``.
    corpora:
        For an experiment, the ``"source[+source]->target"`` runs to do
        (``["enterface->savee"]``; default: the experiment's own). A pair the
        experiment does not have runs its methods as a custom experiment
        ``<experiment>-custom``. Otherwise, corpus names.
    modality:
        ``"audio"`` or ``"video"``; default the experiment's.
    classes:
        ``"shared"``, ``"target"`` or a list of emotion names; default the experiment's rule.
    data:
        ``"auto"`` (real corpus when present under the data root, else
        synthetic), ``"real"`` or ``"synthetic"``; default the experiment's.
    profile:
        ``smoke``, ``classroom``, ``default`` or ``paper`` (:data:`mtl.config.PROFILES`).
    seeds, folds, protocol:
        Seeds (an int or a list), k of k-fold, protocol(s) (``paper``,
        ``utterance``, ``speaker``).
    population, generations, steps_per_pathway, lr, batch_size:
        The :class:`~mtl.config.Config` fields of those names: pathways in the
        population (the paper's S), tournaments (G), SGD steps per pathway (T;
        None: one pass over the training set), learning rate, mini-batch size.
    """
    log_each_message_once()
    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if not root.is_dir():
            raise MissingDataError(f"data_root {str(data_root)!r} does not exist (resolved to {root}); give the "
                                   "folder that holds the real corpora (emodb/, ravdess-speech-16k/, ...), or "
                                   "None for the default")
        os.environ["MTL_DATA_ROOT"] = str(root)

    overrides = {name: value for name, value in (("population", population), ("generations", generations),
                                                 ("steps_per_pathway", steps_per_pathway), ("lr", lr),
                                                 ("batch_size", batch_size), ("folds", folds))
                 if value is not None}
    config = get_profile(profile, **overrides)
    if seeds is None:
        seeds = (config.seed,)
    seeds = check_seeds(seeds)
    if protocol is not None:
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        for name in protocols:
            check_choice(name, PROTOCOLS, "protocol")
    else:
        protocols = ()
    if modality is not None:
        check_choice(modality, MODALITIES, "modality")
    if data is not None:
        check_choice(data, DATA_MODES, "data mode")
    names = [corpora] if isinstance(corpora, str) else list(corpora or [])

    if experiment is None:
        names = [resolve_corpus(name) for name in names]  # a card, manifest or folder path -> its name
        for name in names:
            corpus_card(name, modality)
        if corpora is None:  # every corpus that exists here (real-only corpora need the data root)
            names = [n for n, info in CORPORA.items() if info.synthetic or
                     (data != "synthetic" and (current_data_root() / info.folder).is_dir())]
            names = [n for n in names if modality is None or modality in CORPORA[n].modalities]
        kinds = {name: resolve_data_kind(name, data or "auto") for name in names}
        return NotebookPlan(None, "", profile, config, seeds, protocols or (config.protocol,), modality,
                            tuple(names), (), data or "auto", current_data_root(), kinds, [])

    if experiment not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    entry = EXPERIMENTS[experiment]
    modality = modality or entry.modality
    data = data or entry.data
    protocols = protocols or entry.protocols
    registry_pairs = list(dict.fromkeys((tuple(sorted(r.sources)), r.target) for r in entry.runs if r.sources))
    specs = [parse_run_spec(n) for n in names]
    pairs = [(spec.sources or (), spec.target) for spec in specs] if names else registry_pairs
    methods = list(dict.fromkeys(r.method for r in entry.runs))
    cells: list[Any] = []
    common = dict(modality=modality, config=config, protocols=protocols, seeds=seeds, data=data)
    for sources, target in pairs:
        for corpus in (*sources, target):
            corpus_card(corpus, modality)
        if (sources, target) in registry_pairs or (not sources and any(r.target == target for r in entry.runs)):
            for method in methods:
                wanted = () if method == "scratch" else sources
                if any(r.method == method and r.target == target and tuple(sorted(r.sources)) == wanted
                       for r in entry.runs):
                    cells += experiment_cells(experiment, method=method, target=target, sources=wanted,
                                                 classes=classes, **common)
            continue
        if not sources:
            raise ConfigError(f"{experiment} has no run with target {target!r}; give a 'source->target' pair")
        rule = classes if classes is not None else "shared"
        target_classes, _ = resolve_classes(target, sources, rule)
        for method in methods:
            cells += experiment_cells(f"{experiment}-custom", method=method, target=target,
                                         sources=() if method == "scratch" else sources,
                                         classes=list(target_classes), folds=entry.folds, **common)
    kinds = {corpus: kind for cell in cells for corpus, kind in cell.data}
    return NotebookPlan(experiment, entry.paper_ref, profile, config, seeds, tuple(protocols), modality,
                        tuple(_pair_text(s, t) for s, t in pairs), tuple(pairs), data, current_data_root(), kinds,
                        cells)


# ----------------------------------------------------------------------------
# records of runs on real recordings, committed to the repository
# ----------------------------------------------------------------------------
@dataclass
class RealRecords:
    """The committed records of runs on real recordings, for the chapter that shows them.

    Displayed in a notebook it says what is there, or plainly that nothing is
    committed yet (and how to commit some); it never invents a number.
    """

    folder: Path
    frame: Any

    @property
    def empty(self) -> bool:
        return self.frame is None or self.frame.empty

    def __repr__(self) -> str:
        return f"RealRecords({portable_path(self.folder)!r}: {0 if self.empty else len(self.frame)} records)"

    def _repr_markdown_(self) -> str:
        if self.empty:
            return (f"**No real-data records are committed yet** (looked in `{portable_path(self.folder)}`), so "
                    "this chapter shows no numbers. To add some, run the `real_recordings` experiment with "
                    "`MTL_DATA_ROOT` pointing at the real corpora, e.g. "
                    "`mtl.experiments.run_experiment(\"real_recordings\", config=mtl.get_profile(\"paper\"))`, "
                    "then copy `results/runs/real_recordings/` to `results/real/` and commit it.")
        frame = self.frame
        groups = (frame.groupby(["experiment", "method", "sources", "target", "protocol", "data_kind"], dropna=False)
                  .agg(records=("cell_key", "size"), seeds=("seed", lambda s: ", ".join(map(str, sorted(set(s))))),
                       profile=("profile", "first"))
                  .reset_index())
        copies = "\n".join(f"* {copy}" for copy in sorted(frame["corpus_copy"].dropna().unique()))
        return (f"**{len(frame)} committed record(s)** of runs on real recordings, from "
                f"`{portable_path(self.folder)}`:\n\n{to_markdown(groups)}\n\nTarget data:\n\n{copies}\n")

    def comparison(self, table: str = "table4") -> Any:  # a Comparison, or a Markdown note
        """The paper's numbers beside these records' (mean ± sd), or a note that there are none."""
        from IPython.display import Markdown

        if self.empty:
            return Markdown(f"*Nothing to compare with the paper's {table.replace('table', 'Table ')}: "
                            "no real-data records are committed yet.*")
        return compare_with_paper(self.frame, table).run_only()

    def learning_curves(self) -> Any:
        """Held-out accuracy against generation (a figure), or None when there are no records."""
        if self.empty:
            from IPython.display import Markdown, display

            display(Markdown("*No learning curves: no real-data records are committed yet.*"))
            return None
        return learning_curves(self.frame, by=lambda record: f"{record['method']} ({record['protocol']} protocol)",
                               title="Real recordings: held-out accuracy of the best pathway")


def committed_real_records(records_dir: str | Path | None = None,
                           experiments: Sequence[str] | None = None) -> RealRecords:
    """Records of runs on real recordings (data ``real`` or ``mixed``) under ``records_dir``.

    Default ``<project>/results/real``, where runs on the real corpora are
    committed. A given ``records_dir`` must exist. ``experiments`` keeps the
    records of those experiments only; None: the paper's experiments
    (:data:`mtl.experiments.EXPERIMENTS`) -- the ablation's records have a
    chapter of their own.
    """
    log_each_message_once()
    if records_dir is not None:
        folder = Path(records_dir).expanduser().resolve()
        if not folder.is_dir():
            raise MissingDataError(f"records_dir {str(records_dir)!r} does not exist (resolved to {folder})")
    else:
        folder = project_root() / "results" / "real"
    frame = load_records(folder) if folder.is_dir() else None
    if frame is not None and not frame.empty:
        wanted = list(EXPERIMENTS) if experiments is None else list(experiments)
        frame = frame[frame["data_kind"].isin(["real", "mixed"]) & frame["experiment"].isin(wanted)]
        frame = frame.reset_index(drop=True)
    return RealRecords(folder, frame)


# ----------------------------------------------------------------------------
# "what this shows" boxes of the chapters that draw no table of the paper
# ----------------------------------------------------------------------------
def learning_curve_finding(records: Any, share: float = 0.9) -> Finding:
    """The convergence chapter's box: each method's final held-out accuracy, and when it got near it.

    For every method, the mean curve over folds and seeds: its last value,
    and the first generation at which it reached ``share`` of that value.
    ``records`` as for :func:`mtl.plots.learning_curves`.
    """
    frame = learning_curves_frame(records).dropna(subset=["val_accuracy"])
    if frame.empty:
        return Finding(["No held-out accuracy was recorded during evolution (eval_every=0, or no records), "
                        "so there are no curves to compare."])
    parts, runs = [], frame.groupby(["method", "seed", "fold"]).ngroups
    for method, group in frame.groupby("method", sort=False):
        curve = group.groupby("generation")["val_accuracy"].mean()
        near = curve.index[curve >= share * curve.iloc[-1]][0]
        parts.append(f"{method} {curve.iloc[-1]:.2f} after generation {curve.index[-1]} "
                     f"({share:.0%} of it by generation {near})")
    points = frame.groupby(["method", "seed", "fold"]).size()
    return Finding([f"Held-out accuracy of the best pathway, mean over folds and seeds: {'; '.join(parts)}.",
                    f"{runs} curves of {_span(points.min(), points.max())} points each."])


def pathway_finding(record: Mapping[str, Any]) -> Finding:
    """The pathway chapter's box: modules of the source's best pathway, of the target's, and what they share."""
    pathways = record.get("pathways") or {}

    def modules(genotype: Any) -> list[set[int]]:
        return [{int(m) for m in layer if int(m) >= 0} for layer in (genotype or [])]

    def per_layer(layers: list[set[int]]) -> str:
        return " + ".join(str(len(layer)) for layer in layers)

    source, target = pathways.get("source") or {}, pathways.get("target") or {}
    frozen, best = modules(target.get("frozen") or source.get("best")), modules(target.get("best"))
    if not frozen or not best:
        return Finding([f"This record ({record.get('method')}) holds no pathways to compare."])
    shared = sum(len(a & b) for a, b in zip(frozen, best))
    accuracy = (record.get("metrics") or {}).get("accuracy")
    sentences = [f"The source's best pathway uses {per_layer(frozen)} modules (layer by layer) and stays frozen "
                 f"on the target; the target's best pathway uses {per_layer(best)}, {shared} of them modules of "
                 "the frozen pathway."]
    if accuracy is not None:
        sentences.append(f"This run (fold {record.get('fold')}, seed {record.get('seed')}) reaches "
                         f"{accuracy:.2f} held-out accuracy on {record.get('target')}.")
    return Finding(sentences)


# ----------------------------------------------------------------------------
# the data chapter: the corpora
# ----------------------------------------------------------------------------
def corpus_tables(plan: NotebookPlan) -> dict[tuple[str, str], Any]:
    """The table of every (corpus, modality) of ``plan.corpora``: the real copy or the synthetic one.

    Synthetic corpora are generated on first use (cached under ``MTL_CACHE_DIR``).
    """
    tables = {}
    for name in plan.corpora:
        kind = plan.data_kinds[name]
        root = corpus_root(name, kind, plan.config)
        for modality in CORPORA[name].modalities:
            if plan.modality in (None, modality):
                table = load_corpus(name, root=root, modality=modality)
                table.attrs["kind"] = kind
                tables[(name, modality)] = table
    return tables


def corpus_overview(tables: Mapping[tuple[str, str], Any]) -> Any:
    """One row per (corpus, modality): copy, files, speakers, classes, files skipped."""
    import pandas as pd

    rows = []
    for (name, modality), table in tables.items():
        rows.append({"corpus": CORPORA[name].title, "modality": modality, "copy": table.attrs.get("kind", "?"),
                     "files": len(table), "speakers": table["speaker"].nunique(),
                     "classes": ", ".join(sorted(table["emotion"].unique())),
                     "skipped": len(table.attrs.get("skipped", []))})
    return pd.DataFrame(rows)


def _span(low: int, high: int) -> str:
    """``"20"`` or ``"12–20"``: a count that may vary, written once when it does not."""
    return f"{low}" if low == high else f"{low}–{high}"

"""Figures: learning curves, fitness, confusion matrices, PathNet pathways, per-class bars, the paper beside ours.

Every function draws with matplotlib and returns the :class:`~matplotlib.figure.Figure`
(it never calls ``plt.show``, and new figures are not registered with pyplot);
pass ``ax=`` to draw into an existing axes.
Inputs are the objects the rest of the package produces: result records
(dicts, or the DataFrame of :func:`mtl.results.load_records`), evolution
histories (``history_.to_frame()``), summaries of :func:`mtl.results.summarise`
and comparisons of :func:`mtl.results.paper_comparison`. The data chapter's
figures (recordings per emotion, log-Mel images, face crops) live in
:mod:`mtl.corpus_plots` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from mtl.corpora.labels import ABBREVIATIONS, paper_order
from mtl.corpus_plots import class_distribution, face_crop_examples, face_fallback_example, logmel_examples  # re-exported
from mtl.errors import ConfigError

__all__ = ["learning_curves", "fitness_over_generations", "confusion_matrix_plot", "draw_pathways",
           "record_pathways", "per_class_bars", "accuracy_beside_paper", "ablation_bars", "ga_diagnostics_plot",
           "class_distribution", "logmel_examples",
           "face_crop_examples", "face_fallback_example"]

METHOD_COLOURS = {"transfer": "tab:blue", "finetune": "tab:orange", "scratch": "tab:green"}


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The given axes, or a new figure that pyplot does not track: a notebook shows the returned
    figure once (no second copy from pyplot's inline display) and loops never leak figures."""
    if ax is not None:
        return ax.get_figure(), ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _curve_frame(obj: Any) -> pd.DataFrame:
    """A per-generation frame from a history, its frame, a record, or a list of points."""
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, Mapping) and "learning_curve" in obj:
        return pd.DataFrame(obj["learning_curve"])
    if hasattr(obj, "to_frame"):
        return obj.to_frame()
    return pd.DataFrame(list(obj))


def _label(record: Mapping[str, Any]) -> str:
    arrow = "+".join(record.get("sources", []))
    return f"{record.get('method')} {arrow + '→' if arrow else ''}{record.get('target')}"


# ---------------------------------------------------------------------------
# learning curves
# ---------------------------------------------------------------------------
def learning_curves(data: pd.DataFrame | Iterable[Mapping[str, Any]] | Mapping[str, Any],
                    metric: str = "val_accuracy", by: str | Callable[[Mapping[str, Any]], str] = "method",
                    ax: Axes | None = None, title: str | None = None, band: str = "sd") -> Figure:
    """Accuracy against generation, one line per method (transfer, scratch, finetune).

    Parameters
    ----------
    data
        Records (list of dicts, or the DataFrame of :func:`mtl.results.load_records`
        with its ``record`` column), or a mapping ``label -> history`` (a
        history object, its ``to_frame()``, or a list of per-generation dicts).
    metric : str
        ``"val_accuracy"`` (held-out accuracy, default) or ``"best_fitness"``
        (training accuracy of the best pathway so far).
    by : str or callable
        Record field that names a line (default ``"method"``), or a function
        of the record. Records sharing a label (folds, seeds) are averaged.
    band : {"sd", "range", "none"}
        Shaded band around the mean: ±1 standard deviation, min-max, or none.
    """
    if band not in ("sd", "range", "none"):
        raise ConfigError(f"band must be 'sd', 'range' or 'none', got {band!r}")
    groups: dict[str, list[pd.DataFrame]] = {}
    if isinstance(data, Mapping) and "learning_curve" not in data:
        for label, history in data.items():
            groups.setdefault(str(label), []).append(_curve_frame(history))
    else:
        items = data["record"].tolist() if isinstance(data, pd.DataFrame) else (
            [data] if isinstance(data, Mapping) else list(data))
        for record in items:
            label = by(record) if callable(by) else str(record.get(by))
            groups.setdefault(label, []).append(_curve_frame(record))
    fig, ax = _axes(ax, (6.4, 4.0))
    for label, frames in groups.items():
        curves = []
        for frame in frames:
            if metric not in frame.columns or "generation" not in frame.columns:
                continue
            points = frame[["generation", metric]].apply(pd.to_numeric, errors="coerce").dropna()
            curves.append(points.set_index("generation")[metric])
        if not curves:
            continue
        table = pd.concat(curves, axis=1).sort_index()
        mean = table.mean(axis=1)
        colour = METHOD_COLOURS.get(label)
        line, = ax.plot(mean.index, mean.to_numpy(), marker="o", markersize=3, color=colour,
                        label=f"{label} (n={len(curves)})" if len(curves) > 1 else label)
        if band != "none" and len(curves) > 1:
            if band == "sd":
                spread = table.std(axis=1).fillna(0.0)
                low, high = mean - spread, mean + spread
            else:
                low, high = table.min(axis=1), table.max(axis=1)
            ax.fill_between(mean.index, low.to_numpy(), high.to_numpy(), color=line.get_color(), alpha=0.2,
                            linewidth=0)
    ax.set_xlabel("generation")
    ax.set_ylabel("held-out accuracy" if metric == "val_accuracy" else metric.replace("_", " "))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right")
    ax.set_title(title or "Accuracy against generation")
    return fig


def fitness_over_generations(history: Any, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Best training fitness and held-out accuracy of one evolution, against generation.

    ``history`` is a history object (``.to_frame()``), its frame, a record
    (its ``learning_curve``), or a list of per-generation dicts.
    """
    frame = _curve_frame(history)
    if "generation" not in frame.columns:
        raise ConfigError("the history has no 'generation' column")
    fig, ax = _axes(ax, (6.4, 4.0))
    if "best_fitness" in frame.columns:
        ax.plot(frame["generation"], pd.to_numeric(frame["best_fitness"], errors="coerce"), color="tab:red",
                label="best fitness (training accuracy)")
    if "val_accuracy" in frame.columns:
        val = frame[["generation", "val_accuracy"]].apply(pd.to_numeric, errors="coerce").dropna()
        ax.plot(val["generation"], val["val_accuracy"], marker="o", markersize=3, color="tab:blue",
                label="held-out accuracy of the best pathway")
    ax.set_xlabel("generation")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "Evolution")
    return fig


# ---------------------------------------------------------------------------
# confusion matrix
# ---------------------------------------------------------------------------
def confusion_matrix_plot(cm: Sequence[Sequence[float]] | np.ndarray, classes: Sequence[str],
                          normalise: bool = True, ax: Axes | None = None, title: str | None = None,
                          cmap: str = "Blues") -> Figure:
    """Annotated confusion matrix (rows = true class, columns = predicted).

    ``cm`` holds counts (a record's ``metrics["confusion"]``, or a sum over
    folds); ``normalise=True`` shows each row as fractions of its total, so
    the diagonal is the per-class accuracy the paper tabulates.
    """
    cm = np.asarray(cm, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(classes):
        raise ConfigError(f"cm must be square with one row per class ({len(classes)}), got shape {cm.shape}")
    values = cm
    if normalise:
        totals = cm.sum(axis=1, keepdims=True)
        values = np.divide(cm, totals, out=np.full_like(cm, np.nan), where=totals > 0)
    size = 1.0 + 0.6 * len(classes)
    fig, ax = _axes(ax, (size + 1.2, size))
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=1 if normalise else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    names = [ABBREVIATIONS.get(c, c) for c in classes]
    ax.set_xticks(range(len(classes)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = np.nanmax(values) if np.isfinite(values).any() else 1.0
    for i in range(len(classes)):
        for j in range(len(classes)):
            v = values[i, j]
            text = "—" if np.isnan(v) else (f"{v:.2f}" if normalise else f"{int(round(v))}")
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if not np.isnan(v) and v > 0.6 * top else "black")
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalise else "Confusion matrix (counts)"))
    return fig


# ---------------------------------------------------------------------------
# pathways (paper Figs. 3, 9, 10)
# ---------------------------------------------------------------------------
def _layer_sets(genotype: Any, n_layers: int) -> list[set[int]]:
    """Distinct active modules per layer of a genotype.

    Accepts one row per layer (``L x N``, this package's layout; rows may
    differ in length) or the paper's ``N x L`` matrix (transposed when its
    shape says so unambiguously).
    """
    if isinstance(genotype, np.ndarray) or (isinstance(genotype, (list, tuple)) and genotype
                                            and all(isinstance(r, (list, tuple, np.ndarray)) for r in genotype)
                                            and len({len(r) for r in genotype}) == 1):
        array = np.asarray(genotype, dtype=int)
        if array.ndim != 2:
            raise ConfigError(f"a genotype must be 2-D (layers x modules), got shape {array.shape}")
        if array.shape[0] != n_layers and array.shape[1] == n_layers:
            array = array.T
        rows: list[Iterable[int]] = list(array)
    else:
        rows = list(genotype)
    if len(rows) != n_layers:
        raise ConfigError(f"genotype has {len(rows)} layers, expected {n_layers}")
    return [{int(m) for m in row if int(m) >= 0} for row in rows]


def draw_pathways(n_layers: int, n_modules: int, population_genotypes: Iterable[Any] | None = None,
                  best: Any | None = None, frozen: Any | None = None, new_best: Any | None = None,
                  title: str | None = None, ax: Axes | None = None) -> Figure:
    """PathNet as the paper draws it: L layers of M module boxes, with input and output.

    Layers are rows (input below, task-specific output above). Every pathway
    connects each of its active modules with each active module of the next
    layer.

    Parameters
    ----------
    n_layers, n_modules : int
        L and M.
    population_genotypes : list of genotypes, optional
        Drawn as thin grey lines (Fig. 9a, 10a).
    best : genotype, optional
        The optimal pathway of a source task, thick red (Fig. 9b).
    frozen : genotype, optional
        The transferred, frozen source pathway on the target, red (Fig. 10b).
    new_best : genotype, optional
        The new optimal pathway on the target, thick blue (Fig. 10c).

    A genotype is one row of module indices per layer (or the paper's N x L
    matrix).
    """
    fig, ax = _axes(ax, (max(6.0, 0.42 * n_modules + 1.5), 1.3 * n_layers + 2.2))
    box_w, box_h = 0.7, 0.5
    y_of = lambda layer: float(layer + 1)  # noqa: E731 -- input at 0, layers 1..L, output at L+1
    x_mid = (n_modules - 1) / 2.0

    fill: dict[tuple[int, int], str] = {}
    for genotype, colour in ((best, "#f4b6b6"), (new_best, "#b9cff5"), (frozen, "#e06666")):
        if genotype is not None:
            for layer, modules in enumerate(_layer_sets(genotype, n_layers)):
                for m in modules:
                    fill[(layer, m)] = colour

    def draw(genotype: Any, **style: Any) -> None:
        layers = _layer_sets(genotype, n_layers)
        previous = [(x_mid, y_of(-1) + box_h / 2)]
        for layer, modules in enumerate(layers):
            current = [(float(m), y_of(layer)) for m in sorted(modules) if m < n_modules]
            for x0, y0 in previous:
                for x1, y1 in current:
                    ax.plot([x0, x1], [y0, y1 - box_h / 2], **style)
            previous = [(x, y + box_h / 2) for x, y in current]
        for x0, y0 in previous:
            ax.plot([x0, x_mid], [y0, y_of(n_layers) - box_h / 2], **style)

    handles = []
    if population_genotypes is not None:
        population = list(population_genotypes)
        for genotype in population:
            draw(genotype, color="0.55", linewidth=0.6, alpha=0.6, zorder=1)
        if population:
            handles.append(Line2D([], [], color="0.55", linewidth=0.8, label=f"population ({len(population)} pathways)"))
    if best is not None:
        draw(best, color="#cc0000", linewidth=3.0, zorder=3)
        handles.append(Line2D([], [], color="#cc0000", linewidth=3.0, label="optimal pathway"))
    if frozen is not None:
        draw(frozen, color="#cc0000", linewidth=2.2, zorder=3)
        handles.append(Line2D([], [], color="#cc0000", linewidth=2.2, label="transferred pathway (frozen)"))
    if new_best is not None:
        draw(new_best, color="#1f4fd1", linewidth=3.0, zorder=4)
        handles.append(Line2D([], [], color="#1f4fd1", linewidth=3.0, label="new optimal pathway"))

    for layer in range(n_layers):
        for m in range(n_modules):
            ax.add_patch(Rectangle((m - box_w / 2, y_of(layer) - box_h / 2), box_w, box_h,
                                   facecolor=fill.get((layer, m), "white"), edgecolor="0.25", linewidth=0.8,
                                   zorder=2))
        ax.text(-0.9, y_of(layer), f"layer {layer + 1}", ha="right", va="center", fontsize=8)
    for y, name in ((y_of(-1), "input"), (y_of(n_layers), "output")):
        ax.add_patch(Rectangle((x_mid - 1.5, y - box_h / 2), 3.0, box_h, facecolor="0.92", edgecolor="0.25",
                               zorder=2))
        ax.text(x_mid, y, name, ha="center", va="center", fontsize=9, zorder=3)
    if frozen is not None:
        handles.append(Patch(facecolor="#e06666", edgecolor="0.25", label="frozen module"))
    ax.set_xlim(-2.6, n_modules)
    ax.set_ylim(y_of(-1) - 0.6, y_of(n_layers) + 0.6)
    ax.set_aspect("auto")
    ax.axis("off")
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or f"PathNet: {n_layers} layers x {n_modules} modules")
    return fig


def record_pathways(record: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """Keyword arguments of :func:`draw_pathways` for one stage of a transfer run's record.

    ``stage`` is one of ``"source_initial"`` (Fig. 9a), ``"source_final"``
    (Fig. 9b), ``"target_initial"`` (Fig. 10a), ``"target_frozen"`` (Fig. 10b),
    ``"target_final"`` (Fig. 10c).
    """
    config = record.get("config", {})
    pathways = record.get("pathways") or {}
    source = pathways.get("source") or {}
    target = pathways.get("target") or {}
    base = {"n_layers": int(config.get("n_layers", 3)), "n_modules": int(config.get("n_modules", 20))}
    stages = {
        "source_initial": dict(population_genotypes=source.get("initial_population")),
        "source_final": dict(population_genotypes=source.get("final_population"), best=source.get("best")),
        "target_initial": dict(population_genotypes=target.get("initial_population"), frozen=target.get("frozen")),
        "target_frozen": dict(frozen=target.get("frozen")),
        "target_final": dict(population_genotypes=target.get("final_population"), frozen=target.get("frozen"),
                             new_best=target.get("best")),
    }
    if stage not in stages:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {', '.join(stages)}")
    chosen = {k: v for k, v in stages[stage].items() if v is not None}
    if not chosen:
        raise ConfigError(f"the record has no pathways for stage {stage!r} (method {record.get('method')!r})")
    return {**base, **chosen}


# ---------------------------------------------------------------------------
# per-class accuracy
# ---------------------------------------------------------------------------
def per_class_bars(summary: pd.DataFrame, classes: Sequence[str] | None = None,
                   label: str | Callable[[pd.Series], str] | None = None,
                   paper: Mapping[str, Mapping[str, float]] | None = None, ax: Axes | None = None,
                   title: str | None = None) -> Figure:
    """Per-class accuracy (mean ± sd) of each summary row as grouped bars.

    Parameters
    ----------
    summary : DataFrame
        Rows of :func:`mtl.results.summarise` (``acc_<class>_mean`` / ``_sd`` columns).
    classes : list of str, optional
        Classes to show; default every class with a value, in the paper's order.
    label : column name or function of a row, optional
        Bar label; default "method sources→target (<protocol> protocol)".
    paper : mapping ``label -> {class: value}``, optional
        The paper's values, drawn as black diamonds over the bars with the same label.
    """
    if summary.empty:
        raise ConfigError("per_class_bars: the summary is empty")
    if classes is None:
        present = [c[len("acc_"):-len("_mean")] for c in summary.columns
                   if c.startswith("acc_") and c.endswith("_mean") and summary[c].notna().any()]
        classes = paper_order(present)
    classes = list(classes)
    if not classes:
        raise ConfigError("per_class_bars: no per-class accuracy in the summary")

    def name(row: pd.Series) -> str:
        if callable(label):
            return label(row)
        if isinstance(label, str):
            return str(row[label])
        arrow = f"{row['sources']}→" if row.get("sources") else ""
        return f"{row['method']} {arrow}{row['target']} ({row['protocol']} protocol)"

    fig, ax = _axes(ax, (max(6.0, 1.1 * len(classes) + 2.0), 4.0))
    n = len(summary)
    width = 0.8 / n
    x = np.arange(len(classes))
    for i, (_, row) in enumerate(summary.iterrows()):
        means = [row.get(f"acc_{c}_mean", np.nan) for c in classes]
        sds = [row.get(f"acc_{c}_sd", np.nan) for c in classes]
        sds = [0.0 if pd.isna(s) else s for s in sds]
        text = name(row)
        offset = x - 0.4 + width * (i + 0.5)
        ax.bar(offset, means, width, yerr=sds, capsize=2, label=text,
               color=METHOD_COLOURS.get(str(row.get("method"))) if n <= 3 else None, alpha=0.85)
        if paper and text in paper:
            values = [paper[text].get(c, np.nan) for c in classes]
            ax.scatter(offset, values, marker="D", color="black", s=18, zorder=3)
    if paper:
        ax.scatter([], [], marker="D", color="black", s=18, label="the paper's value")
    ax.set_xticks(x, [ABBREVIATIONS.get(c, c) for c in classes])
    ax.set_ylabel("per-class accuracy (recall)")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(3, n + bool(paper)),
              frameon=False)  # below the axes: bars reach any height
    ax.set_title(title or "Per-class accuracy")
    return fig


def accuracy_beside_paper(comparison: pd.DataFrame, labels: Sequence[str] | None = None, ax: Axes | None = None,
                          title: str | None = None) -> Figure:
    """Overall accuracy, ours (mean ± sd over folds and seeds) beside the paper's, one bar per reproduced row.

    Parameters
    ----------
    comparison : DataFrame
        :func:`mtl.results.paper_comparison` (its ``Method``, ``Overall mean``,
        ``Overall sd``, ``Overall (paper)`` and ``Classes`` columns); rows not
        run are left out.
    labels : list of str, optional
        One label per row of ``comparison``; default "method sources → target".

    Bars are coloured by method, the paper's number is a black diamond, and
    chance (one over the number of classes) a dotted tick on each bar's row.
    """
    if labels is None:
        labels = [f"{m} {s + ' → ' if s not in ('', '—') else ''}{t}"
                  for m, s, t in zip(comparison["Method"], comparison["Sources"], comparison["Target"])]
    done = comparison.assign(label=list(labels))
    done = done[done["Overall mean"].notna()].reset_index(drop=True)
    if done.empty:
        raise ConfigError("accuracy_beside_paper: no row of the comparison has been run")
    own = ax is None
    fig, ax = _axes(ax, (7.0, 1.3 + 0.5 * len(done)))
    y = np.arange(len(done))
    ax.barh(y, done["Overall mean"], xerr=done["Overall sd"].fillna(0.0), capsize=3, height=0.6, alpha=0.85,
            color=[METHOD_COLOURS.get(m, "tab:grey") for m in done["Method"]])
    ax.scatter(done["Overall (paper)"], y, marker="D", color="black", s=24, zorder=3)
    chance = [1.0 / len(c.split(",")) if c else np.nan for c in done["Classes"]]
    ax.vlines(chance, y - 0.4, y + 0.4, colors="0.3", linestyles=":", linewidth=1.2)
    ax.set_yticks(y, done["label"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("overall accuracy")
    ax.grid(axis="x", alpha=0.3)
    methods = list(dict.fromkeys(done["Method"]))
    handles = [Patch(color=METHOD_COLOURS.get(m, "tab:grey"), alpha=0.85, label=f"{m} (ours)") for m in methods]
    handles += [Line2D([], [], marker="D", color="black", linestyle="", label="the paper"),
                Line2D([], [], color="0.3", linestyle=":", label="chance")]
    for position, mean in zip(y, done["Overall mean"]):  # inside a long bar, past the end of a short one
        inside = mean > 0.12
        ax.text(0.01 if inside else mean + 0.01, position, f"{mean:.2f}", va="center", fontsize=8,
                color="white" if inside else "black", fontweight="bold")
    if own:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    else:
        ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_title(title or "Overall accuracy: ours beside the paper's")
    return fig


# ---------------------------------------------------------------------------
# ablation
# ---------------------------------------------------------------------------
def ablation_bars(table: pd.DataFrame, decision: str = "segment", methods: Sequence[str] = ("scratch", "transfer"),
                  paper: Mapping[str, float] | None = None, chance: float | None = None,
                  title: str | None = None) -> Figure:
    """Mean ± sd over folds of every ablation setting, one panel per protocol.

    Parameters
    ----------
    table : DataFrame
        :func:`mtl.ablation.ablation_table` (its ``<method>_mean`` and ``_sd`` columns).
    decision : str, default "segment"
        Which decision level's rows to draw (a key of :data:`mtl.ablation.DECISIONS`).
    methods : sequence of str, default scratch and transfer
        Bars per setting, coloured by method.
    paper : mapping ``method -> value``, optional
        The paper's numbers, drawn as dashed lines in the paper-protocol panel
        only: they were measured under that protocol.
    chance : float, optional
        A dotted line in every panel (e.g. 1/7 for seven classes).
    """
    rows = table[table["decision"] == decision] if not table.empty else table
    if rows.empty:
        raise ConfigError(f"ablation_bars: no rows with decision {decision!r}")
    protocols = list(dict.fromkeys(rows["protocol"]))
    fig = Figure(figsize=(max(6.0, 3.4 * len(protocols)), 4.2), layout="constrained")
    axes = fig.subplots(1, len(protocols), sharey=True, squeeze=False)[0]
    width = 0.8 / len(methods)
    for ax, protocol in zip(axes, protocols):
        part = rows[rows["protocol"] == protocol].reset_index(drop=True)
        labels = [f"{r.module_type}\n{r.training_budget.replace('_', ' ')}"
                  + (f"\nG={r.generations}" if "generations" in part else "") for r in part.itertuples()]
        x = np.arange(len(part))
        for i, method in enumerate(methods):
            means = part[f"{method}_mean"].astype(float).to_numpy()
            sds = np.nan_to_num(part[f"{method}_sd"].astype(float).to_numpy())
            ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=sds, capsize=2, alpha=0.85,
                   color=METHOD_COLOURS.get(method), label=method)
        if paper and protocol == "paper":
            for method in methods:
                if method in paper:
                    ax.axhline(paper[method], color=METHOD_COLOURS.get(method), linestyle="--", linewidth=1)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(f"{protocol} protocol", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, 1.0)
    axes[0].set_ylabel(f"accuracy ({decision} decisions)")
    handles = [Patch(color=METHOD_COLOURS.get(m), alpha=0.85, label=m) for m in methods]
    if paper:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1,
                              label="paper's number (its protocol, Table 4)"))
    if chance is not None:
        handles.append(Line2D([], [], color="grey", linestyle=":", linewidth=1, label="chance"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or "Ablation on EMO-DB: mean ± sd over folds")
    return fig


def ga_diagnostics_plot(table: pd.DataFrame, generations: int = 200) -> Figure:
    """The genetic algorithm's diagnostics: when training fitness reaches 1.0, and how tournaments are decided.

    ``table``: :func:`mtl.reference.analysis.ga_table` (one row per run).
    Left: the first generation at training fitness 1.0 of each run, per
    method, input and protocol (out of ``generations``). Right: the fraction of
    tournaments decided by a tie, before and after that generation, for the
    runs that recorded it (NaN rows are left out).
    """
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    keys = ["method", "input", "protocol"] if "input" in table else ["method", "protocol"]
    groups = list(table.groupby(keys, sort=True)) if len(table) else []
    for i, (key, group) in enumerate(groups):
        method = key[0]
        values = group["first_perfect_generation"].dropna()
        left.scatter(np.full(len(values), i) + np.linspace(-0.15, 0.15, max(len(values), 1))[:len(values)], values,
                     color=METHOD_COLOURS.get(method, "tab:gray"), zorder=3)
    left.set_xticks(range(len(groups)), ["\n".join(key) for key, _ in groups])
    left.set_ylim(0, generations)
    left.axhline(generations, color="0.5", linestyle=":", linewidth=1)
    left.set_ylabel("first generation at training fitness 1.0")
    left.set_title("When the tournament starts comparing ties")
    diagnosed = table[table["diagnosed"].astype(bool)] if len(table) else table
    labels, before, after = [], [], []
    for key, group in diagnosed.groupby(keys, sort=True) if len(diagnosed) else ():
        labels.append("\n".join(key))
        before.append(group["tie_fraction"].mean())
        after.append(group["tie_fraction_after_perfect"].mean())
    x = np.arange(len(labels))
    right.bar(x - 0.2, before, 0.4, label="all tournaments", color="tab:gray")
    right.bar(x + 0.2, after, 0.4, label="after fitness 1.0", color="tab:red")
    right.set_xticks(x, labels)
    right.set_ylim(0, 1)
    right.set_ylabel("tournaments decided by a tie")
    right.set_title("Ties (runs with GA diagnostics)")
    if labels:
        right.legend(loc="upper left", frameon=False)
    else:
        right.text(0.5, 0.5, "no run recorded its diagnostics", ha="center", va="center", transform=right.transAxes)
    return fig

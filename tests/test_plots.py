import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mtl.cells import Cell  # noqa: E402
from mtl.config import get_profile  # noqa: E402
from mtl.errors import ConfigError  # noqa: E402
from mtl.plots import (confusion_matrix_plot, draw_pathways, fitness_over_generations, learning_curves,  # noqa: E402
                       per_class_bars, record_pathways)
from mtl.records import RunResult, build_record  # noqa: E402
from mtl.results import summarise  # noqa: E402

from test_results import _metrics  # noqa: E402

SIX = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]


def _record(method, fold, offset=0.0):
    """A record of the one layout (mtl.records.build_record), with pathways and learning curves, without training."""
    sources = () if method == "scratch" else ("enterface",)
    cell = Cell(experiment="convergence", method=method, target="savee", sources=sources, modality="audio",
                classes=tuple(SIX), source_classes=tuple(SIX) if sources else (), protocol="paper", seed=0,
                fold=fold, config=get_profile("smoke"), data=tuple((c, "synthetic") for c in ("savee", *sources)))
    source = None if not sources else {
        "key": "source", "classes": SIX, "n_samples": 100, "best_fitness": 0.9, "cached": True, "seconds": 1.0,
        "learning_curve": [], "provenance": {}, "config": {},
        "pathways": {"initial_population": [[[0, 1], [2, 3], [4, 5]]] * 3, "final_population": None,
                     "best": [[1, 2], [3, 4], [5, 6]]}}
    result = RunResult(
        metrics=_metrics(0.5 + offset, SIX), n_train=600, n_test=300, n_folds=2, provenance={}, target_seconds=1.0,
        learning_curve=[{"generation": g, "best_fitness": 0.2 + 0.1 * g, "val_accuracy": 0.1 + 0.1 * g + offset}
                        for g in range(5)],
        target_pathways={"initial_population": [[[7, 8], [9, 10], [11, 12]]], "best": [[7, 8], [0, 1], [2, 19]],
                         "frozen": [[1, 2], [3, 4], [5, 6]], "final_population": [[[7, 8], [0, 1], [2, 19]]]},
        source=source)
    return build_record(cell, result)


RECORDS = [_record(m, f, 0.05 * f) for m in ("transfer", "scratch", "finetune") for f in (0, 1)]


def _lines(fig):
    return [line for ax in fig.axes for line in ax.get_lines()]


def test_learning_curves_from_records_histories_and_frames():
    fig = learning_curves(RECORDS, title="convergence")
    assert isinstance(fig, Figure)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert sorted(labels) == ["finetune (n=2)", "scratch (n=2)", "transfer (n=2)"]
    assert learning_curves(pd.DataFrame({"record": RECORDS}), metric="best_fitness", band="range")
    history = pd.DataFrame(RECORDS[0]["learning_curve"])
    fig = learning_curves({"transfer": history, "scratch": RECORDS[2]["learning_curve"]})
    assert len(_lines(fig)) == 2
    with pytest.raises(ConfigError, match="band"):
        learning_curves(RECORDS, band="iqr")


def test_fitness_over_generations():
    fig = fitness_over_generations(RECORDS[0])
    assert len(_lines(fig)) == 2
    with pytest.raises(ConfigError, match="generation"):
        fitness_over_generations(pd.DataFrame({"x": [1]}))


def test_confusion_matrix_plot_normalises_rows():
    cm = np.array([[3, 1], [0, 0]])
    fig = confusion_matrix_plot(cm, ["anger", "fear"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.75", "0.25", "—", "—"]
    fig = confusion_matrix_plot(cm, ["anger", "fear"], normalise=False)
    assert [t.get_text() for t in fig.axes[0].texts] == ["3", "1", "0", "0"]
    with pytest.raises(ConfigError, match="square"):
        confusion_matrix_plot(cm, ["anger"])


def test_draw_pathways_population_best_frozen_new_best():
    population = [[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]], [[1], [2], [3]]]
    fig = draw_pathways(3, 20, population_genotypes=population, best=[[1, 2], [3, 4], [5, 6]], title="Fig. 9b")
    colours = {tuple(np.round(matplotlib.colors.to_rgb(line.get_color()), 2)) for line in _lines(fig)}
    assert (0.8, 0.0, 0.0) in colours  # thick red optimal pathway
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["population (2 pathways)", "optimal pathway"]
    # 3x20 module boxes + input + output
    assert len(fig.axes[0].patches) == 62
    fig = draw_pathways(3, 20, frozen=[[1, 2], [3, 4], [5, 6]], new_best=np.array([[7, 8], [0, 1], [2, 19]]))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["transferred pathway (frozen)", "new optimal pathway", "frozen module"]
    # the paper's N x L layout is accepted too
    assert draw_pathways(3, 20, best=np.array([[1, 3, 5], [2, 4, 6]]))
    with pytest.raises(ConfigError, match="layers"):
        draw_pathways(3, 20, best=[[1], [2]])


def test_record_pathways_feeds_draw_pathways():
    for stage in ("source_initial", "source_final", "target_initial", "target_frozen", "target_final"):
        kwargs = record_pathways(RECORDS[0], stage)
        assert isinstance(draw_pathways(**kwargs, title=stage), Figure)
    assert record_pathways(RECORDS[0], "target_final")["new_best"] == [[7, 8], [0, 1], [2, 19]]
    with pytest.raises(ConfigError, match="unknown stage"):
        record_pathways(RECORDS[0], "middle")
    with pytest.raises(ConfigError, match="no pathways"):
        record_pathways({"config": {}, "pathways": {"source": None, "target": {}}, "method": "scratch"},
                        "source_final")


def test_per_class_bars_with_paper_values():
    summary = summarise(RECORDS)
    fig = per_class_bars(summary, paper={"transfer enterface→savee (paper protocol)": {"anger": 0.73}})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Ang", "Sur", "Dis", "Fea", "Hap", "Sad"]
    assert len(ax.patches) == 3 * 6
    assert "the paper's value" in ax.get_legend_handles_labels()[1]
    with pytest.raises(ConfigError, match="empty"):
        per_class_bars(summary.iloc[0:0])


def test_accuracy_beside_paper_draws_one_bar_per_row_run():
    from mtl.plots import accuracy_beside_paper
    from mtl.results import paper_comparison

    comparison = paper_comparison(summarise(RECORDS), "table4", experiments="all")
    fig = accuracy_beside_paper(comparison)
    ax = fig.axes[0]
    run = comparison["Overall mean"].notna().sum()
    assert len(ax.patches) == run and len(ax.get_yticklabels()) == run
    assert any(c.get_offsets().shape == (run, 2) for c in ax.collections)  # the paper's diamonds
    with pytest.raises(ConfigError, match="no row"):
        accuracy_beside_paper(comparison.iloc[0:0])

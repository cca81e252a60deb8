"""The data chapter's figures (mtl.corpus_plots)."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from mtl.corpus_plots import class_distribution  # noqa: E402


def test_class_distribution_draws_one_panel_per_corpus_and_modality():
    tables = {(name, "audio"): pd.DataFrame({"emotion": ["anger", "anger", "sadness"]}) for name in ("savee", "emodb")}
    fig = class_distribution(tables)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    assert [t.get_text() for t in visible[0].get_yticklabels()] == ["anger", "sadness"]

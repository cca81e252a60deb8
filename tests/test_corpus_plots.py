"""The data chapter's figures (mtl.corpus_plots)."""

import matplotlib

matplotlib.use("Agg")

import logging  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402

from mtl.config import get_profile  # noqa: E402
from mtl.corpus_plots import class_distribution, logmel_examples  # noqa: E402


def test_class_distribution_draws_one_panel_per_corpus_and_modality():
    tables = {(name, "audio"): pd.DataFrame({"emotion": ["anger", "anger", "sadness"]}) for name in ("savee", "emodb")}
    fig = class_distribution(tables)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    assert [t.get_text() for t in visible[0].get_yticklabels()] == ["anger", "sadness"]


def test_a_figure_passes_over_a_file_it_cannot_read_and_says_which(tmp_path, caplog):
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 16000)
    bad.write_bytes(b"")
    table = pd.DataFrame({"path": [str(bad), str(good)], "emotion": ["anger", "anger"]})
    table.attrs["kind"] = "synthetic"
    for seed in range(4):  # whichever file the seed draws first, the readable one is shown
        with caplog.at_level(logging.WARNING, logger="mtl.corpus_plots"):
            fig = logmel_examples({("emodb", "audio"): table}, get_profile("smoke"), emotions=["anger"], seed=seed)
        assert "good.wav" in [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "bad.wav" in caplog.text

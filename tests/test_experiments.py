"""The paper's experiments: their registry, their cells, and running them (with the runner of mtl.runner).

Most tests swap the feature pipeline and PathNet for small fakes (fast, and
independent of those packages); ``test_run_cell_end_to_end_*`` runs the real
pipeline on tiny synthetic corpora with the smoke profile.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mtl.experiments as ex
from mtl.cells import make_cell, resolve_classes
from mtl.config import get_profile
from mtl.corpora import corpus_card
from mtl.datasets import corpus_provenance, load_dataset, resolve_data_kind
from mtl.errors import ConfigError, MissingDataError
from mtl.experiments import EXPERIMENTS, experiment_cells, run_experiment
from mtl.paths import cache_dir, results_dir
from mtl.runner import run_cell

SMOKE = get_profile("smoke")
SIX = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")


@pytest.fixture(autouse=True)
def _own_dirs(tmp_path, monkeypatch):
    """Fresh results/cache folders per test (conftest's are shared by the whole session); no real data."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-data"))


# ---------------------------------------------------------------------------
# fakes
# ---------------------------------------------------------------------------
class FakeFeatures:
    """FeatureSet-like: X (n, 4, 4, 3) whose first value encodes the class, and a samples table."""

    def __init__(self, corpus, classes, speakers=4, utterances=3, segments=3, seed=0):
        rng = np.random.default_rng(seed)
        rows, xs = [], []
        for s in range(speakers):
            for c, emotion in enumerate(classes):
                for u in range(utterances):
                    for k in range(segments):
                        rows.append(dict(path=f"/{corpus}/{s}/{emotion}{u}.wav", corpus=corpus, modality="audio",
                                         speaker=f"s{s}", utterance=f"{s}{emotion}{u}", emotion=emotion,
                                         code=emotion[:2], segment=k))
                        x = rng.normal(size=(4, 4, 3)).astype(np.float32)
                        x[0, 0, 0] = 3.0 * c
                        xs.append(x)
        self.samples = pd.DataFrame(rows)
        self.X = np.stack(xs)
        self.skipped = []

    def __len__(self):
        return len(self.samples)

    def subset(self, mask):
        out = object.__new__(FakeFeatures)
        out.samples = self.samples[np.asarray(mask)].reset_index(drop=True)
        out.X = self.X[np.asarray(mask)]
        out.skipped = []
        return out


class FakeHistory(list):
    """History-like: per-generation dicts (no GA fields, as after fine-tuning) with to_frame()."""

    def __init__(self, n):
        super().__init__({"generation": g + 1, "best_fitness": 0.2 + 0.1 * g, "winner": None,
                          "val_accuracy": 0.1 * g if g % 2 == 0 else None} for g in range(n))

    def to_frame(self):
        return pd.DataFrame(list(self))


class FakeSource:
    trained = 0

    def __init__(self):
        self.best_genotype = np.array([[1, 2], [3, 4], [5, 6]])
        self.best_fitness = 0.9
        self.history = FakeHistory(3)
        self.config = SMOKE
        self.task = "source"

    def save(self, path):
        Path(path).write_text("source")

    @classmethod
    def load(cls, path, device=None):
        assert Path(path).read_text() == "source"
        return cls()


def fake_train_source(X, y, config, *, task="source", n_classes=None, progress=False, checkpoint_path=None):
    FakeSource.trained += 1
    assert n_classes == int(y.max()) + 1
    assert np.allclose(X.reshape(len(X), -1).mean(axis=0), 0, atol=1e-4)  # standardised on the source data
    return FakeSource()


class FakeClassifier:
    """Predicts the class encoded in the first feature (nearest class centre seen in training)."""

    def __init__(self, config, method="scratch", source=None, task="target", n_classes=None, progress=False):
        assert (method == "scratch") == (source is None)
        self.config, self.method, self.n_classes = config, method, n_classes

    def fit(self, X, y, X_val=None, y_val=None, checkpoint_path=None):
        assert checkpoint_path is not None and Path(checkpoint_path).parent.is_dir()
        first = X.reshape(len(X), -1)[:, 0]
        self.centres_ = np.array([first[y == c].mean() for c in range(self.n_classes)])
        self.history_ = FakeHistory(self.config.generations)
        self.best_genotype_ = np.array([[0, 1], [2, 3], [4, 5]])
        self.frozen_ = [[1, 2], [3, 4], [5, 6]] if self.method == "transfer" else None
        self.result_ = None
        return self

    def predict_proba(self, X):
        first = X.reshape(len(X), -1)[:, 0]
        scores = -np.abs(first[:, None] - self.centres_[None, :])
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def fakes(monkeypatch):
    loads = []

    def fake_load_dataset(corpus, modality="audio", config=None, classes=None, data="auto", progress=False):
        loads.append(corpus)
        wanted = list(classes or corpus_card(corpus).classes)
        features = FakeFeatures(corpus, corpus_card(corpus).classes)
        features = features.subset(features.samples["emotion"].isin(wanted).to_numpy())
        return features, {"corpus": corpus, "kind": data, "copy": f"fake {corpus}", "content_hash": "0",
                          "n_samples": len(features), "classes": wanted}

    # patched where they are used
    monkeypatch.setattr("mtl.runner.load_dataset", fake_load_dataset)
    monkeypatch.setattr("mtl.experiments.load_dataset", fake_load_dataset)
    monkeypatch.setattr("mtl.cells.resolve_data_kind", lambda corpus, data="auto": "synthetic")
    monkeypatch.setattr("mtl.runner.PathNetClassifier", FakeClassifier)
    monkeypatch.setattr("mtl.runner.train_source", fake_train_source)
    monkeypatch.setattr("mtl.runner.SourceModel", FakeSource)
    FakeSource.trained = 0
    return loads


# ---------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------
def test_run_cell_writes_a_complete_record_and_skips_it_on_rerun(fakes):
    cell = make_cell("unit", "transfer", "savee", ("enterface",), "audio", SMOKE, seed=1, fold=1)
    record = run_cell(cell)
    path = results_dir() / "runs" / "unit" / f"{cell.key}.json"
    assert path.is_file() and json.loads(path.read_text())["cell_key"] == cell.key
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert record["classes"] == list(SIX) and record["source_classes"] == list(SIX)
    assert (record["method"], record["sources"], record["target"], record["fold"]) == ("transfer", ["enterface"],
                                                                                       "savee", 1)
    assert record["n_folds"] == SMOKE.folds and record["config"]["seed"] == 1
    assert record["config_differences"]["generations"] == [200, SMOKE.generations]
    metrics = record["metrics"]
    assert metrics["accuracy"] == 1.0 and metrics["uar"] == 1.0
    assert set(metrics["per_class"]) == set(SIX)
    assert np.array(metrics["confusion"]).sum() == record["n_test"]
    assert metrics["utterance"]["mean_prob"]["accuracy"] == 1.0 and metrics["utterance"]["vote"]["accuracy"] == 1.0
    assert len(record["learning_curve"]) == SMOKE.generations
    assert record["learning_curve"][1]["val_accuracy"] is None
    assert record["pathways"]["target"]["best"] == [[0, 1], [2, 3], [4, 5]]
    assert record["pathways"]["target"]["frozen"] == [[1, 2], [3, 4], [5, 6]]
    assert record["pathways"]["source"]["best"] == [[1, 2], [3, 4], [5, 6]]
    assert record["pathways"]["source"]["initial_population"] is None  # no GA history to replay
    assert set(record["data"]["provenance"]) == {"savee", "enterface"}
    assert record["code"]["package"] == "0.1.0"
    assert record["timings"]["target_seconds"] >= 0 and record["timings"]["source_cached"] is False
    assert "hostname" not in json.dumps(record)
    assert not (cache_dir() / "checkpoints" / cell.key).exists()  # removed once the record is written

    loads = len(fakes)
    assert run_cell(cell) == record
    assert len(fakes) == loads  # nothing recomputed


def test_source_model_is_trained_once_and_reused_across_folds_and_methods(fakes):
    cells = experiment_cells("table4_speech_baselines", target="savee", config=SMOKE)
    assert [c.method for c in cells] == ["finetune"] * 2 + ["scratch"] * 2 + ["transfer"] * 2
    records = [run_cell(c) for c in cells]
    assert FakeSource.trained == 1
    assert len({c.source_key for c in cells if c.method != "scratch"}) == 1
    assert sorted(p.suffix for p in (cache_dir() / "sources").iterdir() if p.suffix != ".lock") == [".json", ".pt"]
    assert [r["timings"]["source_cached"] for r in records if r["method"] != "scratch"] == [False, True, True, True]
    # a protocol change needs new target folds but the same source model
    speaker = make_cell("unit", "transfer", "savee", ("enterface",), "audio", SMOKE, protocol="speaker")
    assert speaker.source_key == cells[-1].source_key and speaker.key != cells[-1].key


def test_same_computation_in_another_experiment_is_copied_not_rerun(fakes):
    a = make_cell("table1_visual_transfer", "scratch", "savee", (), "audio", SMOKE)
    b = make_cell("table2_visual_baselines", "scratch", "savee", (), "audio", SMOKE)
    assert a.key == b.key and a.record_path != b.record_path
    first = run_cell(a)
    loads = len(fakes)
    second = run_cell(b)
    assert len(fakes) == loads
    assert second["experiment"] == "table2_visual_baselines" and second["reused_from"] == "table1_visual_transfer"
    assert second["metrics"] == first["metrics"] and b.record_path.is_file()


def test_run_experiment_runs_the_registered_runs(fakes):
    records = run_experiment("table3_speech_transfer", config=SMOKE, folds=[0], progress=False)
    assert [(r["target"], r["sources"]) for r in records] == [("savee", ["enterface"]),
                                                              ("emodb", ["enterface", "savee"])]
    emodb = records[1]
    assert emodb["classes"] == ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]
    assert emodb["source_classes"] == ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]


def test_source_config_trains_the_source_and_enters_both_keys(fakes):
    cell = make_cell("unit", "transfer", "savee", ("enterface",), "audio", SMOKE)
    other = dataclasses.replace(cell, source_config=SMOKE.replace(generations=2))
    assert other.source_training_config.generations == 2 and cell.source_training_config is cell.config
    assert other.key != cell.key and other.source_key != cell.source_key
    # spelled out but equal to the cell's own: the same cell
    same = dataclasses.replace(cell, source_config=SMOKE.replace(protocol="speaker", seed=5))
    assert same.source_config is None and same.key == cell.key
    record = run_cell(other)
    assert record["source"]["config_differences"]["generations"] == 2
    with pytest.raises(ConfigError, match="source_config needs a source"):
        dataclasses.replace(make_cell("unit", "scratch", "savee", (), "audio", SMOKE), source_config=SMOKE)


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------
def test_clear_errors_for_bad_parameters():
    with pytest.raises(ConfigError, match="unknown corpus 'iemocap'"):
        make_cell("unit", "scratch", "iemocap")
    with pytest.raises(ConfigError, match="unknown protocol 'random'"):
        make_cell("unit", "scratch", "savee", protocol="random")
    with pytest.raises(ConfigError, match="unknown method"):
        make_cell("unit", "distil", "savee")
    with pytest.raises(ConfigError, match="needs at least one source"):
        make_cell("unit", "transfer", "savee")
    with pytest.raises(ConfigError, match="EMO-DB .* has no video"):
        make_cell("unit", "scratch", "emodb", modality="video")
    with pytest.raises(ConfigError, match="cannot also be a source"):
        make_cell("unit", "transfer", "savee", ("savee",))
    with pytest.raises(ConfigError, match="experiment id"):
        make_cell("../escape", "scratch", "savee")
    with pytest.raises(ConfigError, match="not a registered experiment"):
        experiment_cells("mine")
    with pytest.raises(ConfigError, match="has no run with method='finetune'"):
        experiment_cells("table1_visual_transfer", method="finetune")
    with pytest.raises(ConfigError, match="unknown data mode"):
        resolve_data_kind("savee", "fake")


def test_data_modes(tmp_path, monkeypatch):
    assert resolve_data_kind("savee", "auto") == "synthetic"
    with pytest.raises(MissingDataError, match="MTL_DATA_ROOT"):
        resolve_data_kind("emodb", "real")
    with pytest.raises(MissingDataError, match="no synthetic ravdess"):
        resolve_data_kind("ravdess", "auto")
    with pytest.raises(MissingDataError, match="no synthetic"):
        make_cell("unit", "transfer", "emodb", ("ravdess",), data="synthetic")
    (tmp_path / "no-data" / "emodb").mkdir(parents=True)
    assert resolve_data_kind("emodb", "auto") == "real"
    assert resolve_data_kind("emodb", "synthetic") == "synthetic"
    cell = make_cell("unit", "scratch", "emodb")
    assert cell.data == (("emodb", "real"),)
    assert make_cell("unit", "scratch", "emodb", data="synthetic").key != cell.key


def test_registry_entries_are_complete_and_valid():
    assert set(EXPERIMENTS) == {"table1_visual_transfer", "table2_visual_baselines", "table3_speech_transfer",
                                "table4_speech_baselines", "fig9_10_pathways", "convergence", "real_recordings"}
    for entry in EXPERIMENTS.values():
        assert entry.notebook.endswith(".md") and entry.paper_ref and entry.title and entry.classes_rule
        for run in entry.runs:
            target, sources = resolve_classes(run.target, run.sources, run.classes, partners=entry.partners(run.target))
            assert target and (sources or not run.sources)
    table2 = {(c.method, c.target): c.classes for c in
              experiment_cells("table2_visual_baselines", config=SMOKE, data="synthetic", folds=[0])}
    assert table2[("scratch", "savee")] == SIX  # the baseline uses the transfer's classes
    pathways = experiment_cells("fig9_10_pathways", config=SMOKE, data="synthetic")
    assert [(c.method, c.sources, c.target, c.fold) for c in pathways] == [("transfer", ("enterface",), "savee", 0)]


def test_real_recordings_needs_the_real_corpora():
    with pytest.raises(MissingDataError, match="MTL_DATA_ROOT"):
        experiment_cells("real_recordings", config=SMOKE)


@pytest.mark.realdata
def test_provenance_names_the_real_copies(real_data_root, monkeypatch):
    from mtl.corpora import load_corpus

    monkeypatch.setenv("MTL_DATA_ROOT", str(real_data_root))
    emodb = corpus_provenance("emodb", "real", real_data_root / "emodb", load_corpus("emodb"), SMOKE)
    assert emodb["n_files"] == 535 and emodb["kind"] == "real"
    assert emodb["root"] == "$MTL_DATA_ROOT/emodb"  # no path of this machine
    assert "processed copy" in emodb["copy"] and "22.05 kHz" in emodb["copy"]
    ravdess = corpus_provenance("ravdess", "real", real_data_root / "ravdess-speech-16k", load_corpus("ravdess"),
                                SMOKE)
    assert ravdess["n_files"] == 1440 and "16 kHz mono FLAC" in ravdess["copy"]
    again = corpus_provenance("emodb", "real", real_data_root / "emodb", load_corpus("emodb"), SMOKE)
    assert again["content_hash"] == emodb["content_hash"] != ravdess["content_hash"]


def test_provenance_of_a_copy_with_unusable_files_names_the_good_ones(tmp_path):
    import soundfile as sf

    from mtl.corpora import load_corpus

    wav = tmp_path / "emodb" / "wav"
    wav.mkdir(parents=True)
    for name in ("03a01Fa", "03a02Wa", "08a01Na", "09a02Ta"):
        sf.write(wav / f"{name}.wav", np.full(16000, 0.1, np.float32), 16000, subtype="PCM_16")
    good = corpus_provenance("emodb", "real", wav.parent, load_corpus("emodb", root=wav.parent), SMOKE)
    (wav / "03a01Aa.wav").write_bytes(b"")  # among the probed files: it failed every cell
    sf.write(wav / "03a04Aa.wav", np.full(16000, 0.1, np.float32), 16000, subtype="PCM_16")
    header = bytearray((wav / "03a04Aa.wav").read_bytes())
    header[24:28] = (1).to_bytes(4, "little")  # a header claiming 1 Hz
    (wav / "03a04Aa.wav").write_bytes(bytes(header))
    table = load_corpus("emodb", root=wav.parent)
    (wav / "09a02Ta.wav").unlink()  # gone between reading the table and describing the copy
    bad = corpus_provenance("emodb", "real", wav.parent, table, SMOKE)
    assert bad["copy"] == good["copy"] == "real EMO-DB: mono WAV at 16 kHz"
    assert bad["n_files"] == 6 and bad["content_hash"] != good["content_hash"]


def test_experiments_table_lists_the_registry():
    table = ex.experiments_table()
    assert list(table["id"]) == list(EXPERIMENTS)
    assert table.set_index("id").loc["real_recordings", "protocols"] == "paper, speaker"


def test_speaker_protocol_with_four_speakers_runs_leave_one_speaker_out(fakes):
    cells = experiment_cells("unit", "scratch", "savee", config=SMOKE.replace(folds=5), protocols="speaker")
    assert [c.fold for c in cells] == [0, 1, 2, 3]
    record = run_cell(cells[3])
    assert (record["n_folds"], record["n_folds_requested"], record["protocol"]) == (4, 5, "speaker")
    assert len(record["test_speakers"]) == 1
    assert "leave-one-speaker-out" in record["notes"][0]
    with pytest.raises(ConfigError, match="fold 4 does not exist"):
        run_cell(make_cell("unit", "scratch", "savee", config=SMOKE.replace(folds=5), protocol="speaker", fold=4))


def test_run_cell_end_to_end_on_tiny_synthetic_corpora(tmp_path_factory, monkeypatch):
    """The real pipeline: synthetic corpora -> features -> source model -> transfer/finetune -> records."""
    # The session's shared cache: tiny synthetic corpora generated by other tests are reused.
    monkeypatch.setenv("MTL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    for corpus in ("savee", "enterface"):  # warm the feature cache in-process (no worker start-up)
        load_dataset(corpus, "audio", SMOKE, data="synthetic", n_jobs=1)
    records = run_experiment("table3_speech_transfer", target="savee", config=SMOKE, folds=[0], data="synthetic",
                             progress=False)
    assert len(records) == 1
    record = records[0]
    assert (record["method"], record["sources"], record["target"], record["modality"]) == (
        "transfer", ["enterface"], "savee", "audio")
    assert record["data"]["kinds"] == {"savee": "synthetic", "enterface": "synthetic"}
    assert "synthetic SAVEE (tiny" in record["data"]["provenance"]["savee"]["copy"]
    assert record["data"]["provenance"]["savee"]["root"] == "$MTL_CACHE_DIR/synthetic/savee-tiny-seed0"
    assert str(cache_dir()) not in json.dumps(record)
    assert 0.0 <= record["metrics"]["accuracy"] <= 1.0
    assert len(record["metrics"]["confusion"]) == len(SIX)
    assert record["metrics"]["utterance"]["n_utterances"] >= 1
    assert [p["generation"] for p in record["learning_curve"]] == list(range(1, SMOKE.generations + 1))
    assert record["learning_curve"][-1]["val_accuracy"] is not None
    pathways = record["pathways"]
    assert len(pathways["source"]["initial_population"]) == SMOKE.population
    assert len(pathways["source"]["final_population"]) == SMOKE.population
    assert len(pathways["target"]["initial_population"]) == SMOKE.population
    assert np.array(pathways["target"]["best"]).shape == (SMOKE.n_layers, SMOKE.max_active)
    assert len(pathways["target"]["frozen"]) == SMOKE.n_layers
    assert isinstance(record["timings"]["source_seconds"], float)

    path = results_dir() / "runs" / "table3_speech_transfer" / f"{record['cell_key']}.json"
    stamp = path.stat().st_mtime_ns
    assert run_experiment("table3_speech_transfer", target="savee", config=SMOKE, folds=[0], data="synthetic",
                          progress=False) == records
    assert path.stat().st_mtime_ns == stamp  # loaded, not recomputed

    finetune = run_cell(make_cell("unit", "finetune", "savee", ("enterface",), "audio", SMOKE, data="synthetic"))
    assert finetune["timings"]["source_cached"] is True  # the source model trained above
    assert finetune["pathways"]["target"]["best"] == pathways["source"]["best"]
    assert finetune["pathways"]["target"]["frozen"] is None


def test_seeds_and_folds_are_checked_before_any_cell_runs():
    with pytest.raises(ConfigError, match="seed must be between 0 and 2"):
        experiment_cells("convergence", config=SMOKE, data="synthetic", seeds=[-1], folds=[0])
    with pytest.raises(ConfigError, match=r"seeds must be integers, got 1.5 \(float\)"):
        experiment_cells("convergence", config=SMOKE, data="synthetic", seeds=[1.5], folds=[0])
    with pytest.raises(ConfigError, match="seeds is empty"):
        experiment_cells("convergence", config=SMOKE, data="synthetic", seeds=[])
    with pytest.raises(ConfigError, match=r"fold 2 does not exist; the paper protocol gives 2 folds \(0 to 1\)"):
        experiment_cells("convergence", config=SMOKE, data="synthetic", folds=[0, 2])
    with pytest.raises(ConfigError, match="fold must be >= 0"):
        experiment_cells("convergence", config=SMOKE, data="synthetic", folds=[-1])


def test_a_grid_requires_only_the_corpora_of_its_chosen_runs(tmp_path):
    (tmp_path / "no-data" / "emodb").mkdir(parents=True)  # real EMO-DB is here, RAVDESS is not
    cells = ex.grid_cells(["real_recordings"], profile="smoke", methods=["scratch"], corpora=["emodb"],
                          data="real", protocols=["paper"], folds=[0])
    assert [(c.method, c.target, c.data) for c in cells] == [("scratch", "emodb", (("emodb", "real"),))]
    with pytest.raises(MissingDataError, match="RAVDESS"):
        ex.grid_cells(["real_recordings"], profile="smoke", methods=["transfer"], data="real", protocols=["paper"],
                      folds=[0])

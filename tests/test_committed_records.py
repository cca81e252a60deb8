"""Every committed real-data record is still read, with the numbers it was committed with.

``tests/data/committed_records.json`` is a snapshot of ``results/real/``
taken before the experiment layer was restructured: per folder, the number of
record files, of records read and of summary groups, and every record's
metrics by cell key. A refactoring that loses a record, drops it from a
summary group or changes one of its numbers fails here. Records re-keyed by
the migration to today's key formula (:func:`mtl.records.migrate_folder`)
are found by the key they had, kept as ``former_cell_key``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from mtl.io import read_json
from mtl.results import METRIC_COLUMNS, load_records, summarise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "real"
SNAPSHOT = json.loads((Path(__file__).parent / "data" / "committed_records.json").read_text(encoding="utf-8"))


def _number(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


@pytest.mark.parametrize("folder", sorted(SNAPSHOT))
def test_committed_records_are_read_with_their_numbers(folder):
    expected = SNAPSHOT[folder]
    records = load_records(RESULTS / folder)
    assert len(list((RESULTS / folder).glob("*.json"))) == expected["n_files"]
    assert len(records) == expected["n_records"]
    assert len(summarise(records)) == expected["n_summary_rows"], "summary groups split or merged"
    former = {}
    for path in (RESULTS / folder).glob("*.json"):
        record = read_json(path)
        former[record["cell_key"]] = record.get("former_cell_key", record["cell_key"])
    found = {former[row["cell_key"]]: {m: _number(row[m]) for m in METRIC_COLUMNS} for _, row in records.iterrows()}
    assert set(found) == set(expected["records"])
    for key, metrics in expected["records"].items():
        assert found[key] == pytest.approx(metrics, abs=1e-12, nan_ok=True), key


def test_the_snapshot_covers_every_committed_folder():
    assert sorted(SNAPSHOT) == sorted(p.name for p in RESULTS.iterdir() if p.is_dir())


def test_each_chapter_shows_every_committed_record_of_its_own():
    """What the two chapters that read committed records show: the counts of the snapshot, nothing lost."""
    from mtl.ablation import NESTED, load_ablation_records, plan_ablation, records_overview
    from mtl.chapters import committed_real_records

    real = committed_real_records()  # the *Real recordings* chapter
    assert len(real.frame) == SNAPSHOT["real_recordings"]["n_records"]
    assert f"**{len(real.frame)} committed record(s)**" in real._repr_markdown_()

    plan = plan_ablation()  # the ablation chapter: its grid, its inner runs, and the G = 200 anchors
    shown = records_overview(pd.concat([plan.records(), load_ablation_records(experiment=NESTED)], ignore_index=True))
    runs = shown.groupby("experiment")["runs"].sum().to_dict()
    assert runs == {"ablation": SNAPSHOT["ablation"]["n_records"],
                    "ablation-nested": SNAPSHOT["ablation-nested"]["n_records"],
                    # the anchors: Real recordings' scratch and transfer runs (the ablation has no fine-tuning)
                    # at the ablation's own seed
                    "real_recordings": int((real.frame["method"].isin(["scratch", "transfer"])
                                            & (real.frame["seed"] == 0)).sum())}


DEFAULT = ROOT / "results" / "default"
VOLATILE = ("timings", "created", "code", "reused_from", "former_cell_key")
"""Fields that say when, where and by which commit a record was made, not what it holds."""


def _content(record: dict) -> dict:
    """A record without its volatile fields and without the wall times of its learning curve."""
    content = {k: v for k, v in record.items() if k not in VOLATILE}
    content["learning_curve"] = [{k: v for k, v in point.items() if k not in ("elapsed", "seconds")}
                                 for point in record["learning_curve"]]
    return content


DATA_RESULTS = ("data", "learning_curve", "metrics", "pathways")
"""Fields that follow from the bytes of the corpus copy (its content hash, and every number trained on it)."""


@pytest.mark.skipif(not DEFAULT.is_dir(), reason="no records of the default profile are committed")
def test_a_committed_cell_computed_again_gives_its_record_back_exactly(tmp_path, monkeypatch):
    """The cheapest committed cell (scratch on synthetic SAVEE speech, fold 0) is recomputed from nothing.

    The default book's numbers are only worth showing if they can be recomputed: the corpus is generated
    again from its seed, its features extracted again, the cell trained again with one thread (as the
    sweep that computed it), and every field of the record but its timings must come back.

    Bit for bit, that holds on a machine whose floating point takes the same paths as the one that
    computed the record: the generator's numpy transcendentals and BLAS kernels are chosen by CPU
    (AVX2 or AVX-512), so another CPU can write a copy with other bytes from the same seed, and its
    record names that copy by another content hash. Then the test asks what still holds: every field
    that does not follow from those bytes comes back, and the cell computed twice on this machine
    gives one record.
    """
    from mtl.records import read_record, record_cell
    from mtl.sweep import computed_records

    candidates = [read_record(p) for p in sorted(DEFAULT.glob("*/*.json"))]
    committed = next(r for r in candidates if (r["method"], r["target"], r["modality"], r["fold"]) ==
                     ("scratch", "savee", "audio", 0))
    cell = record_cell(committed)
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "no-checkout")  # nothing committed to reuse
    again = computed_records([cell], scheduler="inline", threads_per_task=1)[0]
    assert "reused_from" not in again
    copy_then, copy_now = (r["data"]["provenance"]["savee"]["content_hash"] for r in (committed, again))
    if copy_now == copy_then:
        assert _content(again) == _content(committed)
        return

    def beside_the_data(record):
        return {k: v for k, v in _content(record).items() if k not in DATA_RESULTS}

    assert beside_the_data(again) == beside_the_data(committed)
    provenance = {k: v for k, v in again["data"]["provenance"]["savee"].items() if k != "content_hash"}
    assert provenance == {k: v for k, v in committed["data"]["provenance"]["savee"].items() if k != "content_hash"}
    Path(cell.record_path).unlink()  # the same copy once more: this machine must give the same record
    twice = computed_records([cell], scheduler="inline", threads_per_task=1)[0]
    assert "reused_from" not in twice
    assert _content(twice) == _content(again)


def _register_demonstration_cards() -> None:
    """Register the cards of the chapter "Your own corpus" whose data are here (RAVDESS's needs the real corpus)."""
    from mtl.corpora import resolve_corpus
    from mtl.errors import MtlError
    from mtl.own_corpus import CARDS, demo_runs, demo_speech_card

    demo_runs()
    demo_speech_card("synthetic")  # generates the EMO-DB stand-in
    for card in sorted(CARDS.glob("*.yaml")):
        try:
            resolve_corpus(card)
        except MtlError:  # its root is absent on this machine
            pass


@pytest.mark.skipif(not DEFAULT.is_dir(), reason="no records of the default profile are committed")
@pytest.mark.usefixtures("cards_stay_in_their_test")
def test_committed_default_records_are_whole_cells_named_by_their_keys():
    from mtl.corpora import CORPORA
    from mtl.multitask.experiment import record_multitask_cell
    from mtl.records import read_record, record_cell

    _register_demonstration_cards()
    paths = sorted(DEFAULT.glob("*/*.json"))
    assert paths
    for path in paths:
        record = read_record(path)  # validated, current layout
        if all(corpus in CORPORA for corpus in (record["target"], *record["sources"])):
            cell = record_multitask_cell(record) if "pathnet_cell_key" in record else record_cell(record)
            assert path.stem == record["cell_key"] == cell.key, path
        else:  # a card whose data are not here (RAVDESS's): its cell can be made where they are
            assert path.stem == record["cell_key"], path
        assert record["config"]["generations"] == 200 and record["config"]["frame_step"] == 5, path
        text = path.read_text(encoding="utf-8")
        assert str(ROOT) not in text and '"/tmp/' not in text, f"{path}: a path of the machine that computed it"


# Every set of cells a chapter plans at the default profile: its own grid, and the grids its exercises run.
DEFAULT_BOOK_PLANS = [
    *[dict(experiment=e) for e in ("table1_visual_transfer", "table2_visual_baselines", "table3_speech_transfer",
                                   "table4_speech_baselines", "fig9_10_pathways", "convergence")],
    dict(experiment="table4_speech_baselines", corpora=["enterface->savee"]),  # exercise t3-scratch
    dict(experiment="table4_speech_baselines", corpora=["enterface->savee"], protocol="utterance"),  # t4-protocol
]


# The chapter "Your own corpus" (mtl.own_corpus.plan_own_corpus): the demonstration, and exercise own-sequences.
OWN_CORPUS_PLANS = [dict(), dict(corpora=f"enterface->{ROOT / 'data' / 'cards' / 'face_sequences.yaml'}",
                               protocol="utterance")]


@pytest.mark.skipif(not DEFAULT.is_dir(), reason="no records of the default profile are committed")
@pytest.mark.usefixtures("cards_stay_in_their_test")
@pytest.mark.parametrize("copy", ["real", "synthetic"])
def test_the_default_book_computes_no_cell(copy, tmp_path, monkeypatch, request):
    """``make book`` reads every record it shows: with the real EMO-DB and RAVDESS (as CI has them) and without."""
    from mtl.chapters import plan_notebook
    from mtl.multitask.chapter import plan_related
    from mtl.own_corpus import plan_own_corpus
    from mtl.records import stored_record

    if copy == "real":
        monkeypatch.setenv("MTL_DATA_ROOT", str(request.getfixturevalue("real_data_root")))
    else:
        monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-real-data"))
    cells = [cell for plan in DEFAULT_BOOK_PLANS for cell in plan_notebook(**plan, profile="default").cells]
    cells += [cell for plan in OWN_CORPUS_PLANS for cell in plan_own_corpus(**plan, profile="default").cells]
    cells += plan_related(profile="default").cells  # the chapter "A related method"
    missing = [cell.describe() for cell in cells if stored_record(cell) is None]
    assert not missing, f"{len(missing)} cell(s) of the default book are not committed: {missing[:3]}"

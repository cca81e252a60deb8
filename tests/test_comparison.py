"""The paper beside ours as a chapter shows it (mtl.comparison): the tables, their notes, the figure, the box."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402

from matplotlib.figure import Figure  # noqa: E402

from mtl.comparison import compare_with_paper, compute_cost, settings_note  # noqa: E402
from mtl.config import get_profile  # noqa: E402
from mtl.results import summarise  # noqa: E402

from test_results import make_record  # noqa: E402


def _table2(profile="smoke"):
    common = dict(experiment="table2_visual_baselines", profile=profile)
    return [make_record(method="transfer", fold=0, accuracy=0.6, **common),
            make_record(method="transfer", fold=1, accuracy=0.64, **common),
            make_record(method="scratch", sources=(), fold=0, accuracy=0.5, **common),
            make_record(method="finetune", fold=0, accuracy=0.7, **common)]


def test_settings_note_says_what_differs_from_the_paper():
    assert settings_note(get_profile("paper").to_dict()) == ""
    fifth = get_profile("paper", frame_step=5, profile="default").to_dict()
    assert "every 5th video frame" in settings_note(fifth, "video")
    assert settings_note(fifth, "audio") == ""  # frames are a video setting: speech runs have the paper's
    assert settings_note(get_profile("default").to_dict(), "audio") == ""  # the default profile's speech is the paper's
    assert "every 5th video frame" in settings_note(get_profile("default").to_dict(), "video")
    assert settings_note(get_profile("classroom").to_dict(), "audio").startswith("demonstration numbers")
    smoke = settings_note(get_profile("smoke").to_dict(), "audio")
    assert smoke.startswith("demonstration numbers") and "generations=3 (paper 200)" in smoke
    assert "seed" not in smoke and "protocol" not in smoke


def test_demonstration_numbers_are_marked_in_the_table_beside_the_papers():
    comparison = compare_with_paper(_table2(), "table2")
    accuracy = comparison.accuracy()
    ran_on = accuracy[("", "Ours ran on")].tolist()
    savee = [text for text, target in zip(ran_on, comparison.frame["Target"]) if target == "savee"]
    assert savee and all(text.startswith("synthetic, smoke profile ") for text in savee)
    assert [t for t in ran_on if t != "—"] and len({t[-1] for t in ran_on if t != "—"}) == 1  # one marker
    notes = comparison.notes()
    assert sum(n.startswith("demonstration numbers") for n in notes) == 1  # said once for the table
    paper = compare_with_paper(_table2("paper"), "table2").accuracy()[("", "Ours ran on")]
    assert "synthetic, the paper's settings" in paper.tolist()


def test_a_long_caveat_is_one_note_per_table_not_a_cell_of_every_row():
    records = _table2("paper")
    caveat = "real SAVEE: a processed copy, " + "every file resampled and trimmed; " * 3
    for record in records:
        record["data"]["provenance"]["savee"]["copy"] = caveat
    comparison = compare_with_paper(records, "table2")
    copies = comparison.provenance()["Corpus copy"].tolist()
    assert all(caveat not in str(c) for c in copies)
    assert len({c for c in copies if str(c).startswith("real SAVEE")}) == 1
    html = comparison._repr_html_()
    assert html.count(caveat.replace("'", "&#x27;").strip()[:40]) == 1
    assert "<details" in html and "what each reproduced number ran on" in html
    assert html.count('class="mtl-scroll"') == 2  # each table scrolls in its own box


def test_finding_is_computed_from_the_records():
    finding = str(compare_with_paper(_table2(), "table2").finding())
    assert "transfer 0.62 ± 0.03 (the paper: 0.94)" in finding
    assert "fine-tuning 0.70 (the paper: 0.85)" in finding and "chance is 0.17 (6 classes)" in finding
    assert "The paper's order is transfer > scratch > fine-tuning; here it is fine-tuning > transfer > scratch" \
        in finding
    assert "synthetic stand-ins" in finding and "Demonstration numbers" in finding
    html = compare_with_paper(_table2(), "table2").finding()._repr_html_()
    assert 'class="admonition' in html and "What this shows" in html
    assert "nothing to show" in str(compare_with_paper([], "table1").finding())


def test_a_summary_is_enough_and_the_figure_draws_the_rows_run():
    comparison = compare_with_paper(summarise(_table2()), "table2")
    assert re.search(r"smoke profile .$", comparison.accuracy()[("", "Ours ran on")].iloc[0])
    assert isinstance(comparison.figure(), Figure)
    assert len(comparison.run_only().frame) == 3


def test_the_cost_of_the_records_counts_each_cell_and_each_source_model_once():
    def record(fold, seconds, source_seconds=None, experiment="table1_visual_transfer"):
        built = make_record(fold=fold, experiment=experiment)  # transfer from enterface: one source model
        built["timings"].update(target_seconds=seconds, source_seconds=source_seconds, source_cached=True)
        built["source"] = {**(built["source"] or {}), "key": "enterface-source"}
        return built

    records = [record(0, 10.0, 100.0), record(0, 10.0, 100.0, "table2_visual_baselines"),  # one cell, two tables
               record(1, 20.0, 100.0)]  # the same source model again
    assert compute_cost(records) == 10.0 + 20.0 + 100.0

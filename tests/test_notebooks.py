"""The chapters' notebooks (mtl.notebooks): their structure, names, smoke run, and how they refuse bad parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from papermill.exceptions import PapermillExecutionError

from mtl.notebooks import (EXECUTED, INJECTED_TAG, NOTEBOOK_DIR, PARAMETERS_TAG, VALIDATION_TAG, NotebookFailed,
                           list_notebooks, read_notebook, run_notebook, toc_notebooks)
from mtl.config import PAPER_SYMBOLS

from test_book import smoke_book

ROOT = Path(__file__).resolve().parents[1]
# Chapters that read committed real-data records: their grid is not the book's profile, so none is injected.
RECORD_READERS = {"real_recordings", "ablation", "where_089"}
EXPERIMENT_PARAMETERS = {"data_root", "corpora", "modality", "classes", "data", "profile", "seeds", "folds",
                         "protocol", "population", "generations", "steps_per_pathway", "lr", "batch_size"}
# A notebook's own parameters besides the Config fields it declares.
OWN_PARAMETERS = {"data_root", "corpora", "modality", "classes", "data", "seeds", "records_dir",
                  "grid_profile", "factors", "budget", "overrides"}


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    return smoke_book(tmp_path_factory.getbasetemp())


def _cells(path: Path) -> list:
    return read_notebook(path).cells


def test_notebooks_and_table_of_contents_agree():
    assert sorted(toc_notebooks()) == sorted(p.stem for p in NOTEBOOK_DIR.glob("*.md"))


def test_notebook_sources_are_myst_markdown_only():
    # The .md file is the notebook people edit; a stray .ipynb beside it would be a second copy.
    assert not list(NOTEBOOK_DIR.glob("*.ipynb"))
    for path in NOTEBOOK_DIR.glob("*.md"):
        assert read_notebook(path).metadata["jupytext"]["text_representation"]["format_name"] == "myst", path


@pytest.mark.parametrize("info", list_notebooks(), ids=lambda info: info.name)
def test_notebook_structure(info):
    cells = _cells(info.path)
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    code = [c for c in cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs must stay empty in the repo"
    tags = [c.metadata.get("tags", []) for c in code]
    assert PARAMETERS_TAG in tags[0], "the first code cell holds the parameters"
    assert VALIDATION_TAG in tags[1], "the cell after the parameters checks them through the library"
    assert "mtl" in code[1].source
    if info.experiments and info.name not in RECORD_READERS:
        assert set(info.parameters) == EXPERIMENT_PARAMETERS
        assert info.parameters["profile"] == "default"
        assert all(value is None for name, value in info.parameters.items() if name != "profile")


def test_parameters_are_config_fields_or_the_notebooks_own():
    # One name per setting: no notebook declares a paper symbol (S, G, T ...); those are aliases only.
    from mtl.config import Config

    fields = set(Config.__dataclass_fields__)
    for info in list_notebooks():
        assert set(info.parameters) <= fields | OWN_PARAMETERS, info.name
        assert not set(info.parameters) & set(PAPER_SYMBOLS), info.name


def test_shared_text_is_included_from_book_shared():
    # A passage shown by several chapters lives once, in book/_shared/, and every include resolves.
    included = {}
    for path in NOTEBOOK_DIR.glob("*.md"):
        for target in re.findall(r"^```\{include\} (\S+)$", path.read_text(encoding="utf-8"), re.M):
            assert target.startswith("/_shared/"), f"{path.name}: include {target} relative to book/"
            assert (ROOT / "book" / target.lstrip("/")).is_file(), f"{path.name}: {target} does not exist"
            included.setdefault(target, []).append(path.stem)
        text = path.read_text(encoding="utf-8")
        for shared in (ROOT / "book" / "_shared").glob("*.md"):
            first_line = shared.read_text(encoding="utf-8").splitlines()[0]
            assert shared.name == "README.md" or first_line not in text, f"{path.name} copies {shared.name}"
    assert all(len(chapters) >= 2 for chapters in included.values()), included


def test_every_notebook_ran_end_to_end_at_the_smoke_profile(book):
    executed = book.html_dir.parents[1] / "book" / EXECUTED
    for name in toc_notebooks():
        cells = _cells(executed / f"{name}.ipynb")
        code = [c for c in cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{name}: a cell did not run"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
        injected = [c for c in code if INJECTED_TAG in c.metadata.get("tags", [])]
        if name not in RECORD_READERS:
            assert injected and "profile = \"smoke\"" in injected[0].source
            assert "hide-input" in injected[0].metadata["tags"]
    assert {run.name for run in book.runs} == set(toc_notebooks())
    assert all(run.status == "ok" and run.seconds > 0 for run in book.runs)


@pytest.mark.parametrize("parameters, message", [
    ({"corpora": ["enterface->nosuchcorpus"]}, "unknown corpus 'nosuchcorpus'"),
    ({"protocol": "random"}, "unknown protocol 'random'"),
    ({"corpora": ["enterface->emodb"], "classes": ["boredom", "neutral"]}, "share no emotion class"),
    ({"data_root": "/nonexistent/corpora"}, "data_root '/nonexistent/corpora' does not exist"),
], ids=["unknown-corpus", "unknown-protocol", "no-shared-class", "missing-data-root"])
def test_bad_parameters_stop_at_the_parameter_check(tmp_path, parameters, message):
    with pytest.raises(NotebookFailed) as failure:
        run_notebook("table3_speech_transfer", tmp_path / "out.ipynb", {"profile": "smoke", **parameters})
    assert "failed at the parameter check" in str(failure.value) and message in str(failure.value)
    cause = failure.value.__cause__
    assert isinstance(cause, PapermillExecutionError) and message in cause.evalue
    failed = _cells(tmp_path / "out.failed.ipynb")
    failing = next(c for c in failed if c.cell_type == "code" and c.source == cause.source)
    assert VALIDATION_TAG in failing.metadata["tags"]
    assert not (tmp_path / "out.ipynb").exists()

"""The classroom: exercises with hidden solutions in the chapters, and the teaching chapter.

Exercises are sphinx-exercise directives at the end of each chapter's
notebook; a solution with code is the gated form (``solution-start`` … code
cells … ``solution-end``), so papermill runs its code as part of the chapter.
The smoke book (built once, shared with tests/test_book.py) shows that every
solution ran and that the HTML folds every solution away. Running each
chapter at the ``classroom`` profile needs the full-size synthetic corpora
(minutes to generate in a fresh cache), so that test runs only when
``MTL_CLASSROOM_CACHE`` names a cache that holds them; it checks that every
solution ran (the chapters' times, measured on a shared machine, are in
book/teaching.md, not asserted).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mtl.notebooks import EXECUTED, NOTEBOOK_DIR, read_notebook, run_notebook

from test_book import smoke_book

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT_CHAPTERS = ("table1_visual_transfer", "table2_visual_baselines", "table3_speech_transfer",
                       "table4_speech_baselines", "fig9_10_pathways", "convergence")
CHAPTERS_WITH_EXERCISES = ("pathnet_evolution", "data", *EXPERIMENT_CHAPTERS, "own_corpus", "related_method",
                           "where_089")

_EXERCISE = re.compile(r"^`{3,}\{exercise\}\s*\n:label: (\S+)", re.M)
_SOLUTION = re.compile(r"^`{3,}\{solution(?:-start)?\} (\S+)\s*\n((?::\w+: .*\n)*)", re.M)


def _exercises(cells) -> list[str]:
    return [label for cell in cells if cell.cell_type == "markdown" for label in _EXERCISE.findall(cell.source)]


def _solution_code(cells) -> dict[str, list]:
    """The code cells of every gated solution, by the label of its exercise."""
    solutions: dict[str, list] = {}
    current = None
    for cell in cells:
        if cell.cell_type == "markdown":
            if "{solution-end}" in cell.source:
                current = None
            for label, _ in _SOLUTION.findall(cell.source):
                current = label
                solutions.setdefault(label, [])
        elif current is not None:
            solutions[current].append(cell)
    return solutions


@pytest.mark.parametrize("name", CHAPTERS_WITH_EXERCISES)
def test_chapter_ends_with_exercises_each_with_a_hidden_solution(name):
    cells = read_notebook(NOTEBOOK_DIR / f"{name}.md").cells
    exercises = _exercises(cells)
    assert len(exercises) >= 2, f"{name}: {len(exercises)} exercise(s)"
    headings = [c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert headings[-1].startswith("## Exercises"), f"{name}: the exercises are the chapter's last section"
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    solutions = {label: options for label, options in _SOLUTION.findall(text)}
    assert set(solutions) == set(exercises), f"{name}: every exercise has one solution"
    assert all(":class: dropdown" in options for options in solutions.values()), f"{name}: solutions fold away"
    assert all(_solution_code(cells).get(label) for label in exercises), f"{name}: every solution runs code"
    assert text.count("{solution-start}") == text.count("{solution-end}")


def test_exercise_labels_are_unique_in_the_book():
    labels = [label for name in CHAPTERS_WITH_EXERCISES
              for label in _exercises(read_notebook(NOTEBOOK_DIR / f"{name}.md").cells)]
    assert len(labels) == len(set(labels))


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    return smoke_book(tmp_path_factory.getbasetemp())


@pytest.mark.book
def test_every_solution_ran_in_the_smoke_book(book):
    executed = book.html_dir.parents[1] / "book" / EXECUTED
    for name in CHAPTERS_WITH_EXERCISES:
        for label, cells in _solution_code(read_notebook(executed / f"{name}.ipynb").cells).items():
            for cell in cells:
                assert cell.execution_count is not None, f"{name}: solution {label} did not run"
                errors = [o for o in cell.outputs if o.output_type == "error"]
                assert not errors, f"{name}: solution {label}: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.book
@pytest.mark.parametrize("name", CHAPTERS_WITH_EXERCISES)
def test_built_chapter_hides_its_solutions_by_default(book, name):
    html = (book.html_dir / EXECUTED / f"{name}.html").read_text(encoding="utf-8")
    exercises = re.findall(r'<div class="exercise admonition"', html)
    solutions = re.findall(r'<div class="solution ([^"]*)"', html)
    assert len(exercises) >= 2 and len(solutions) == len(exercises), name
    # sphinx-togglebutton folds every admonition of class "dropdown" until it is clicked.
    assert all("dropdown" in classes.split() for classes in solutions), solutions
    assert "togglebutton" in html, f"{name}: the toggle script is not loaded"


@pytest.mark.book
def test_teaching_chapter_is_built(book):
    html = (book.html_dir / "teaching.html").read_text(encoding="utf-8")
    assert "Teaching with this book" in html and "Misconceptions" in html


def test_teaching_chapter_names_every_chapter_with_exercises_and_its_time():
    text = (ROOT / "book" / "teaching.md").read_text(encoding="utf-8")
    times = dict(re.findall(r"^\| `(\w+)` +\| +(\d+) s", text, re.M))
    assert set(times) >= set(CHAPTERS_WITH_EXERCISES)
    for name in CHAPTERS_WITH_EXERCISES:
        assert f"mtl run {name}" in text or name in times


@pytest.mark.skipif(not os.environ.get("MTL_CLASSROOM_CACHE"),
                    reason="set MTL_CLASSROOM_CACHE to a cache holding the full synthetic corpora "
                           "(minutes to generate) to run every chapter at the classroom profile")
@pytest.mark.parametrize("name", CHAPTERS_WITH_EXERCISES)
def test_chapter_and_its_solutions_run_at_the_classroom_profile(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_CACHE_DIR", os.environ["MTL_CLASSROOM_CACHE"])
    run = run_notebook(name, tmp_path / f"{name}.ipynb", {"profile": "classroom"})
    solutions = _solution_code(read_notebook(run.output).cells)
    assert len(solutions) >= 2 and all(c.execution_count is not None for cells in solutions.values() for c in cells)

"""The `mtl` command: listing, running one notebook, building the book; clear errors."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from mtl.book import build_book
from mtl.config import parse_value
from mtl.notebooks import NotebookFailed, toc_notebooks
from mtl.cli import EXIT_USAGE, build_parser, main


def test_list_names_every_notebook_and_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in toc_notebooks():
        assert name in out
    assert "Table 1, Fig. 7" in out
    assert "table4_speech_baselines" in out


def test_console_script_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "mtl.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("list", "run", "book"):
        assert command in result.stdout


def test_unknown_notebook_is_a_usage_error_listing_the_choices(capsys):
    assert main(["run", "table9"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no notebook or experiment named 'table9'" in err
    assert "table1_visual_transfer" in err


def test_unknown_parameter_is_refused_before_running(capsys, tmp_path):
    assert main(["run", "table1_visual_transfer", "-p", "nope", "3", "--output", str(tmp_path / "x.ipynb")]) \
        == EXIT_USAGE
    err = capsys.readouterr().err
    assert "has no parameter(s) 'nope'" in err and "the parameters are" in err and "generations" in err
    assert not (tmp_path / "x.ipynb").exists()


@pytest.fixture
def executed(monkeypatch):
    """Stand-in for papermill: records the parameters each run would inject, executes nothing."""
    import papermill

    calls = []

    def execute_notebook(source, output, parameters, **_):
        calls.append(parameters)
        nbformat.write(nbformat.read(source, as_version=4), output)

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return calls


@pytest.mark.parametrize("name", ["G", "generations"])
def test_a_paper_symbol_and_its_config_field_name_set_the_same_parameter(name, executed, tmp_path):
    output = tmp_path / "out.ipynb"
    assert main(["run", "table1_visual_transfer", "-p", name, "50", "--profile", "smoke",
                 "--output", str(output)]) == 0
    assert executed == [{"generations": 50, "profile": "smoke"}]
    assert output.is_file()


def test_a_setting_given_twice_or_not_declared_is_a_usage_error(executed, capsys, tmp_path):
    output = str(tmp_path / "out.ipynb")
    assert main(["run", "table1_visual_transfer", "-p", "G", "5", "-p", "generations", "6", "--output", output]) \
        == EXIT_USAGE
    assert "'generations' is given twice" in capsys.readouterr().err
    assert main(["run", "table1_visual_transfer", "-p", "K", "3", "--output", output]) == EXIT_USAGE
    assert "has no parameter(s) 'K' (tournament)" in capsys.readouterr().err
    assert executed == []


def test_book_maps_symbols_to_field_names_for_every_notebook(monkeypatch, tmp_path):
    import papermill

    calls = []

    def execute_notebook(source, output, parameters, **_):
        calls.append(parameters)
        raise RuntimeError("not executed")  # the build stops before rendering anything

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    with pytest.raises(NotebookFailed, match="notebooks failed"):
        build_book("smoke", only=["pathnet_evolution", "real_recordings"], output_dir=tmp_path,
                   parameters={"T": 2}, echo=lambda _: None)
    assert calls == [{"profile": "smoke", "steps_per_pathway": 2}, {}]


def test_unknown_profile_and_missing_name_exit_with_usage():
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["book", "--profile", "huge"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run"])


def test_book_only_rejects_names_outside_the_book(capsys, tmp_path):
    assert main(["book", "--only", "nope", "--output-dir", str(tmp_path)]) == EXIT_USAGE
    assert "not a notebook of the book: nope" in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("0.02", 0.02), ("true", True), ("None", None), ("null", None),
    ("[0, 1, 2]", [0, 1, 2]), ("savee", "savee"), ("[enterface->savee]", ["enterface->savee"]),
    ("1e-3", 0.001), ("-2E1", -20.0), ("e5", "e5"),
])
def test_parameter_values_are_read_as_yaml(text, value):
    assert parse_value(text) == value


def test_run_executes_a_notebook_with_parameters(tmp_path, capsys):
    output = tmp_path / "real.ipynb"
    assert main(["run", "real_recordings", "-p", "records_dir", str(tmp_path), "--output", str(output)]) == 0
    cells = nbformat.read(output, as_version=4).cells
    injected = next(c for c in cells if "injected-parameters" in c.metadata.get("tags", []))
    assert f'records_dir = "{tmp_path}"' in injected.source
    assert "No real-data records are committed yet" in output.read_text()
    assert "ok in" in capsys.readouterr().out


def test_run_reports_a_failing_notebook_with_exit_1(tmp_path, capsys):
    missing = tmp_path / "absent"
    assert main(["run", "real_recordings", "-p", "records_dir", str(missing),
                 "--output", str(tmp_path / "x.ipynb")]) == 1
    err = capsys.readouterr().err
    assert "failed at the parameter check" in err and "does not exist" in err

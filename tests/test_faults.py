"""The fault-injection suite of issue 11: bad corpora, corrupted caches, checkpoints, records and source
models, bad command-line values and unguarded scripts, each with the outcome the issue asks for (a clear
error naming the file or the value, or the item discarded and recomputed; never a crash, a hang or a
silently wrong result).

Each section below is self-contained: its fixtures and helpers carry the section's prefix.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


# --- CLI values and processes ---
_PROCESS_TIMEOUT_S = 180  # a hang is what these tests catch: far above the few seconds they take


def _process_script(folder: Path, n_files: int, guarded: bool, n_jobs: int | None) -> Path:
    """A user's script that extracts the features of ``n_files`` short WAVs, with or without the main guard."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    wavs = folder / "wav"
    wavs.mkdir()
    for index in range(n_files):
        sf.write(wavs / f"f{index:03d}.wav", (0.1 * rng.standard_normal(4000)).astype(np.float32), 16000)
    body = textwrap.dedent(f"""\
        import pathlib

        import pandas as pd
        from mtl.config import get_profile
        from mtl.features.cache import build_features

        files = sorted(pathlib.Path({str(wavs)!r}).glob("*.wav"))
        table = pd.DataFrame({{"path": [str(f) for f in files], "modality": "audio", "corpus": "x",
                               "emotion": "anger"}})
        features = build_features(table, get_profile("smoke"), cache_dir={str(folder / "cache")!r},
                                  n_jobs={n_jobs!r}, progress=False)
        print("samples", len(features))
        """)
    if guarded:
        body = "def main():\n" + textwrap.indent(body, "    ") + '\n\nif __name__ == "__main__":\n    main()\n'
    script = folder / "user_script.py"
    script.write_text(body)
    return script


def _process_run(script: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a session of its own; a hang fails the test and kills the script and its workers."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environ, cwd=script.parent, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=_PROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{script.name} hung: no result after {_PROCESS_TIMEOUT_S} s")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_process_unguarded_script_fails_with_the_guard_to_add_instead_of_hanging(tmp_path):
    # 300 files: the size at which extraction goes parallel by default (IN_PROCESS_BELOW); before the fix
    # the spawned workers re-ran the script and waited forever on the cache lock their parent held.
    script = _process_script(tmp_path, 300, guarded=False, n_jobs=None if (os.cpu_count() or 1) > 1 else 2)
    result = _process_run(script)
    assert result.returncode != 0
    assert f"{script}: mtl was called while a worker process was importing this script" in result.stderr
    assert 'if __name__ == "__main__":' in result.stderr


def test_process_guarded_script_extracts_in_parallel(tmp_path):
    # The check must not fire in a worker that has finished importing the script and runs its task.
    result = _process_run(_process_script(tmp_path, 4, guarded=True, n_jobs=2))
    assert result.returncode == 0, result.stderr
    assert "samples" in result.stdout


def test_process_no_lock_is_awaited_while_a_worker_imports_its_parent_script(tmp_path, monkeypatch):
    from mtl.errors import MtlError
    from mtl.io import check_main_guard, file_lock

    check_main_guard()  # the main process: nothing to refuse
    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(MtlError, match="__main__"):
        with file_lock(tmp_path / "held.lock"):
            pass


_CLI_SWEEP = ["sweep", "--experiments", "convergence", "--methods", "scratch", "--profile", "smoke", "--data",
              "synthetic", "--scheduler", "inline", "--no-progress"]


@pytest.fixture
def _cli_notebooks(monkeypatch):
    """Stand-in for papermill: the parameters of every notebook `mtl run` would execute; executes nothing."""
    import papermill

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda source, output, parameters, **_: calls.append(parameters))
    return calls


def _cli_usage_error(argv, capsys) -> str:
    """Run ``mtl argv``; assert it exits 2 with one line on stderr, and return that line."""
    from mtl.cli import EXIT_USAGE, main

    assert main(argv) == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("text, shown", [("true", "True (bool)"), ("1.5", "1.5 (float)"), ("abc", "'abc' (str)")])
@pytest.mark.parametrize("command", ["sweep", "run"])
def test_cli_a_parameter_of_the_wrong_type_exits_2_before_anything_runs(command, text, shown, tmp_path, capsys,
                                                                       _cli_notebooks):
    # Before: `-p G true` ran with G=1, `-p G 1.5` failed late with a TypeError, `-p G abc` raised a raw one.
    argv = (_CLI_SWEEP if command == "sweep" else ["run", "convergence", "--output", str(tmp_path / "x.ipynb")])
    line = _cli_usage_error(argv + ["-p", "G", text], capsys)
    assert line == f"mtl {command}: error: G (generations) must be an integer, got {shown}"
    assert _cli_notebooks == [] and not (tmp_path / "results").exists()


def test_cli_a_value_out_of_range_for_a_notebook_exits_2_before_its_kernel_starts(tmp_path, capsys, _cli_notebooks):
    # Before: the notebook failed at its parameter check, and `mtl run` exited 1.
    line = _cli_usage_error(["run", "convergence", "-p", "G", "-5", "--output", str(tmp_path / "x.ipynb")], capsys)
    assert line == "mtl run: error: generations (G) must be >= 0, got -5"
    assert _cli_notebooks == []


@pytest.mark.parametrize("option, message", [
    (["--seeds", "-1"], "seed must be between 0 and 2**32 - 1"),
    (["--seeds", "4294967296"], "seed must be between 0 and 2**32 - 1"),
    (["--folds", "7"], "fold 7 does not exist; the paper protocol gives 2 folds (0 to 1) for savee"),
    (["--folds", "-1"], "fold must be >= 0, got -1"),
])
def test_cli_bad_seeds_and_folds_exit_2_before_anything_runs(option, message, capsys):
    # Before: `--seeds -1` was accepted and each of its cells failed only once it ran.
    from mtl.paths import results_dir

    assert message in _cli_usage_error(_CLI_SWEEP + option, capsys)
    assert not (results_dir() / "runs" / "convergence").exists()


def test_cli_a_run_requires_only_the_corpora_it_uses(tmp_path, monkeypatch, capsys):
    # Before: scratch on EMO-DB demanded RAVDESS, which only the experiment's other runs read.
    from mtl.cli import main

    (tmp_path / "data" / "emodb").mkdir(parents=True)
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "data"))
    assert main(["sweep", "--experiments", "real_recordings", "--methods", "scratch", "--corpora", "emodb",
                 "--data", "real", "--profile", "smoke", "--protocols", "paper", "--folds", "0", "--dry-run"]) == 0
    assert "1 cells, 0 done" in capsys.readouterr().out

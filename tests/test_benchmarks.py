"""The benchmark scripts start: every piece of the GPU check runs on the CPU in its quick form (nothing timed)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pathway_benchmark_runs_every_row_on_the_device_path(tmp_path, capsys):
    output = tmp_path / "rows.json"
    assert _script("bench_pathnet").main(["--device", "cpu", "--quick", "--threads", "1", "--repeats", "1",
                                          "--output", str(output)]) == 0
    table = capsys.readouterr().out
    for row in ("(a) mtl session", "(e) mtl conv session", "(f) per-module conv loop", "(g) conv roofline"):
        assert row in table
    assert '"device": "cpu"' in output.read_text()


def test_the_fold_benchmark_runs_a_quick_fold(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-data"))
    assert _script("bench_fold").main(["--device", "auto", "--quick", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "T read literally" in out and "fold done" in out


@pytest.mark.parametrize("script", ["gpu_check.sh", "bench_book.sh"])
def test_the_shell_scripts_parse_and_refuse_unknown_arguments(script):
    path = BENCHMARKS / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    refused = subprocess.run(["bash", str(path), "--no-such-option"], capture_output=True, text=True)
    assert refused.returncode == 2 and "unknown argument" in refused.stderr


def test_the_multitask_benchmark_runs_both_rows(tmp_path, capsys):
    output = tmp_path / "multitask.json"
    assert _script("bench_multitask").main(["--device", "cpu", "--quick", "--threads", "1", "--widths", "4",
                                            "--repeats", "1", "--output", str(output)]) == 0
    table = capsys.readouterr().out
    assert "(a) mtl step" in table and "(b) plain convolution" in table
    rows = __import__("json").loads(output.read_text())["rows"]
    assert all(row["samples_per_s"] > 0 and row["peak_memory_mb"] > 0 for row in rows)

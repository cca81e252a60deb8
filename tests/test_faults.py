"""The fault-injection suite of issue 11: bad corpora, and stored state damaged in each of the ways a user meets.

Every test builds its bad input or damages a stored file, then asserts the
outcome the issue asks for: a message naming the file and the reason, the item
skipped (the batch going on without it) or discarded and recomputed, never
used silently, no crash, no hang. One section per kind of fault, each
self-contained (its own fixtures and helpers, prefixed by its section).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from mtl import media, runner
from mtl.cells import make_cell
from mtl.config import get_profile
from mtl.corpora import load_corpus
from mtl.datasets import load_dataset
from mtl.experiments import cells_table
from mtl.features import build_features
from mtl.io import write_json
from mtl.pathnet.state import StateFileError, load_state, save_state
from mtl.paths import cache_dir
from mtl.records import RecordError, read_record, write_record
from mtl.results import load_records
from mtl.sweep import run_sweep

# --- bad inputs (corpora, media, features) ---

BAD_INPUT_SMOKE = get_profile("smoke")
BAD_INPUT_GOOD = ("03a01Fa", "03a02Wa", "08a01Na", "09a02Ta", "10a01Fa", "16b10Wb")
"""EMO-DB names of the good files of the bad corpus."""


def _bad_input_tone(seconds: float = 1.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + noise).astype(np.float32)


@pytest.fixture
def bad_input_deadline():
    """Fail (rather than hang the suite) if a test of this section blocks, e.g. by opening a FIFO."""
    def expire(signum, frame):
        raise TimeoutError("a bad input made the pipeline hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def bad_input_emodb(tmp_path, monkeypatch, bad_input_deadline):
    """An EMO-DB copy under a data root of its own: six good files and one of each bad input; the expected reasons."""
    wav = tmp_path / "data" / "emodb" / "wav"
    wav.mkdir(parents=True)
    for seed, name in enumerate(BAD_INPUT_GOOD):
        sf.write(wav / f"{name}.wav", _bad_input_tone(seed=seed), 16000, subtype="PCM_16")
    (wav / "03a01Aa.wav").write_bytes(b"")  # sorts first: the provenance probe opens it
    sf.write(wav / "03a04Aa.wav", _bad_input_tone(), 16000, subtype="PCM_16")
    header = bytearray((wav / "03a04Aa.wav").read_bytes())
    header[24:32] = struct.pack("<II", 1, 2)  # 1 Hz: resampling made 47,057 segments of 32 KB
    (wav / "03a04Aa.wav").write_bytes(bytes(header))
    sf.write(wav / "03a05Aa.wav", _bad_input_tone() * 40, 16000, subtype="FLOAT")
    sf.write(wav / "03a07Aa.wav", _bad_input_tone(2.0), 16000, subtype="PCM_16")
    whole = (wav / "03a07Aa.wav").read_bytes()
    (wav / "03a07Aa.wav").write_bytes(whole[:len(whole) // 2])
    sf.write(wav / "03b01Aa.wav", _bad_input_tone(4.0), 16000, subtype="PCM_16")
    monkeypatch.setattr(media, "MAX_SECONDS", 3.0)  # stands for a file of hours
    os.mkfifo(wav / "03b02Aa.wav")
    os.symlink(wav / "gone.wav", wav / "03b03Aa.wav")
    os.symlink(wav / "03b10Aa.wav", wav / "03b09Aa.wav")
    os.symlink(wav / "03b09Aa.wav", wav / "03b10Aa.wav")
    odd = os.path.join(os.fsencode(wav), b"take\xff")
    os.mkdir(odd)
    os.rename(os.fsencode(wav / "03a01Fa.wav"), os.path.join(odd, b"03a01Fa.wav"))  # a good file, a bad folder
    sf.write(wav / "03a01Fa.wav", _bad_input_tone(seed=9), 16000, subtype="PCM_16")
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "data"))
    expected = {
        "03a01Aa.wav": "empty file (0 bytes)",
        "03a04Aa.wav": "sample rate 1 Hz outside 4000-192000 Hz",
        "03a05Aa.wav": "above 4 (MAX_PEAK)",
        "03a07Aa.wav": "truncated: the header declares 64000 bytes of audio, the file holds 31978",
        "03b01Aa.wav": "audio of 4 s is longer than 3 s (MAX_SECONDS)",
        "03b02Aa.wav": "not a regular file but a FIFO (named pipe)",
        "03b03Aa.wav": "dangling symlink",
        "03b09Aa.wav": "symlink loop",
        "03b10Aa.wav": "symlink loop",
        "take\\xff/03a01Fa.wav": "path is not valid UTF-8",
    }
    return wav, expected


def _bad_input_reasons(base: Path, *reports: list[tuple[str, str]]) -> dict[str, str]:
    return {os.path.relpath(path, base): reason for report in reports for path, reason in report}


def test_bad_input_corpus_every_bad_file_is_reported_and_the_good_ones_are_used(bad_input_emodb):
    wav, expected = bad_input_emodb
    table = load_corpus("emodb", root=wav.parent)
    features, provenance = load_dataset("emodb", config=BAD_INPUT_SMOKE, data="real", n_jobs=1)
    reported = _bad_input_reasons(wav, table.attrs["skipped"], features.skipped)
    assert set(reported) == set(expected)
    for name, reason in expected.items():
        assert reason in reported[name], name
    used = {Path(p).name for p in features.samples["path"]}
    assert used == {f"{name}.wav" for name in BAD_INPUT_GOOD}
    assert len(features) == 2 * len(BAD_INPUT_GOOD) and np.isfinite(features.X).all()  # 1 s: two segments each
    assert provenance["copy"] == "real EMO-DB: mono WAV at 16 kHz"
    skipped_csv = (features.folder / "skipped.csv").read_text(encoding="utf-8")
    assert "03a07Aa.wav" in skipped_csv and "03a04Aa.wav" in skipped_csv


def test_bad_input_memory_error_names_the_file_and_the_batch_goes_on(tmp_path, monkeypatch):
    from mtl.features import audio

    for name in BAD_INPUT_GOOD[:3]:
        sf.write(tmp_path / f"{name}.wav", _bad_input_tone(), 16000, subtype="PCM_16")
    table = load_corpus("emodb", root=tmp_path)
    real = audio.utterance_segments

    def exhausted(path, config):
        if Path(path).name == "03a02Wa.wav":
            raise MemoryError("std::bad_alloc")
        return real(path, config)

    monkeypatch.setattr(audio, "utterance_segments", exhausted)
    features = build_features(table, BAD_INPUT_SMOKE, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert [(Path(p).name, r) for p, r in features.skipped] == [
        ("03a02Wa.wav", "out of memory while extracting this file (MemoryError: std::bad_alloc)")]
    assert set(features.samples["utterance"]) == {"03a01Fa", "08a01Na"}


def test_bad_input_manifest_stays_in_its_folder(tmp_path, bad_input_deadline):
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    for folder in (corpus, elsewhere):
        folder.mkdir()
        sf.write(folder / "a.wav", _bad_input_tone(), 16000, subtype="PCM_16")
    os.mkfifo(corpus / "pipe.wav")
    (corpus / "list.csv").write_text("path,emotion,speaker\n"
                                     "a.wav,happy,p1\n"
                                     "../elsewhere/a.wav,sad,p2\n"
                                     f"{elsewhere / 'a.wav'},angry,p3\n"
                                     "pipe.wav,fear,p4\n")
    table = load_corpus(corpus / "list.csv")
    assert table["speaker"].tolist() == ["p1"]
    reasons = [reason for _, reason in table.attrs["skipped"]]
    assert ["outside the manifest's folder" in r for r in reasons] == [True, True, False]
    assert reasons[2] == "list.csv line 5: not a regular file but a FIFO (named pipe)"
    features = build_features(table, BAD_INPUT_SMOKE, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert len(features) == 2 and features.skipped == []
    allowed = load_corpus(corpus / "list.csv", allow_outside=True)
    assert allowed["speaker"].tolist() == ["p1", "p2"]  # line 4 names the same file as line 3: a duplicate


def test_bad_input_truncated_clip_is_reported_for_video_and_audio(tmp_path, bad_input_deadline):
    from mtl.synthetic import faces

    rng = np.random.default_rng(0)
    frames, _, _ = faces.render_clip(faces.random_identity(rng), "happiness", 40, rng)
    sound = _bad_input_tone(1.6, 16000)
    whole = media.write_avi(tmp_path / "whole.avi", frames, 25, sound, 16000).read_bytes()
    (tmp_path / "cut.avi").write_bytes(whole[:int(len(whole) * 0.6)])
    (tmp_path / "list.csv").write_text("path,emotion,speaker\nwhole.avi,happy,p1\ncut.avi,happy,p2\n")
    table = load_corpus(tmp_path / "list.csv")
    for modality in ("video", "audio"):
        features = build_features(table.assign(modality=modality), BAD_INPUT_SMOKE, cache_dir=tmp_path / "cache",
                                  n_jobs=1, progress=False)
        assert set(features.samples["speaker"]) == {"p1"}, modality
        ((path, reason),) = features.skipped
        assert path.endswith("cut.avi") and reason.startswith("truncated: the header declares 40 video frames")


# --- stored state (caches, checkpoints, source models, records) ---
STORED_SMOKE = get_profile("smoke")
STORED_SEED = 11  # cells of their own: their checkpoints and source models are not other tests'


@pytest.fixture
def stored_runs(tmp_path, monkeypatch):
    """This test's results folder; the session's cache (tiny synthetic corpora, built once); no real data."""
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-data"))
    monkeypatch.setattr("mtl.records.project_root", lambda: tmp_path / "checkout")  # nothing committed to reuse
    return tmp_path / "results" / "runs"


def stored_cell(method="scratch", **changes):
    sources = ("emodb",) if method != "scratch" else ()
    return make_cell("stored", method, "savee", sources, "audio", STORED_SMOKE.replace(**changes),
                     seed=STORED_SEED, data="synthetic")


def stored_nan(path, keep_digest=True):
    """Overwrite every floating tensor of a state file with NaN, in place; optionally drop its digest (old files)."""
    payload = torch.load(path, weights_only=True)
    for tensor in payload["tensors"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    if not keep_digest:
        payload.pop("digest"), payload.pop("nonfinite")
    torch.save(payload, path)


def stored_garbage(path):
    path.write_bytes(b"\x00" * 64)


@pytest.fixture
def stored_table(tmp_path):
    """Three utterances (1 s, 2 segments each) and one empty file (skipped)."""
    rng = np.random.default_rng(0)
    rows = []
    for k, emotion in enumerate(("anger", "fear", "sadness")):
        path = tmp_path / f"utt{k}.wav"
        sf.write(path, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
        rows.append({"path": str(path), "modality": "audio", "speaker": f"s{k}", "emotion": emotion})
    (tmp_path / "empty.wav").write_bytes(b"")
    rows.append({"path": str(tmp_path / "empty.wav"), "modality": "audio", "speaker": "s9", "emotion": "fear"})
    return pd.DataFrame(rows)


def stored_build(table, folder):
    return build_features(table, STORED_SMOKE, cache_dir=folder, n_jobs=1, progress=False)


def test_stored_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_json(tmp_path / "meta.json", {"a": 1})
        save_state(tmp_path / "state.pt", "test/1", {}, {"w": torch.zeros(2)})
    finally:
        os.umask(old)
    for name in ("meta.json", "state.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


def test_stored_feature_cache_without_meta_json_is_rebuilt(stored_table, tmp_path, caplog):
    first = stored_build(stored_table, tmp_path / "features")
    (first.folder / "meta.json").unlink()
    (first.folder.parent / f".tmp-{first.key}-deadbeef").mkdir()  # left by a killed build
    with caplog.at_level(logging.WARNING, logger="mtl.features"):
        again = stored_build(stored_table, tmp_path / "features")
    assert again.built and "incomplete (no meta.json)" in caplog.text and str(first.folder) in caplog.text
    assert [p.name for p in first.folder.parent.iterdir() if p.name.startswith(".tmp-")] == []
    assert not stored_build(stored_table, tmp_path / "features").built  # and stays usable
    np.testing.assert_array_equal(again.X, first.X)


def _drop_sample_row(folder):
    lines = (folder / "samples.csv").read_text().splitlines(keepends=True)
    (folder / "samples.csv").write_text("".join(lines[:2] + lines[3:]))


def _zero_half_of_x(folder):
    X = np.load(folder / "X.npy", mmap_mode="r+")
    X[: len(X) // 2] = 0
    X.flush()


def _drop_digests_and_a_row(folder):
    """A cache of the layout before digests (meta.json without them), one samples.csv row deleted."""
    meta = json.loads((folder / "meta.json").read_text())
    meta.pop("digests")
    (folder / "meta.json").write_text(json.dumps(meta))
    _drop_sample_row(folder)


@pytest.mark.parametrize("damage, reason", [
    (_drop_sample_row, "samples.csv differs from the digest"),
    (_zero_half_of_x, "X.npy differs from the digest"),
    (_drop_digests_and_a_row, "samples.csv has 5 rows for the 6 samples"),
    (lambda folder: (folder / "skipped.csv").write_text("path,reason\n"), "skipped.csv differs from the digest"),
])
def test_stored_feature_cache_parts_are_cross_checked(stored_table, tmp_path, caplog, damage, reason):
    first = stored_build(stored_table, tmp_path / "features")
    X, samples = np.array(first.X), first.samples.copy()
    damage(first.folder)
    with caplog.at_level(logging.WARNING, logger="mtl.features"):
        again = stored_build(stored_table, tmp_path / "features")
    assert again.built and reason in caplog.text and str(first.folder) in caplog.text
    np.testing.assert_array_equal(again.X, X)
    pd.testing.assert_frame_equal(again.samples, samples)  # labels line up with their samples again


def test_stored_state_file_digest_and_finite_check(tmp_path):
    path = tmp_path / "state.pt"
    diverged = {"w": torch.tensor([1.0, float("nan")]), "steps": torch.tensor([3])}
    save_state(path, "test/1", {"n": 1}, diverged)  # NaN when saved (a diverged run): loads as it was
    assert torch.isnan(load_state(path, "test/1")[1]["w"]).any()
    save_state(path, "test/1", {"n": 1}, {"w": torch.ones(3), "steps": torch.tensor([3])})
    payload = torch.load(path, weights_only=True)
    payload["tensors"]["w"][0] = 2.0
    torch.save(payload, path)
    with pytest.raises(StateFileError, match=f"{path}: content digest mismatch"):
        load_state(path, "test/1")
    stored_nan(path, keep_digest=False)  # a file of the layout before digests
    with pytest.raises(StateFileError, match=r"NaN or infinite values in tensor\(s\) w"):
        load_state(path, "test/1")


class _StoredStop(BaseException):
    """Stops a training right after its first checkpoint, as a kill would."""


def _stored_interrupted(cell, monkeypatch):
    from mtl.pathnet import evolution

    save = evolution.save_state

    def save_then_stop(*args, **kwargs):
        save(*args, **kwargs)
        raise _StoredStop

    monkeypatch.setattr(evolution, "save_state", save_then_stop)
    with pytest.raises(_StoredStop):
        runner.run(cell)
    monkeypatch.setattr(evolution, "save_state", save)
    return runner.checkpoint_path(cell.key)


@pytest.mark.parametrize("damage", [stored_nan, lambda path: stored_nan(path, keep_digest=False), stored_garbage],
                         ids=["nan-weights", "nan-weights-old-layout", "garbage"])
def test_stored_corrupt_checkpoint_is_discarded_and_recomputed(stored_runs, monkeypatch, caplog, damage):
    cell = stored_cell(generations=4, checkpoint_every=2)
    clean = runner.run(cell)
    cell.record_path.unlink()
    checkpoint = _stored_interrupted(cell, monkeypatch)
    damage(checkpoint)
    with caplog.at_level(logging.WARNING, logger="mtl.runner"):
        again = runner.run(cell)
    assert "discarding an unusable checkpoint" in caplog.text and str(checkpoint) in caplog.text
    assert again["metrics"] == clean["metrics"]  # the run from nothing, not one resumed from the damage


@pytest.mark.parametrize("damage", [
    lambda weights, sidecar: stored_nan(weights),
    lambda weights, sidecar: stored_nan(weights, keep_digest=False),
    lambda weights, sidecar: stored_garbage(weights),
    lambda weights, sidecar: sidecar.write_text(sidecar.read_text()[:40]),
], ids=["nan-weights", "nan-weights-old-layout", "garbage", "truncated-sidecar"])
def test_stored_corrupt_source_model_is_discarded_and_retrained(stored_runs, caplog, damage):
    cell = stored_cell("transfer")
    model, info = runner.source_model(cell)
    folder = cache_dir() / "sources"
    damage(folder / f"{cell.source_key}.pt", folder / f"{cell.source_key}.json")
    with caplog.at_level(logging.WARNING, logger="mtl.runner"):
        retrained, again = runner.source_model(cell)
    assert f"discarding the cached source model {cell.source_key}" in caplog.text and not again["cached"]
    assert all(torch.isfinite(p).all() for p in retrained.net.parameters())
    assert again["best_fitness"] == info["best_fitness"]
    assert runner.source_model(cell)[1]["cached"]  # once: no retraining loop


def _stored_truncate(path):
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _stored_edit_a_number(path):
    record = json.loads(path.read_text())
    record["metrics"]["accuracy"] = 0.99
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("damage, reason", [(_stored_truncate, "not a readable record (JSONDecodeError"),
                                            (_stored_edit_a_number, "content digest mismatch")])
def test_stored_damaged_record_is_reported_and_recomputed(stored_runs, caplog, damage, reason):
    cell = stored_cell()
    clean = runner.run(cell)
    path = cell.record_path
    damage(path)
    with pytest.raises(RecordError, match=f"{re.escape(str(path))}: .*{re.escape(reason)}"):
        read_record(path)
    with caplog.at_level(logging.WARNING):
        frame = load_records(stored_runs)
        assert not cells_table([cell])["done"].any()
    assert frame.empty and [file for file, _ in frame.attrs["unreadable"]] == [str(path)]
    assert reason.split(" (")[0] in caplog.text and str(path) in caplog.text
    report = run_sweep([cell], scheduler="inline", progress=False)
    assert report.counts == {"done": 1}  # recomputed, not counted as done
    assert read_record(path)["metrics"] == clean["metrics"]
    assert path.with_name(path.name + ".invalid").is_file()  # the damaged file, kept for inspection
    damage(path)
    assert runner.run(cell)["metrics"] == clean["metrics"]  # `mtl run`'s path: no JSONDecodeError


def test_stored_records_carry_a_digest_and_old_ones_stay_valid(stored_runs, tmp_path):
    record = runner.run(stored_cell())
    written = json.loads(stored_cell().record_path.read_text())
    assert "digest" not in record and len(written["digest"]) == 40
    old = {k: v for k, v in written.items() if k != "digest"}  # as records before digests (the committed ones)
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert read_record(tmp_path / "old.json") == record
    write_record(tmp_path / "keys.json", {**record, "by_fold": {2: 0.5, 10: 0.25}})  # keys read back as strings
    assert read_record(tmp_path / "keys.json")["by_fold"] == {"2": 0.5, "10": 0.25}
    assert os.fspath(tmp_path) not in json.dumps(written)  # corpus folders relative to their roots
    assert all(p["root"].startswith("$MTL_CACHE_DIR/synthetic/") for p in written["data"]["provenance"].values())


def test_stored_dry_run_counts_records_stored_elsewhere(stored_runs, tmp_path):
    cell = stored_cell()
    record = runner.run(cell)
    committed = tmp_path / "checkout" / "results" / "default" / "stored"
    write_record(committed / cell.record_path.name, record)
    cell.record_path.unlink()
    assert cells_table([cell])["done"].all() and not cell.record_path.exists()
    assert run_sweep([cell], scheduler="inline", progress=False).counts == {"reused": 1}


# --- CLI values and processes ---

ROOT = Path(__file__).resolve().parents[1]
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
    assert "If you ran a script of your own" in result.stderr.strip().splitlines()[-1]  # the parent too, in words


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


@pytest.mark.parametrize("name, value, message", [
    ("G", "-5", "generations (G) must be >= 0, got -5"),
    ("seeds", "[0, -1]", "seed must be between 0 and 2**32 - 1"),
    ("seeds", "abc", "seed must be an integer"),
])
def test_cli_a_value_out_of_range_for_a_notebook_exits_2_before_its_kernel_starts(name, value, message, tmp_path,
                                                                                  capsys, _cli_notebooks):
    # Before: the notebook failed at its parameter check, and `mtl run` exited 1.
    argv = ["run", "convergence", "-p", name, value, "--output", str(tmp_path / "x.ipynb")]
    assert message in _cli_usage_error(argv, capsys)
    assert _cli_notebooks == []


@pytest.mark.parametrize("option, message", [
    (["--seeds", "-1"], "seed must be between 0 and 2**32 - 1"),
    (["--seeds", "4294967296"], "seed must be between 0 and 2**32 - 1"),
    (["--folds", "7"], "fold 7 does not exist; the paper protocol gives 2 folds (0 to 1) for savee"),
    (["--folds", "-1"], "fold must be >= 0, got -1"),
    (["-p", "seed", "3"], "seed is set per cell of the grid, not as a parameter: use seeds"),  # was ignored
])
def test_cli_bad_seeds_and_folds_exit_2_before_anything_runs(option, message, capsys, tmp_path, monkeypatch):
    # Before: `--seeds -1` was accepted and each of its cells failed only once it ran.
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))  # its own: other tests' records are elsewhere
    assert message in _cli_usage_error(_CLI_SWEEP + option, capsys)
    assert not (tmp_path / "results").exists()


def test_cli_a_run_requires_only_the_corpora_it_uses(tmp_path, monkeypatch, capsys):
    # Before: scratch on EMO-DB demanded RAVDESS, which only the experiment's other runs read.
    from mtl.cli import main

    (tmp_path / "data" / "emodb").mkdir(parents=True)
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "data"))
    assert main(["sweep", "--experiments", "real_recordings", "--methods", "scratch", "--corpora", "emodb",
                 "--data", "real", "--profile", "smoke", "--protocols", "paper", "--folds", "0", "--dry-run"]) == 0
    assert "1 cells, 0 done" in capsys.readouterr().out

"""The fault-injection suite of issue 11: bad corpora, corrupted caches, checkpoints, records and source models.

Each section builds its own bad inputs in a temporary folder and asserts the
outcome the issue asks for: a message naming the file and the reason, the
batch going on without the bad item, nothing silently wrong, no crash, no hang.
"""

from __future__ import annotations

import os
import signal
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mtl import media
from mtl.config import get_profile
from mtl.corpora import load_corpus
from mtl.datasets import load_dataset
from mtl.features import build_features

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

"""Log-Mel segment images (paper §3.2): parameters, shapes, the short-utterance rule, bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from mtl import media
from mtl.config import Config, get_profile
from mtl.errors import BadInputError
from mtl.features.audio import (DELTA_WIDTH, MAX_PEAK, audio_info, feature_params, frame_params, load_audio, log_mel,
                                segment_count, segment_image, utterance_segments)

CONFIG = Config()


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    return (amplitude * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_frame_parameters_are_the_papers():
    assert frame_params(CONFIG) == (400, 160, 512)  # 25 ms Hamming, 10 ms hop, next power of two
    assert CONFIG.segment_hop == 34
    params = feature_params(CONFIG)
    assert params["n_mels"] == 64 and params["fmin"] == 20.0 and params["fmax"] == 8000.0
    assert feature_params(get_profile("smoke")) == params  # profiles do not change the features


def test_log_mel_matches_librosa_with_fixed_reference():
    librosa = pytest.importorskip("librosa")
    signal = np.random.default_rng(1).standard_normal(16000) * 0.1
    mine = log_mel(signal, CONFIG)
    assert mine.shape == (64, 1 + (16000 - 400) // 160) and mine.dtype == np.float32
    # librosa frames n_fft=512 samples with the 400-sample window centred: pad 56 to align frame i at 160 i.
    reference = librosa.power_to_db(
        librosa.feature.melspectrogram(y=np.pad(signal, 56), sr=16000, n_fft=512, win_length=400, hop_length=160,
                                       window="hamming", center=False, n_mels=64, fmin=20, fmax=8000),
        ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(mine, reference[:, :mine.shape[1]], atol=1e-3)


def test_segments_overlap_by_30_frames_and_carry_static_delta_deltadelta():
    logmel = log_mel(tone(2.0), CONFIG)  # 198 frames -> starts 0, 34, 68, 102
    images = segment_image(logmel, CONFIG)
    assert images.shape == (4, 64, 64, 3) and images.dtype == np.float32
    assert segment_count(logmel.shape[1], CONFIG) == 4
    np.testing.assert_array_equal(images[1, :, :, 0], logmel[:, 34:98])
    np.testing.assert_array_equal(images[0, :, 34:, :], images[1, :, :30, :])  # deltas over the whole utterance
    assert np.abs(images[..., 1]).max() > 0 and np.abs(images[..., 2]).max() > 0


def test_short_utterance_rule():
    logmel = log_mel(tone(0.3), CONFIG)  # 28 frames: one segment, padded
    n = logmel.shape[1]
    (image,) = segment_image(logmel, CONFIG)
    np.testing.assert_array_equal(image[:, :n, 0], logmel)
    assert np.all(image[:, n:, 0] == logmel.min()) and np.all(image[:, n:, 1:] == 0)
    assert segment_count(DELTA_WIDTH - 1, CONFIG) == 0 and segment_count(DELTA_WIDTH, CONFIG) == 1
    assert segment_count(64, CONFIG) == 1 and segment_count(97, CONFIG) == 1 and segment_count(98, CONFIG) == 2
    with pytest.raises(ValueError, match="at least 9"):
        segment_image(logmel[:, :8], CONFIG)


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    """Bad and odd audio files, written at test time."""
    folder = tmp_path_factory.mktemp("data_bad")
    rng = np.random.default_rng(2)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + rng.bytes(40))
    (folder / "corrupt.flac").write_bytes(rng.bytes(300))
    (folder / "corrupt.avi").write_bytes(b"RIFF" + rng.bytes(500))
    (folder / "notes.txt").write_text("not audio")
    sf.write(folder / "zero_length.wav", np.zeros(0, np.float32), 16000)
    sf.write(folder / "silence.wav", np.zeros(16000, np.float32), 16000)
    nan = tone(1.0)
    nan[100:110] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(folder / "short.wav", tone(0.08), 16000)
    for rate in (8000, 22050, 44100, 48000):
        sf.write(folder / f"rate{rate}.wav", tone(1.5, rate), rate)
    mono = tone(1.5)
    sf.write(folder / "stereo.wav", np.stack([mono, 0.5 * mono], axis=1), 16000)
    sf.write(folder / "mono.flac", mono, 16000)
    sf.write(folder / "low_rate.wav", tone(1.0, 2000, freq=200), 2000)
    sf.write(folder / "rate_1hz.wav", tone(1.0), 16000, subtype="PCM_16")
    set_header_rate(folder / "rate_1hz.wav", 1)  # a damaged header: 16000 samples "at 1 Hz" are 4.4 hours
    sf.write(folder / "loud.wav", tone(1.0) * 30, 16000, subtype="FLOAT")  # int16 values stored as float, say
    sf.write(folder / "overs.wav", tone(1.0) * 6, 16000, subtype="FLOAT")  # peak 1.8: a float file's overs
    sf.write(folder / "complete.wav", tone(2.0), 16000, subtype="PCM_16")
    whole = (folder / "complete.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(whole[:len(whole) // 2])
    (folder / "streamed.wav").write_bytes(whole[:40] + struct.pack("<I", 0xFFFFFFFF) + whole[44:])
    return folder


def set_header_rate(path, rate: int) -> None:
    """Overwrite a PCM_16 mono WAV's sample rate (and byte rate) in its header."""
    data = bytearray(path.read_bytes())
    data[24:32] = struct.pack("<II", rate, 2 * rate)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, reason", [
    ("empty.wav", "empty file"),
    ("corrupt.wav", "cannot decode"),
    ("corrupt.flac", "cannot decode"),
    ("corrupt.avi", "cannot decode"),
    ("zero_length.wav", "zero-length"),
    ("silence.wav", "silent"),
    ("nan.wav", "NaN"),
    ("short.wav", "too short"),
    ("notes.txt", "unsupported audio file type"),
    ("absent.wav", "file not found"),
    ("low_rate.wav", "sample rate 2000 Hz outside 4000-192000 Hz"),
    ("rate_1hz.wav", "sample rate 1 Hz outside"),
    ("loud.wav", "peak 9.* full scale is above 4"),
    ("truncated.wav", "truncated: the header declares 64000 bytes of audio, the file holds 31978"),
])
def test_bad_input_names_the_file_and_the_reason(bad_folder, name, reason):
    with pytest.raises(BadInputError, match=reason) as error:
        utterance_segments(bad_folder / name, CONFIG)
    assert error.value.path.endswith(name)
    assert name in str(error.value)


def test_sanity_bounds_are_checked_from_the_header_before_decoding(bad_folder, monkeypatch):
    assert audio_info(bad_folder / "complete.wav").frames == 32000
    with pytest.raises(BadInputError, match="sample rate 1 Hz"):
        audio_info(bad_folder / "rate_1hz.wav")
    monkeypatch.setattr(media, "MAX_SECONDS", 1.5)  # the bound is read when a file is checked
    with pytest.raises(BadInputError, match=r"complete.wav: audio of 2 s is longer than 1.5 s \(MAX_SECONDS\)"):
        load_audio(bad_folder / "complete.wav", 16000)
    monkeypatch.setattr(sf, "read", lambda *args, **kwargs: pytest.fail("decoded a file its header rejects"))
    with pytest.raises(BadInputError, match="rate 1 Hz"):
        load_audio(bad_folder / "rate_1hz.wav", 16000)


def test_float_overs_are_kept_up_to_max_peak_and_a_streamed_length_is_no_truncation(bad_folder):
    assert 1.0 < np.abs(load_audio(bad_folder / "overs.wav", 16000)).max() < MAX_PEAK
    np.testing.assert_array_equal(load_audio(bad_folder / "streamed.wav", 16000),
                                  load_audio(bad_folder / "complete.wav", 16000))


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_odd_sample_rates_are_resampled(bad_folder, rate):
    signal = load_audio(bad_folder / f"rate{rate}.wav", 16000)
    assert abs(signal.size - 24000) <= 2
    images = utterance_segments(bad_folder / f"rate{rate}.wav", CONFIG)
    assert images.shape == (3, 64, 64, 3) and np.isfinite(images).all()


def test_stereo_is_mixed_to_mono(bad_folder):
    stereo = load_audio(bad_folder / "stereo.wav", 16000)
    mono = load_audio(bad_folder / "mono.flac", 16000)
    np.testing.assert_allclose(stereo, 0.75 * mono, atol=1e-4)


def test_video_sound_track_is_read(tmp_path):
    media = pytest.importorskip("mtl.media")
    frames = np.zeros((10, 64, 64, 3), np.uint8)
    speech = tone(1.0, 48000)
    media.write_avi(tmp_path / "clip.avi", frames, 25, audio=speech, sample_rate=48000)
    signal = load_audio(tmp_path / "clip.avi", 16000)
    assert abs(signal.size - 16000) <= 160
    np.testing.assert_allclose(np.sqrt(np.mean(signal ** 2)), np.sqrt(np.mean(speech ** 2)), rtol=0.05)
    assert utterance_segments(tmp_path / "clip.avi", CONFIG).shape == (2, 64, 64, 3)
    media.write_avi(tmp_path / "mute.avi", frames, 25)
    with pytest.raises(BadInputError, match="no audio track"):
        load_audio(tmp_path / "mute.avi", 16000)

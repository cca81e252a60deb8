"""Log-Mel segment images of speech, as in the paper's §3.2.

An utterance becomes ``n_segments`` images of 64 Mel bands x 64 frames x 3
channels (static, delta, delta-delta):

1. :func:`load_audio` -- decode (wav/flac/ogg via soundfile; avi/mp4/... via PyAV,
   the clip's own sound track, :func:`mtl.media.read_audio_track`), mix to mono, resample to ``config.sample_rate``
   (16 kHz) with soxr.
2. :func:`log_mel` -- 25 ms Hamming window (400 samples), 10 ms hop (160),
   FFT size the next power of two (512), 64 Mel bands 20-8000 Hz (Slaney
   area-normalised filters). Frames are *not* centred: frame ``i`` covers
   samples ``[160 i, 160 i + 400)``, so 64 frames span exactly
   10 ms x 63 + 25 ms = 655 ms as the paper says. Log scale:
   ``10 log10(max(mel_power, 1e-10))`` with a *fixed* reference 1.0 (full-scale
   input), so values are comparable across files and corpora (no per-file
   max normalisation); the floor is -100 dB.
3. :func:`segment_image` -- deltas and delta-deltas (``librosa.feature.delta``,
   width 9, "interp" edges) are computed over the *whole* utterance before
   segmenting, so a window's deltas at its edges see the neighbouring frames
   and overlapping windows agree where they overlap. Windows of 64 frames
   start every 34 frames (30 overlap); the tail after the last full window
   (fewer than 34 frames) is dropped.

Short and degenerate input (one rule each, raised as
:class:`~mtl.errors.BadInputError` naming the file and the reason):

* fewer than 9 frames (< 105 ms at 16 kHz) -- rejected: deltas need 9 frames;
* 9 to 63 frames -- one segment: the static channel is padded on the right
  with the utterance's minimum log-Mel value (its quietest level), the delta
  channels with 0 (the derivative of a constant);
* digital silence (peak below 2 LSB of 16-bit audio, 6.1e-5 full scale) --
  rejected: an all-floor image carries no emotion and would only add label noise;
* float samples far above full scale (peak above :data:`MAX_PEAK`, +12 dB) --
  rejected: the file is mis-scaled (e.g. int16 values stored as float), and
  the log-Mel scale's fixed reference would place it far from every other file;
* a sample rate outside 4-192 kHz or more than 10 minutes of sound
  (:data:`mtl.media.MIN_SAMPLE_RATE`, :data:`~mtl.media.MAX_SAMPLE_RATE`,
  :data:`~mtl.media.MAX_SECONDS`) -- rejected from the header, before
  decoding, so that a damaged header (a 32 KB file claiming 1 Hz) cannot make
  resampling run away;
* truncated files -- a WAV or AIFF whose header declares more audio than the
  file holds, a FLAC or OGG that decodes fewer frames than its header says, a
  clip short of its declared video frames (:func:`mtl.media.read_audio_track`) -- rejected;
* empty, zero-length, undecodable, NaN/inf-containing files, and paths that
  are not regular files -- rejected.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import scipy.fft
import soundfile as sf
import soxr

from mtl.config import Config
from mtl.errors import BadInputError
from mtl.media import check_audio_header, check_file, read_audio_track

FEATURE_VERSION = 1
"""Bumped whenever the extraction changes its output (part of the cache key)."""
LOG_FLOOR = 1e-10
"""Mel power floor before the log (-100 dB)."""
SILENCE_PEAK = 2.0 / 32768.0
"""Signals whose peak stays below 2 LSB of 16-bit audio are digital silence."""
MAX_PEAK = 4.0
"""Largest sample magnitude accepted, full scale (+12 dB): float audio beyond it is mis-scaled."""
DELTA_WIDTH = 9
"""Frames of the delta regression window (librosa's default); also the shortest usable utterance."""

SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".aiff", ".aif"})
CONTAINER_SUFFIXES = frozenset({".avi", ".mp4", ".mov", ".mkv", ".webm", ".mp3", ".m4a"})


def frame_params(config: Config) -> tuple[int, int, int]:
    """``(win_length, hop_length, n_fft)`` in samples at ``config.sample_rate`` (400, 160, 512 for the paper)."""
    win = int(round(config.win_ms * config.sample_rate / 1000))
    hop = int(round(config.hop_ms * config.sample_rate / 1000))
    return win, hop, 1 << (win - 1).bit_length()


def feature_params(config: Config) -> dict[str, Any]:
    """Everything that determines :func:`utterance_segments`' output (for cache keys)."""
    win, hop, n_fft = frame_params(config)
    return dict(version=FEATURE_VERSION, sample_rate=config.sample_rate, n_mels=config.n_mels,
                fmin=config.fmin, fmax=config.fmax, win_length=win, hop_length=hop, n_fft=n_fft,
                segment_frames=config.segment_frames, segment_overlap=config.segment_overlap,
                log_floor=LOG_FLOOR, delta_width=DELTA_WIDTH)


# --------------------------------------------------------------------------- loading
def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of an audio file or of a video's sound track, at ``sample_rate`` Hz.

    Parameters
    ----------
    path : .wav .flac .ogg .aiff (soundfile) or .avi .mp4 .mov .mkv .webm .mp3 .m4a (PyAV).
    sample_rate : target rate in Hz; other rates are resampled (soxr, high quality).

    Channels are averaged. Raises :class:`BadInputError` for a missing, empty,
    undecodable, truncated or zero-length file, a sample rate or length outside
    the sanity bounds (checked from the header, before decoding), NaN/inf
    samples, a peak above :data:`MAX_PEAK` and digital silence.
    """
    path = Path(path)
    check_file(path)
    suffix = path.suffix.lower()
    if suffix in SOUNDFILE_SUFFIXES:
        samples, rate = _read_soundfile(path)
    elif suffix in CONTAINER_SUFFIXES:
        samples, rate = read_audio_track(path)
    else:
        raise BadInputError(path, f"unsupported audio file type {suffix!r}")
    if samples.size == 0:
        raise BadInputError(path, "zero-length audio (no samples)")
    if not np.all(np.isfinite(samples)):
        raise BadInputError(path, "audio contains NaN or infinite samples")
    loudest = float(np.max(np.abs(samples)))
    if loudest > MAX_PEAK:
        raise BadInputError(path, f"peak {loudest:.3g} full scale is above {MAX_PEAK:g} (MAX_PEAK): float samples "
                                  "far outside [-1, 1] are mis-scaled")
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise BadInputError(path, f"silent audio (peak {peak:.2e} full scale, below 2 LSB of 16-bit audio)")
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


# libsndfile's log of a WAV/AIFF whose chunk claims more bytes than the file holds: "data : 64000 (should be 31978)"
_OVERSIZED_CHUNK = re.compile(r"^\s*(?:data|SSND) : (\d+) \(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTH = 2**31 - 4096
"""Declared chunk sizes from here up are a streaming writer's "length unknown" placeholder (ffmpeg: 0xFFFFFFFF)."""


def audio_info(path: str | Path) -> Any:
    """The header of a soundfile-readable file (``soundfile.info``: samplerate, frames, channels), checked.

    Raises :class:`BadInputError` for an unreadable header, a sample rate or
    length outside the sanity bounds (:func:`mtl.media.check_audio_header`) and
    a WAV or AIFF whose header declares more audio than the file holds (truncated).
    """
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise BadInputError(path, f"cannot decode audio ({error})") from error
    check_audio_header(path, int(info.samplerate), int(info.frames))
    for declared, held in _OVERSIZED_CHUNK.findall(info.extra_info):
        if int(declared) < _UNKNOWN_LENGTH:
            raise BadInputError(path, f"truncated: the header declares {int(declared)} bytes of audio, the file holds "
                                      f"{int(held)} ({info.frames / info.samplerate:.3f} s)")
    return info


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    info = audio_info(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise BadInputError(path, f"cannot decode audio ({error})") from error
    if len(samples) < info.frames:
        raise BadInputError(path, f"truncated: the header declares {info.frames} frames, {len(samples)} decode")
    return samples, int(rate)


# --------------------------------------------------------------------------- features
@functools.lru_cache(maxsize=8)
def _analysis(sample_rate: int, n_mels: int, fmin: float, fmax: float, win: int, n_fft: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(Hamming window zero-padded to n_fft, Mel filter bank) for one parameter set."""
    window = np.zeros(n_fft, dtype=np.float32)
    offset = (n_fft - win) // 2
    window[offset:offset + win] = np.hamming(win + 1)[:-1]  # periodic Hamming, as librosa
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float32)
    window.setflags(write=False)
    mel.setflags(write=False)
    return window, mel


def log_mel(signal: np.ndarray, config: Config) -> np.ndarray:
    """Log-Mel spectrogram in dB re full scale, shape ``(n_mels, n_frames)``, float32.

    Parameters
    ----------
    signal : mono samples at ``config.sample_rate`` Hz, full scale +-1.
    config : uses sample_rate, n_mels (64), fmin (20 Hz), fmax (8000 Hz),
        win_ms (25 ms), hop_ms (10 ms).

    ``n_frames = 1 + (len(signal) - win_length) // hop_length`` (no centring);
    a signal shorter than one window gives 0 frames.
    """
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"log_mel expects a mono 1-D signal, got shape {signal.shape}")
    win, hop, n_fft = frame_params(config)
    window, mel = _analysis(config.sample_rate, config.n_mels, config.fmin, config.fmax, win, n_fft)
    n_frames = 1 + (len(signal) - win) // hop if len(signal) >= win else 0
    if n_frames == 0:
        return np.zeros((config.n_mels, 0), dtype=np.float32)
    offset = (n_fft - win) // 2
    padded = np.pad(signal, (offset, n_fft - win - offset))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    spectrum = scipy.fft.rfft(frames * window, axis=1)  # single precision in, complex64 out
    mel_power = mel @ (spectrum.real ** 2 + spectrum.imag ** 2).T
    return 10.0 * np.log10(np.maximum(mel_power, np.float32(LOG_FLOOR)))


def segment_count(n_frames: int, config: Config) -> int:
    """Segments an utterance of ``n_frames`` frames yields (0 if shorter than the delta window)."""
    if n_frames < DELTA_WIDTH:
        return 0
    if n_frames <= config.segment_frames:
        return 1
    return 1 + (n_frames - config.segment_frames) // config.segment_hop


def segment_image(logmel: np.ndarray, config: Config) -> np.ndarray:
    """Overlapping 3-channel images ``(n_segments, n_mels, segment_frames, 3)``, float32.

    Channels: static log-Mel, delta, delta-delta (computed over the whole
    utterance). Raises ``ValueError`` for fewer than 9 frames; see the module
    docstring for the padding rule of utterances shorter than one window.
    """
    logmel = np.asarray(logmel, dtype=np.float32)
    n_mels, n_frames = logmel.shape
    if n_frames < DELTA_WIDTH:
        raise ValueError(f"{n_frames} frames: at least {DELTA_WIDTH} are needed for deltas")
    delta = librosa.feature.delta(logmel, width=DELTA_WIDTH, order=1, axis=-1)
    delta2 = librosa.feature.delta(logmel, width=DELTA_WIDTH, order=2, axis=-1)
    stacked = np.stack([logmel, delta, delta2], axis=-1)  # (n_mels, n_frames, 3)
    size = config.segment_frames
    if n_frames < size:
        pad = np.zeros((n_mels, size - n_frames, 3), dtype=np.float32)
        pad[..., 0] = logmel.min()
        return np.concatenate([stacked, pad], axis=1)[None]
    starts = np.arange(segment_count(n_frames, config)) * config.segment_hop
    windows = np.lib.stride_tricks.sliding_window_view(stacked, size, axis=1)  # (n_mels, n-size+1, 3, size)
    return np.ascontiguousarray(windows[:, starts].transpose(1, 0, 3, 2), dtype=np.float32)


def utterance_segments(path: str | Path, config: Config) -> np.ndarray:
    """The segment images ``(n_segments, 64, 64, 3)`` float32 of one audio or video file.

    Raises :class:`BadInputError` naming the file and the reason when it cannot be used.
    """
    signal = load_audio(path, config.sample_rate)
    logmel = log_mel(signal, config)
    if logmel.shape[1] < DELTA_WIDTH:
        seconds = len(signal) / config.sample_rate
        raise BadInputError(path, f"too short: {seconds * 1000:.0f} ms gives {logmel.shape[1]} frames, "
                                  f"at least {DELTA_WIDTH} are needed for deltas")
    return segment_image(logmel, config)

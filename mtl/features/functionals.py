"""Utterance-level acoustic functionals: one vector of 96 statistics per recording (librosa).

The classic speech-emotion input (openSMILE-like, computed with librosa
under ISC) beside PathNet's 12288-dimensional log-Mel segments. Each
recording is decoded as the segments are (:func:`mtl.features.audio.load_audio`,
mono at ``config.sample_rate``), leading and trailing exact zeros removed
(the EMO-DB copy is zero-padded to 2 s, and the padding would enter every
statistic), then described by frame-level contours (25 ms window, 10 ms hop,
the segments' framing) summarised over the recording:

====================  =====  ===============================================
group                 count  statistics
====================  =====  ===============================================
MFCC 1-13             26     mean, standard deviation of each coefficient
delta MFCC 1-13       26     mean, standard deviation (width-9 deltas)
log-F0 (pYIN)         9      mean, std, min, max, range, 10/50/90th percentile
                             over voiced frames (60-500 Hz), voiced fraction
energy (RMS, dB)      9      the same eight statistics over all frames, std of
                             its delta
spectral shape        12     centroid, bandwidth, 85% roll-off, flatness,
                             zero-crossing rate, spectral flux: mean, std
spectral contrast     14     7 bands (librosa defaults): mean, std
====================  =====  ===============================================

96 in all (:data:`FUNCTIONAL_NAMES`, in this order). A recording without a
voiced frame gets the log-F0 statistics of 0 and voiced fraction 0.

As an input of PathNet (``Config.input_kind="functionals"``, beyond the
paper), :func:`functional_features` turns a corpus's segment features into
one 1 x 1 x 96 sample per recording (:data:`mtl.config.FUNCTIONALS_SHAPE`).

Cache. :func:`functionals_for` computes the functionals of the recordings
behind a set of segment features once and keeps them under
``cache_dir()/functionals/<key>/`` (``X.npy``, ``recordings.csv``,
``meta.json``). The key hashes :data:`FUNCTIONALS_VERSION`, the decoding
and framing parameters, and the segment cache's own key (which follows the
corpus table and its files' sizes and times), so a changed corpus rebuilds;
no key of the segment cache changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pandas as pd

from mtl.config import FUNCTIONALS_SHAPE, Config
from mtl.errors import BadInputError
from mtl.evaluation import recording_keys
from mtl.features.audio import frame_params, load_audio
from mtl.io import file_lock, read_json, stable_hash, write_json
from mtl.paths import cache_dir

log = logging.getLogger(__name__)

__all__ = ["FUNCTIONALS_VERSION", "FUNCTIONAL_NAMES", "F0_RANGE_HZ", "utterance_functionals", "functionals_for",
           "FunctionalSet", "functional_features"]

FUNCTIONALS_VERSION = 1
"""Bumped whenever :func:`utterance_functionals` changes its output (a new cache key)."""
F0_RANGE_HZ = (60.0, 500.0)
"""The pitch range pYIN searches, Hz (speech of adult women and men, raised voices included)."""
_CONTOUR_STATS = ("mean", "std", "min", "max", "range", "p10", "p50", "p90")
_SHAPE = ("centroid", "bandwidth", "rolloff", "flatness", "zcr", "flux")


def _names() -> tuple[str, ...]:
    names = [f"mfcc{i}_{s}" for s in ("mean", "std") for i in range(1, 14)]
    names += [f"dmfcc{i}_{s}" for s in ("mean", "std") for i in range(1, 14)]
    names += [f"logf0_{s}" for s in _CONTOUR_STATS] + ["voiced_fraction"]
    names += [f"energy_{s}" for s in _CONTOUR_STATS] + ["denergy_std"]
    names += [f"{f}_{s}" for f in _SHAPE for s in ("mean", "std")]
    names += [f"contrast{i}_{s}" for s in ("mean", "std") for i in range(1, 8)]
    return tuple(names)


FUNCTIONAL_NAMES: tuple[str, ...] = _names()
"""Name of each functional, in the order of the vector (see the module docstring's table)."""
assert len(FUNCTIONAL_NAMES) == int(np.prod(FUNCTIONALS_SHAPE)), "mtl.config.FUNCTIONALS_SHAPE holds them all"


def _contour(values: np.ndarray) -> list[float]:
    """The eight statistics of :data:`_CONTOUR_STATS` (zeros for an empty contour)."""
    if values.size == 0:
        return [0.0] * len(_CONTOUR_STATS)
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return [values.mean(), values.std(), values.min(), values.max(), np.ptp(values), p10, p50, p90]


def utterance_functionals(signal: np.ndarray, config: Config, source: str = "<signal>") -> np.ndarray:
    """The 96 functionals of one mono signal at ``config.sample_rate`` (float32, :data:`FUNCTIONAL_NAMES` order).

    Leading and trailing exact zeros are removed first; what remains must
    hold at least one 25 ms window, else :class:`~mtl.errors.BadInputError`
    naming ``source`` (the file the signal came from).
    """
    signal = np.trim_zeros(np.asarray(signal, dtype=np.float32))
    win, hop, n_fft = frame_params(config)
    if signal.size < win:
        raise BadInputError(source, f"{signal.size} non-zero samples, fewer than one {win}-sample window")
    sr = config.sample_rate
    power = np.abs(librosa.stft(signal, n_fft=n_fft, hop_length=hop, win_length=win, window="hamming",
                                center=False)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10), n_mfcc=13)
    dmfcc = librosa.feature.delta(mfcc, width=9, mode="interp") if mfcc.shape[1] >= 9 else np.zeros_like(mfcc)
    magnitude = np.sqrt(power)
    rms = librosa.feature.rms(S=magnitude, frame_length=n_fft)[0]
    energy = 20 * np.log10(np.maximum(rms, 1e-5))
    f0, voiced, _ = librosa.pyin(signal, fmin=F0_RANGE_HZ[0], fmax=F0_RANGE_HZ[1], sr=sr, frame_length=1024,
                                 hop_length=hop, center=False)
    log_f0 = np.log(f0[voiced & np.isfinite(f0)]) if f0.size else np.zeros(0)
    shape = [librosa.feature.spectral_centroid(S=magnitude, sr=sr)[0],
             librosa.feature.spectral_bandwidth(S=magnitude, sr=sr)[0],
             librosa.feature.spectral_rolloff(S=magnitude, sr=sr, roll_percent=0.85)[0],
             librosa.feature.spectral_flatness(S=magnitude)[0],
             librosa.feature.zero_crossing_rate(signal, frame_length=win, hop_length=hop, center=False)[0],
             np.concatenate([[0.0], np.sqrt((np.diff(magnitude, axis=1).clip(min=0) ** 2).sum(axis=0))])]
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=sr, fmin=100.0)
    values = [*mfcc.mean(axis=1), *mfcc.std(axis=1), *dmfcc.mean(axis=1), *dmfcc.std(axis=1),
              *_contour(log_f0), float(voiced.mean()) if voiced.size else 0.0,
              *_contour(energy), float(np.diff(energy).std()) if energy.size > 1 else 0.0,
              *[stat for contour in shape for stat in (contour.mean(), contour.std())],
              *contrast.mean(axis=1), *contrast.std(axis=1)]
    return np.asarray(values, dtype=np.float32)


def _params(config: Config) -> dict[str, Any]:
    win, hop, n_fft = frame_params(config)
    return dict(version=FUNCTIONALS_VERSION, sample_rate=config.sample_rate, n_mels=config.n_mels, fmin=config.fmin,
                fmax=config.fmax, win=win, hop=hop, n_fft=n_fft, f0_range=list(F0_RANGE_HZ),
                librosa=librosa.__version__)


def functionals_for(samples: pd.DataFrame, segment_key: str, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The functionals of every recording of a segment table, and each segment's row into them.

    Parameters
    ----------
    samples : DataFrame
        The segment rows of a :class:`~mtl.features.cache.FeatureSet` (their
        ``path`` column names the recordings' files).
    segment_key : str
        That feature set's cache key (part of this cache's key).
    config : Config
        Decoding and framing settings (sample rate, window, hop, Mel bands).

    Returns
    -------
    X, rows
        ``X``: float32 ``(n_recordings, 96)``, recordings in sorted order of
        :func:`mtl.evaluation.recording_keys`; ``rows``: for each segment,
        its recording's row of ``X``.
    """
    keys = recording_keys(samples)
    unique, rows = np.unique(keys, return_inverse=True)
    first = pd.Series(np.arange(len(keys))).groupby(rows).first().to_numpy()
    paths = samples["path"].astype(str).to_numpy()[first]
    key = stable_hash({"params": _params(config), "segments": segment_key, "recordings": unique.tolist()}, length=20)
    folder = cache_dir() / "functionals" / key
    with file_lock(folder.parent / f"{key}.lock"):
        if (folder / "meta.json").is_file():
            meta = read_json(folder / "meta.json")
            X = np.load(folder / "X.npy")
            if X.shape == (len(unique), len(FUNCTIONAL_NAMES)) and meta.get("key") == key:
                return X, rows
            log.warning("functionals cache %s does not match its recordings; computing it again", folder)
        log.info("computing utterance functionals of %d recordings into %s", len(unique), folder)
        X = np.stack([utterance_functionals(load_audio(Path(p), config.sample_rate), config, p) for p in paths])
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "X.npy", X)
        pd.DataFrame({"recording": unique, "path": paths}).to_csv(folder / "recordings.csv", index=False)
        write_json(folder / "meta.json", {"key": key, "params": _params(config), "names": list(FUNCTIONAL_NAMES),
                                          "n_recordings": int(len(unique))})
    return X, rows


@dataclass(frozen=True)
class FunctionalSet:
    """The functionals of a corpus as samples: what :class:`~mtl.features.cache.FeatureSet` is for segments."""

    X: np.ndarray
    """float32 ``(n_recordings, 1, 1, 96)``."""
    samples: pd.DataFrame
    """One row per recording: its first segment's row of the segment table."""
    key: str
    """The segment features' cache key."""

    def __len__(self) -> int:
        return len(self.samples)


def functional_features(features: Any, config: Config) -> FunctionalSet:
    """One sample of :data:`~mtl.config.FUNCTIONALS_SHAPE` per recording of a segment :class:`FeatureSet`."""
    X, _ = functionals_for(features.samples, features.key, config)
    keys = recording_keys(features.samples)
    _, first = np.unique(keys, return_index=True)
    samples = features.samples.iloc[first].reset_index(drop=True)
    return FunctionalSet(X.reshape((len(X), *FUNCTIONALS_SHAPE)), samples, features.key)

"""Features of a whole corpus table, extracted in parallel once and cached on disk.

:func:`build_features` turns each row of a corpus table into samples of shape
``config.input_shape`` (64 x 64 x 3):

* ``audio`` -- the utterance's log-Mel segments (:func:`mtl.features.audio.utterance_segments`);
* ``video`` -- one face crop per kept frame (:func:`mtl.features.faces.clip_face_crops`);
* ``image`` -- one face crop (:func:`mtl.features.faces.image_face_crop`).

Storage. One folder per cache key under ``cache_dir()/features/<key>/``:
``X.npy`` (float32 ``(n_samples, 64, 64, 3)``; face crops scaled to [0, 1],
log-Mel images in dB as extracted), ``samples.csv`` (one row per sample),
``skipped.csv`` (files that could not be used, with the reason) and
``meta.json`` (parameters, counts, timings, and the SHA-1 of each of the
other three files). ``X`` is opened memory-mapped,
so parallel workers share its pages and a corpus larger than memory works;
float32 on disk costs 48 KB per sample (eNTERFACE at every frame: about
1.5 GB), chosen over uint8/float16 so that ``X`` is a plain float32 memmap
that every consumer can index without conversion.

Cache key. A hash of (a) the feature parameters of the modalities present
-- for audio :func:`mtl.features.audio.feature_params` (sample rate, Mel
bands, window, hop, segment length and overlap, extractor version), for
faces ``face_size``, ``frame_step`` (video), the detector's settings and
threshold and whether images are already cropped; never the PathNet,
evolution or evaluation fields -- (b) the table itself (every column, so new
labels rebuild) and (c) each source file's path, size and modification time
(``stat`` only: a rerun with nothing changed computes the key without reading
any file and loads in well under a second; touching a file rebuilds even when
its bytes are unchanged, the safe side).

Robustness. Extraction runs in ``n_jobs`` processes (``spawn``: no threads or
locks inherited from the caller; each worker limits BLAS/OpenMP, OpenCV and
torch to one thread). A file that fails -- :class:`~mtl.errors.BadInputError`
or any decoding error -- is recorded in the skip report and the others go on;
the summary "skipped K of N files" is logged as a warning. The cache is
written into a temporary folder and renamed into place, so a crash leaves no
partial cache; a lock file lets concurrent callers wait for one build.

Integrity. Every load cross-checks the parts: ``X.npy``'s shape, the rows
of ``samples.csv`` and ``skipped.csv`` against the counts in ``meta.json``,
and each file against the digest recorded when it was written (caches from
before the digests get the counts only). Hashing reads the whole of
``X.npy``: about 0.1 s per 100 MB from the page cache (EMO-DB's features:
a few hundred MB), small beside any training. A cache that fails a check,
or whose ``meta.json`` is gone, is reported and rebuilt; temporary folders
left by a killed build are removed by the next build of the same key.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import shutil
import time
import uuid
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from mtl import paths
from mtl.config import Config
from mtl.errors import BadInputError, ConfigError, MtlError
from mtl.io import exit_with_parent, file_digest, file_lock, read_json, stable_hash, write_json

log = logging.getLogger("mtl.features")

CACHE_VERSION = 1
"""Bumped whenever the cache layout or the face extraction changes its output."""
MODALITIES = ("audio", "video", "image")
REQUIRED_COLUMNS = ("path", "modality")
_COPY_BLOCK = 2048  # samples copied at a time when the finished array is written
PARTS = ("X.npy", "samples.csv", "skipped.csv")
"""The files of a cache entry whose digests ``meta.json`` records (``digests``)."""


# ----------------------------------------------------------------------------
# the result


@dataclass(eq=False, repr=False)
class FeatureSet:
    """Samples of a corpus table: ``X`` (float32, memory-mapped) and one ``samples`` row per sample.

    Attributes
    ----------
    samples : every column of the corpus table plus ``segment`` (index of the
        sample within its utterance or clip), for video ``frame`` (the frame's
        index in its clip) and for faces ``face_status`` (detected, carried,
        backfilled or given, see :mod:`mtl.features.faces`).
    skipped : ``[(path, reason), ...]``, the files that yielded nothing (as the corpus loaders'
        ``df.attrs["skipped"]``).
    key : the cache key (the same for every subset).
    folder : the cache folder, or None.
    built : True when this call extracted the features, False when it loaded them.
    store, rows : the whole cached array and the rows of it this set holds
        (a slice, or an index array for a scattered subset).
    """

    store: np.ndarray
    samples: pd.DataFrame
    skipped: list[tuple[str, str]]
    key: str
    folder: Path | None = None
    built: bool = False
    rows: slice | np.ndarray = field(default_factory=lambda: slice(None))
    _copy: np.ndarray | None = None

    @property
    def X(self) -> np.ndarray:
        """float32 ``(n_samples, H, W, C)``: a memory-mapped view, or a copy once for a scattered subset."""
        if isinstance(self.rows, slice):
            return self.store[self.rows]
        if self._copy is None:
            self._copy = np.asarray(self.store[self.rows])
        return self._copy

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        shape = (len(self),) + tuple(self.store.shape[1:])
        return f"FeatureSet(key={self.key!r}, X={shape}, files skipped={len(self.skipped)}, built={self.built})"

    def labels(self, classes: Sequence[str]) -> np.ndarray:
        """Index of each sample's ``emotion`` in ``classes`` (int64); every emotion must be in ``classes``."""
        lookup = {name: i for i, name in enumerate(classes)}
        emotions = self.samples["emotion"].astype(str)
        unknown = sorted(set(emotions) - set(lookup))
        if unknown:
            raise ConfigError(f"emotion(s) {', '.join(unknown)} are not among the classes {list(classes)}; "
                              f"select the samples first with subset()")
        return emotions.map(lookup).to_numpy(dtype=np.int64)

    def subset(self, mask: np.ndarray | Sequence[bool] | Sequence[int]) -> FeatureSet:
        """The samples selected by a boolean mask or integer indices.

        ``X`` stays a view of the memory-mapped file when the selection is one
        contiguous run (e.g. all samples); otherwise it is copied on first use.
        """
        selection = np.asarray(mask)
        if selection.dtype == bool:
            if selection.shape != (len(self),):
                raise ConfigError(f"mask has shape {selection.shape}, expected ({len(self)},)")
            positions = np.flatnonzero(selection)
        else:
            positions = selection.astype(np.int64).ravel()
        base = np.arange(len(self.store))[self.rows] if isinstance(self.rows, slice) else self.rows
        chosen = base[positions]
        rows: slice | np.ndarray = chosen
        if len(chosen) == 0 or np.array_equal(chosen, np.arange(chosen[0], chosen[0] + len(chosen))):
            start = int(chosen[0]) if len(chosen) else 0
            rows = slice(start, start + len(chosen))
        return FeatureSet(self.store, self.samples.iloc[positions].reset_index(drop=True), self.skipped,
                          self.key, self.folder, self.built, rows)


# ----------------------------------------------------------------------------
# keys


def feature_params(config: Config, modalities: Sequence[str], images_already_cropped: bool = False
                   ) -> dict[str, Any]:
    """The parameters that determine the features of each modality (the cache key's part (a))."""
    from mtl.features import faces

    params: dict[str, Any] = {"cache_version": CACHE_VERSION, "input_shape": list(config.input_shape)}
    face = dict(face_size=config.face_size, cascade=faces.CASCADE_FILE, scale_factor=faces.SCALE_FACTOR,
                min_neighbors=faces.MIN_NEIGHBORS, min_size=faces.MIN_SIZE,
                min_score=faces.score_threshold(config), scale="0-1")
    for modality in sorted(set(modalities)):
        if modality == "audio":
            from mtl.features.audio import feature_params as audio_params

            params["audio"] = audio_params(config)
        elif modality == "video":
            params["video"] = dict(face, frame_step=config.frame_step)
        elif modality == "image":
            params["image"] = dict(face, already_cropped=bool(images_already_cropped))
    return params


def source_signature(table_paths: Sequence[str]) -> list[tuple[str, int | None, int | None]]:
    """``(path, size in bytes, modification time in ns)`` of each file; ``None`` for a missing file."""
    signature = []
    for path in table_paths:
        try:
            status = os.stat(path)
            signature.append((str(path), status.st_size, status.st_mtime_ns))
        except OSError:
            signature.append((str(path), None, None))
    return signature


def feature_key(table: pd.DataFrame, config: Config, images_already_cropped: bool = False) -> str:
    """The cache key of ``table``'s features under ``config`` (see the module docstring)."""
    _check_table(table)
    content = [list(map(str, table.columns))] + table.astype(str).to_numpy().tolist()
    return stable_hash({
        "params": feature_params(config, table["modality"].unique().tolist(), images_already_cropped),
        "table": stable_hash(content, length=40),
        "sources": stable_hash(source_signature(table["path"].astype(str).tolist()), length=40),
    }, length=20)


# ----------------------------------------------------------------------------
# build or load


def build_features(table: pd.DataFrame, config: Config, cache_dir: str | Path | None = None,
                   n_jobs: int | None = None, progress: bool = True,
                   images_already_cropped: bool = False) -> FeatureSet:
    """The features of every file of a corpus table, from the cache or extracted now.

    Parameters
    ----------
    table : a corpus table (:mod:`mtl.corpora`): at least ``path`` and
        ``modality`` ("audio", "video" or "image"); ``emotion`` for :meth:`FeatureSet.labels`.
    config : the feature fields are used (see the module docstring).
    cache_dir : folder of the feature caches; default ``mtl.paths.cache_dir()/features``.
    n_jobs : worker processes; default ``os.cpu_count()`` (1 below :data:`IN_PROCESS_BELOW` files); 1 extracts in this
        process. Inside a daemonic process (e.g. a Dask worker), which may not
        start children, extraction runs in-process.
    progress : show a tqdm progress bar over files.
    images_already_cropped : image rows are face crops already: resize only, no detection.

    Returns
    -------
    :class:`FeatureSet`; files that could not be used are in ``.skipped``.
    """
    root = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "features"
    key = feature_key(table, config, images_already_cropped)
    folder = root / key
    with file_lock(root / f".{key}.lock"):
        if _complete(folder):
            try:
                features = _load(folder, key)
                log.info("features %s loaded from %s (%d samples, %d files skipped)", key, folder,
                         len(features), len(features.skipped))
                return features
            except (OSError, ValueError, KeyError) as error:
                log.warning("feature cache %s is unusable (%s): rebuilding it", folder, error)
                shutil.rmtree(folder, ignore_errors=True)
        elif folder.exists():  # parts without their meta.json: the finished build's rename needs the name
            log.warning("feature cache %s is incomplete (no meta.json): rebuilding it", folder)
            shutil.rmtree(folder, ignore_errors=True)
        for stale in root.glob(f".tmp-{key}-*"):  # left by a build that was killed; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        _build(table.reset_index(drop=True), config, folder, key, n_jobs, progress, images_already_cropped)
        features = _load(folder, key)
        features.built = True
        return features


def _build(table: pd.DataFrame, config: Config, folder: Path, key: str, n_jobs: int | None, progress: bool,
           images_already_cropped: bool) -> None:
    start = time.perf_counter()
    staging = folder.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        raw = staging / "X.f32"
        sample_rows: list[pd.DataFrame] = []
        skipped: list[tuple[str, str]] = []
        shape: tuple[int, ...] | None = None
        n_samples = 0
        with open(raw, "wb") as sink:
            for position, outcome in _extract_all(table, config, n_jobs, progress, images_already_cropped):
                path = str(table.at[position, "path"])
                if isinstance(outcome, str):
                    skipped.append((path, outcome))
                    continue
                samples = outcome.pop("X")
                if shape is None:
                    shape = samples.shape[1:]
                elif samples.shape[1:] != shape:
                    raise ConfigError(f"{path}: samples of shape {samples.shape[1:]} differ from the earlier "
                                      f"files' {shape}; one feature set needs one sample shape")
                sink.write(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
                n_samples += len(samples)
                rows = pd.DataFrame({"_row": position, **outcome})
                sample_rows.append(rows)
        shape = shape if shape is not None else tuple(config.input_shape)
        _finish_array(raw, staging / "X.npy", (n_samples,) + tuple(shape))
        samples_table = _samples_table(table, sample_rows)
        samples_table.to_csv(staging / "samples.csv", index=False, errors="surrogateescape")
        pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(staging / "skipped.csv", index=False,
                                                                 errors="surrogateescape")
        seconds = time.perf_counter() - start
        modalities = table["modality"].value_counts().to_dict() if len(table) else {}
        write_json(staging / "meta.json", {
            "key": key,
            "params": feature_params(config, list(modalities), images_already_cropped),
            "n_files": int(len(table)),
            "n_files_skipped": len(skipped),
            "n_samples": int(n_samples),
            "shape": [int(n_samples), *map(int, shape)],
            "dtypes": {column: str(dtype) for column, dtype in samples_table.dtypes.items()},
            "modalities": {str(k): int(v) for k, v in modalities.items()},
            "digests": {name: file_digest(staging / name) for name in PARTS},
            "seconds": round(seconds, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _report_skipped(skipped, len(table), key)
    log.info("features %s: %d samples from %d files in %.1f s", key, n_samples, len(table) - len(skipped), seconds)


def _finish_array(raw: Path, target: Path, shape: tuple[int, ...]) -> None:
    """Copy the raw float32 samples into a ``.npy`` file of the now known shape."""
    out = np.lib.format.open_memmap(target, mode="w+", dtype=np.float32, shape=shape)
    if shape[0]:
        source = np.memmap(raw, dtype=np.float32, mode="r", shape=shape)
        for start in range(0, shape[0], _COPY_BLOCK):
            out[start:start + _COPY_BLOCK] = source[start:start + _COPY_BLOCK]
        del source
    out.flush()
    del out
    raw.unlink()


def _samples_table(table: pd.DataFrame, parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return table.iloc[0:0].assign(segment=pd.Series(dtype=np.int64))
    per_sample = pd.concat(parts, ignore_index=True)
    if "frame" in per_sample:  # tables mixing video with audio or images: -1 = not a video frame
        per_sample["frame"] = per_sample["frame"].fillna(-1).astype(np.int64)
    if "face_status" in per_sample:
        per_sample["face_status"] = per_sample["face_status"].fillna("")
    samples = table.iloc[per_sample["_row"].to_numpy()].reset_index(drop=True)
    for column in per_sample.columns.drop("_row"):
        samples[column] = per_sample[column].to_numpy()
    return samples


def _load(folder: Path, key: str) -> FeatureSet:
    """The cache entry in ``folder``, its parts cross-checked (ValueError saying which part disagrees)."""
    meta = read_json(folder / "meta.json")
    for name, expected in meta.get("digests", {}).items():
        if file_digest(folder / name) != expected:
            raise ValueError(f"{name} differs from the digest meta.json recorded (changed after it was written)")
    store = np.load(folder / "X.npy", mmap_mode="r")
    if list(store.shape) != meta["shape"]:
        raise ValueError(f"X.npy has shape {store.shape}, meta.json says {meta['shape']}")
    samples = pd.read_csv(folder / "samples.csv", dtype=str, keep_default_na=False, na_values=[""],
                          encoding_errors="surrogateescape")
    if len(samples) != len(store):
        raise ValueError(f"samples.csv has {len(samples)} rows for the {len(store)} samples of X.npy")
    for column, dtype in meta["dtypes"].items():
        if dtype == "bool":
            samples[column] = samples[column].map({"True": True, "False": False})
        elif not (dtype == "object" or dtype.startswith(("str", "string"))):
            samples[column] = samples[column].astype(dtype)
    skipped = pd.read_csv(folder / "skipped.csv", dtype=str, keep_default_na=False,
                          encoding_errors="surrogateescape")
    if len(skipped) != meta["n_files_skipped"]:
        raise ValueError(f"skipped.csv has {len(skipped)} rows, meta.json says {meta['n_files_skipped']} files")
    return FeatureSet(store, samples, list(zip(skipped["path"], skipped["reason"])), key, folder, built=False)


def _complete(folder: Path) -> bool:
    return (folder / "meta.json").is_file()


def _report_skipped(skipped: list[tuple[str, str]], n_files: int, key: str) -> None:
    if not skipped:
        return
    first = skipped[:5]
    # Paths relative to their common folder, named once: the message stays readable where it is rendered (the book).
    root = os.path.commonpath([os.path.dirname(path) for path, _ in first]) if len(first) > 1 else ""
    shown = "; ".join(f"{os.path.relpath(path, root) if root else path}: {reason}" for path, reason in first)
    more = f"; ... ({len(skipped) - 5} more)" if len(skipped) > 5 else ""
    log.warning("skipped %d of %d files%s: %s%s (the full list: FeatureSet.skipped, features/%s/skipped.csv)",
                len(skipped), n_files, f" under {root}" if root else "", shown, more, key)


# ----------------------------------------------------------------------------
# extraction


def _extract_all(table: pd.DataFrame, config: Config, n_jobs: int | None, progress: bool,
                 images_already_cropped: bool) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """``(row, result)`` in table order; a result is a dict of arrays, or the reason the file was skipped."""
    from tqdm.auto import tqdm

    tasks = list(zip(table["path"].astype(str), table["modality"].astype(str)))
    workers = _worker_count(n_jobs, len(tasks))
    corpus = str(table["corpus"].iloc[0]) if "corpus" in table and len(table) else "features"
    bar = tqdm(total=len(tasks), desc=f"features {corpus}", unit="file", disable=not progress, leave=False)
    try:
        if workers <= 1:
            for position, (path, modality) in enumerate(tasks):
                result = extract_file(path, modality, config, images_already_cropped)
                bar.update()
                yield position, result
            return
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_single_threaded,
                                    initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(extract_file, path, modality, config, images_already_cropped): position
                       for position, (path, modality) in enumerate(tasks)}
            waiting: dict[int, dict[str, Any] | str] = {}
            next_position = 0
            try:
                for future in cf.as_completed(futures):
                    waiting[futures[future]] = future.result()
                    bar.update()
                    while next_position in waiting:  # hand results on in table order
                        yield next_position, waiting.pop(next_position)
                        next_position += 1
            except BrokenProcessPool as error:
                # A worker that dies while starting is most often an unguarded user script:
                # the worker re-imports it, and mtl.io.check_main_guard stops it there.
                raise MtlError(f"a worker process of the {corpus} feature extraction died before finishing "
                               "(its own error is printed above). If you ran a script of your own, put its "
                               "code under `if __name__ == \"__main__\":`; worker processes re-import the "
                               "script. Or extract in this process with n_jobs=1.") from error
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        bar.close()


IN_PROCESS_BELOW = 300
"""With ``n_jobs=None``, tables with fewer files than this are extracted in-process."""


def _worker_count(n_jobs: int | None, n_tasks: int) -> int:
    if n_jobs is not None and n_jobs < 1:
        raise ConfigError(f"n_jobs must be >= 1 or None, got {n_jobs}")
    # Each spawned worker pays about 2 s to import librosa, cv2 and av: below a
    # few hundred files one process finishes first.
    automatic = (os.cpu_count() or 1) if n_tasks >= IN_PROCESS_BELOW else 1
    wanted = automatic if n_jobs is None else n_jobs
    if wanted > 1 and multiprocessing.current_process().daemon:
        log.info("running inside a daemonic process: extracting features in-process")
        return 1
    return max(1, min(wanted, n_tasks))


def _single_threaded(parent: int) -> None:
    """Worker initialiser: one thread for BLAS/OpenMP, OpenCV and torch, so n_jobs workers use n_jobs cores.

    The worker also ends when ``parent`` (the extracting process) does (:func:`mtl.io.exit_with_parent`).
    """
    exit_with_parent(parent)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(1)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def extract_file(path: str, modality: str, config: Config, images_already_cropped: bool = False
                 ) -> dict[str, Any] | str:
    """The samples of one file, or the reason it cannot be used (never raises for a bad file).

    Returns ``{"X": float32 (n, H, W, C), "segment": ..., ["frame": ..., "face_status": ...]}``
    or a string: the :class:`BadInputError` reason, or the type and message of
    any other error raised while decoding.
    """
    try:
        if modality == "audio":
            from mtl.features.audio import utterance_segments

            segments = utterance_segments(path, config)
            return {"X": segments.astype(np.float32, copy=False), "segment": np.arange(len(segments))}
        from mtl.features import faces

        if modality == "video":
            crops, frames, info = faces.clip_face_crops(path, config)
            return {"X": crops.astype(np.float32) / np.float32(255), "segment": np.arange(len(crops)),
                    "frame": frames, "face_status": info["status"].to_numpy()}
        if modality == "image":
            crop = faces.image_face_crop(path, config, already_cropped=images_already_cropped)
            return {"X": crop[None].astype(np.float32) / np.float32(255), "segment": np.zeros(1, np.int64),
                    "face_status": np.array(["given" if images_already_cropped else "detected"])}
        return f"unknown modality {modality!r}"
    except BadInputError as error:
        return error.reason
    except ConfigError:  # a wrong parameter is not the file's fault
        raise
    except MemoryError as error:  # one file too large for this machine: name it, go on with the others
        return f"out of memory while extracting this file (MemoryError: {error})"
    except Exception as error:  # a decoder's own error on a damaged file: report it, go on
        return f"{type(error).__name__}: {error}"


def _check_table(table: pd.DataFrame) -> None:
    absent = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if absent:
        raise ConfigError(f"the corpus table lacks column(s) {', '.join(absent)}")
    unknown = sorted(set(table["modality"].astype(str)) - set(MODALITIES))
    if unknown:
        raise ConfigError(f"unknown modality {', '.join(map(repr, unknown))}; expected one of {MODALITIES}")

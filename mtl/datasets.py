"""The features of one corpus copy, and the provenance that says which copy it was.

:func:`load_dataset` is the one way experiments read data: it picks the copy
of a corpus (:func:`resolve_data_kind`: the real recordings under
:func:`mtl.paths.data_root`, or the synthetic stand-in of :mod:`mtl.synthetic`,
generated on first use under :func:`mtl.paths.cache_dir`), extracts (or reads
from the cache) its features and keeps the requested classes. Its provenance
(:func:`corpus_provenance`) goes into every record: which copy, how many
files, a content hash, and the copy's folder *relative* to the data root or
the cache (:func:`mtl.paths.portable_path`), never a path of the machine.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl.config import DATA_MODES, Config, check_choice, get_profile
from mtl.corpora import corpus_card, load_corpus
from mtl.corpora.base import file_problem
from mtl.corpora.labels import LabelError
from mtl.errors import BadInputError, MissingDataError
from mtl.evaluation import recording_keys
from mtl.features.audio import audio_info
from mtl.features.cache import build_features
from mtl.io import file_digest, read_json, stable_hash
from mtl.paths import data_root, portable_path
from mtl.synthetic import make_corpus

log = logging.getLogger("mtl.datasets")


def resolve_data_kind(corpus: str, data: str = "auto") -> str:
    """``"real"`` or ``"synthetic"``: which copy of ``corpus`` a run with ``data`` uses.

    ``"auto"`` takes the real corpus when ``data_root()/<folder>`` exists, else
    the synthetic one; ``"real"`` insists on the real corpus
    (:class:`~mtl.errors.MissingDataError` when absent); ``"synthetic"`` on the
    generated one (RAVDESS has none). A corpus card's corpus has one copy, the
    files under its root, whatever ``data`` says: ``"synthetic"`` when its card
    declares generated files (``synthetic: true``), else ``"real"``.
    """
    info = corpus_card(corpus)
    check_choice(data, DATA_MODES, "data mode")
    real_root = data_root() / info.folder
    if info.card:  # a corpus of your own: its card says where it is (not MTL_DATA_ROOT) and what it is
        if not real_root.is_dir():
            raise MissingDataError(_card_root_missing(info, real_root))
        return "synthetic" if info.generated else "real"
    if data in ("auto", "real") and real_root.is_dir():
        return "real"
    if data == "real":
        raise MissingDataError(
            f"real {info.title} requested (data='real') but {real_root} does not exist: set MTL_DATA_ROOT "
            f"to the folder holding {info.folder}/" + (", or use data='auto' or 'synthetic'" if info.synthetic else ""))
    if not info.synthetic:
        raise MissingDataError(
            f"{info.title} exists only as real recordings and {real_root} does not exist: set MTL_DATA_ROOT "
            f"to the folder holding {info.folder}/ (there is no synthetic {corpus})")
    return "synthetic"


def corpus_root(corpus: str, kind: str, config: Config) -> Path:
    """The folder of the real corpus, or of the synthetic one (generated on first use)."""
    info = corpus_card(corpus)
    if kind == "real" or info.card:  # a card's files, generated or not, are under its root
        root = data_root() / info.folder
        if not root.is_dir():
            raise MissingDataError(_card_root_missing(info, root) if info.card else
                                   f"real {info.title} not found at {root}: set MTL_DATA_ROOT")
        return root
    return Path(make_corpus(corpus, size=config.synthetic_size))


def _card_root_missing(info: Any, root: Path) -> str:
    return (f"{info.title} ({info.name}): {root}, the root its corpus card {info.card} declares, does not "
            "exist (fix `root:` in the card, or move the corpus back)")


# ---------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------
_FULL_DIGEST_LIMIT = 256 * 2**20
_SAMPLED_DIGESTS = 32


def _describe_copy(corpus: str, kind: str, root: Path, paths: Sequence[Path], config: Config) -> str:
    """One line naming the copy of the corpus, from what a few files actually are."""
    info = corpus_card(corpus)
    if kind == "synthetic":
        manifest = root / "synthetic.json"
        if info.card and not manifest.is_file():  # a card's own generated files: only its card describes them
            return f"synthetic {info.title} at {portable_path(root)} (the card {info.card} says so)"
        written = read_json(manifest) if manifest.is_file() else {}
        size, version = written.get("size", config.synthetic_size), written.get("version")
        return (f"synthetic {info.title} ({size}, seed {written.get('seed', 0)}"
                + (f", generator version {version}" if version is not None else "") + "), generated by mtl.synthetic")
    audio = [p for p in paths if p.suffix.lower() in (".wav", ".flac")]
    if not audio:
        return f"real {info.title} at {portable_path(root)}"
    probes = [header for header in map(_probe, audio[:: max(1, len(audio) // 8)][:8]) if header is not None]
    if not probes:
        return f"real {info.title} at {portable_path(root)} (no probed file readable)"
    rates = sorted({int(p.samplerate) for p in probes})
    durations = [p.frames / p.samplerate for p in probes]
    suffixes = sorted({p.suffix.lower().lstrip(".") for p in audio})
    mono = " mono" if all(p.channels == 1 for p in probes) else ""
    text = f"real {info.title}:{mono} {'/'.join(suffixes).upper()} at {'/'.join(f'{r / 1000:g}' for r in rates)} kHz"
    if corpus == "emodb" and rates == [22050] and all(abs(d - 2.0) < 1e-3 for d in durations):
        text += (", every probed file exactly 2.000 s: the processed copy (original EMO-DB is 16 kHz, "
                 "1.2-8.9 s); results are not directly comparable with the original audio")
    elif corpus == "ravdess" and rates == [16000] and suffixes == ["flac"]:
        text += ": the 16 kHz mono FLAC conversion of the 48 kHz original"
    return text


def _probe(path: Path) -> Any:
    """The audio header of one file, or None for a file that cannot be used (its features report it)."""
    try:
        return audio_info(path)
    except BadInputError as error:
        log.info("provenance: %s", error)
        return None


@functools.lru_cache(maxsize=64)
def _content_hash(root: str, relative: tuple[str, ...], sizes: tuple[int, ...]) -> tuple[str, str]:
    base = Path(root)
    total = sum(sizes)
    if total <= _FULL_DIGEST_LIMIT:
        chosen, how = relative, "sha1 of every file"
    else:
        step = max(1, len(relative) // _SAMPLED_DIGESTS)
        chosen, how = relative[::step][:_SAMPLED_DIGESTS], f"sha1 of {_SAMPLED_DIGESTS} evenly spaced files"
    digests = [_digest(base / r) for r in chosen]
    listing = stable_hash([list(relative), list(sizes)], length=40)
    return stable_hash({"listing": listing, "digests": digests}, length=16), f"(relative path, size) of every file + {how}"


def _digest(path: Path) -> str:
    """SHA-1 of a file; for a file that vanished or cannot be read, the reason (never opens a non-regular file)."""
    problem = file_problem(path)
    if problem is not None:
        return problem
    try:
        return file_digest(path)
    except OSError as error:
        return f"unreadable ({error.strerror or error})"


def _size(path: Path) -> int:
    """Size in bytes; -1 for a file that vanished since the table was read."""
    try:
        return path.stat().st_size
    except OSError:
        return -1


def corpus_provenance(corpus: str, kind: str, root: Path, table: pd.DataFrame, config: Config) -> dict[str, Any]:
    """What data a run used: kind, copy, root, file count and a content hash (and the card of a card's corpus).

    ``root`` is the copy's folder as :func:`mtl.paths.portable_path` writes it
    (``$MTL_DATA_ROOT/emodb``, ``$MTL_CACHE_DIR/synthetic/savee-tiny-seed0``).

    The content hash covers the sorted (relative path, size) of every file of
    the corpus table plus the SHA-1 of every file when they total at most
    256 MB (EMO-DB: 47 MB, well under a second), else of 32 evenly spaced
    files -- enough to tell copies apart without reading gigabytes of video.
    """
    root = Path(root)
    paths = [Path(p) for p in table["path"]]
    relative = tuple(sorted(os.path.relpath(p, root) for p in paths))
    sizes = tuple(_size(root / r) for r in relative)
    digest, method = _content_hash(str(root), relative, sizes)
    skipped = list(table.attrs.get("skipped", []))
    card = corpus_card(corpus)
    declared = {} if card.card is None else {"card": card.card, "card_digest": card.card_digest}
    return {
        "corpus": corpus,
        **declared,
        "kind": kind,
        "copy": _describe_copy(corpus, kind, root, sorted(paths), config),
        "root": portable_path(root),
        "n_files": len(relative),
        "n_files_skipped": len(skipped),
        "content_hash": digest,
        "hash_method": method,
    }


# ---------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------
def load_dataset(corpus: str, modality: str = "audio", config: Config | None = None,
                 classes: Iterable[str] | None = None, data: str = "auto",
                 progress: bool = False, n_jobs: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Features of one corpus restricted to some classes, with their provenance.

    Parameters
    ----------
    corpus : str
        A registered corpus (:data:`mtl.corpora.CORPORA`).
    modality : {"audio", "video"}
    config : Config
        Feature settings and ``synthetic_size``; default ``get_profile("default")``.
    classes : list of str, optional
        Emotion classes to keep (canonical names); default all of the corpus's.
    data : {"auto", "real", "synthetic"}
        Which copy, see :func:`resolve_data_kind`.
    progress : bool
        Show a progress bar while features are computed (cached afterwards).
    n_jobs : int, optional
        Feature extraction processes (default: one per core; 1 extracts in
        this process, faster for a handful of files).

    Returns
    -------
    (FeatureSet, dict)
        The features (all classes are extracted once and cached, then the
        requested ones selected) and the provenance dict of
        :func:`corpus_provenance` plus ``classes``, ``modality``,
        ``n_samples``, ``n_recordings`` and ``n_files_skipped_features``
        (files the feature extractor could not use).
    """
    config = config or get_profile("default")
    card = corpus_card(corpus, modality)
    kind = resolve_data_kind(corpus, data)
    wanted = card.check_classes(classes if classes is not None else card.classes)
    root = corpus_root(corpus, kind, config)
    table = load_corpus(corpus, root=root, modality=modality)
    features = build_features(table, config, progress=progress, n_jobs=n_jobs,
                              images_already_cropped=card.faces_cropped)
    keep = features.samples["emotion"].isin(wanted).to_numpy()
    features = features.subset(keep)
    provenance = corpus_provenance(corpus, kind, root, table, config)
    provenance.update(
        classes=list(wanted),
        modality=modality,
        n_samples=int(len(features)),
        n_files_skipped_features=int(len(getattr(features, "skipped", []) or [])),
        n_recordings=int(len(np.unique(recording_keys(features.samples)))) if len(features) else 0,
    )
    return features, provenance


def class_indices(samples: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Index of each sample's emotion in ``classes`` (which must contain it)."""
    lookup = {c: i for i, c in enumerate(classes)}
    emotions = samples["emotion"].astype(str)
    unknown = sorted(set(emotions) - set(lookup))
    if unknown:
        raise LabelError(f"samples have classes {', '.join(unknown)} outside {', '.join(classes)}")
    return emotions.map(lookup).to_numpy(dtype=np.int64)

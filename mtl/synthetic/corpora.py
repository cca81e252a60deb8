"""Synthetic corpora written in the exact layouts of the real ones.

:func:`make_corpus` writes a stand-in for eNTERFACE'05, SAVEE or EMO-DB that
:func:`mtl.corpora.load_corpus` reads like the real corpus:

=========  ==========================================================  =================================
corpus     layout                                                      full size
=========  ==========================================================  =================================
enterface  ``subject N/<emotion>/sentence K/sN_<code>_K.avi`` (MJPEG   43 subjects numbered 1-44 (no 14),
           + 48 kHz PCM track)                                         6 emotions x 5 sentences, 1287
savee      ``AudioData/<spk>/<code><nn>.wav`` (44.1 kHz) and           DC JE JK KL, 15 per emotion and
           ``AudioVisualClip/<spk>/<code><nn>.avi`` (same speech)      30 neutral each: 480 + 480
emodb      ``wav/<spk><text><emotion><version>.wav`` (16 kHz)          10 speakers, 535 (W127 L81 E46
                                                                       A69 F71 T62 N79)
=========  ==========================================================  =================================

The full eNTERFACE keeps the real corpus's irregularities: subject 6 has no
sentence folders (clips lie in the emotion folder), subject 11's folders are
capitalised (``Subject 11/Anger/Sentence 1``), and three clips are missing.
``tiny`` has two or three speakers and a few items per class (every class),
for tests; tiny eNTERFACE keeps one irregular subject and one missing clip.

Speech comes from :mod:`mtl.synthetic.speech` (each speaker one voice), faces
from :mod:`mtl.synthetic.faces` (each speaker one face identity in every clip).
Video clips are short (25 frames = 1 s at 25 fps, 128 x 128; tiny 20 frames)
and their speech lasts as long as the clip. The action-unit intensities of
every video frame go to ``au_labels.csv`` at the corpus root (path relative
to the root, frame, one column per AU); the loaders ignore it.

Generation writes into a hidden temporary folder beside the target and
renames it at the end, with ``synthetic.json`` (the generator's parameters)
and a ``.complete`` marker: a corpus folder is either complete or absent.
A second call returns the existing folder at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from mtl import paths
from mtl.corpora import corpus_card, corpus_names, emodb, enterface, savee
from mtl.errors import ConfigError
from mtl.io import exit_with_parent, read_json, write_json
from mtl.media import write_avi
from mtl.synthetic import faces
from mtl.synthetic.speech import CORPUS_STYLES, Speaker, make_speaker, synthesize

log = logging.getLogger("mtl.synthetic")

SIZES: tuple[str, ...] = ("full", "tiny")
GENERATOR_VERSION = 2
"""Bumped whenever the output for the same (name, size, seed) changes; stale folders are regenerated."""
MANIFEST = "synthetic.json"
MARKER = ".complete"
AU_LABELS = "au_labels.csv"
FPS = 25
FRAME_SIZE: tuple[int, int] = (128, 128)
"""Video frame (height, width), pixels."""
CLIP_FRAMES: dict[str, int] = {"full": 25, "tiny": 20}
"""Frames per video clip; its speech lasts frames / FPS seconds."""

# The layouts this generator writes (a corpus card's ``generator``), each with
# a fixed number that seeds its random streams: the files of a layout never
# change when another layout is added.
_CORPUS_IDS = {"enterface": 0, "savee": 1, "emodb": 2}
_SPEECH, _FACE, _VOICE, _PLAN = 0, 1, 2, 3  # independent random streams

# eNTERFACE layout: subject numbers with the real corpus's gap, and its irregularities.
ENTERFACE_SUBJECTS: dict[str, tuple[int, ...]] = {
    "full": tuple(n for n in range(1, 45) if n != 14),
    "tiny": (1, 6),
}
ENTERFACE_FLAT_SUBJECT = 6
"""Clips lie directly in the emotion folder (no ``sentence K`` folders)."""
ENTERFACE_CAPITALISED_SUBJECT = 11
"""``Subject 11/Anger/Sentence 1/...``."""
ENTERFACE_MISSING: dict[str, tuple[tuple[int, str, int], ...]] = {
    "full": ((17, "fe", 5), (29, "di", 3), (40, "su", 2)),
    "tiny": ((1, "su", 5),),
}
"""(subject, code, sentence) clips that are absent, as some are in the real corpus."""
ENTERFACE_FEMALE_SHARE = 0.23

SAVEE_PER_EMOTION: dict[str, tuple[int, int]] = {"full": (15, 30), "tiny": (2, 2)}
"""Clips per speaker: (each non-neutral emotion, neutral)."""
SAVEE_SPEAKERS: dict[str, tuple[str, ...]] = {"full": savee.SPEAKERS, "tiny": ("DC", "JE")}

EMODB_COUNTS: dict[str, int] = {"W": 127, "L": 81, "E": 46, "A": 69, "F": 71, "T": 62, "N": 79}
"""Utterances per emotion code in the real EMO-DB (535)."""
EMODB_TINY_SPEAKERS: tuple[str, ...] = ("03", "09", "16")
EMODB_TINY_TEXTS: tuple[str, ...] = ("a01", "b01")


@dataclass(frozen=True)
class Item:
    """One recording to generate."""

    index: int
    speaker: str
    gender: str
    emotion: str
    text: str
    audio_path: str | None
    """Relative path of the .wav file, if any."""
    video_path: str | None
    """Relative path of the .avi clip (with the same speech as its sound track), if any."""


def default_root(name: str, size: str = "full", seed: int = 0) -> Path:
    """``cache_dir()/synthetic/<name>-<size>-seed<seed>``."""
    return paths.cache_dir() / "synthetic" / f"{name}-{size}-seed{seed}"


def make_corpus(name: str, root: str | Path | None = None, size: str = "full", seed: int = 0,
                workers: int | None = None) -> Path:
    """Write (once) a synthetic corpus in the real layout and return its folder.

    Parameters
    ----------
    name : a corpus whose card has a synthetic ``generator``
        (:func:`mtl.corpora.corpus_names` with ``synthetic=True``: enterface, savee, emodb).
    root : target folder; default :func:`default_root` (under ``MTL_CACHE_DIR``).
    size : "full" (the real corpus's size) or "tiny" (a few items of every class, for tests).
    seed : everything generated follows from it; same seed, same files.
    workers : processes; default 2 (or fewer cores) for corpora of over 100 recordings, else 1.
    """
    if corpus_card(name).generator not in _CORPUS_IDS:
        raise ConfigError(f"no synthetic corpus {name!r}; choose one of {', '.join(corpus_names(synthetic=True))}")
    name = corpus_card(name).generator  # the layout to write
    if size not in SIZES:
        raise ConfigError(f"size must be one of {SIZES}, got {size!r}")
    root = Path(root).expanduser().resolve() if root is not None else default_root(name, size, seed)
    if _is_current(root):
        return root
    started = time.perf_counter()
    items = plan(name, size, seed)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        au_tables = _generate(name, size, seed, items, staging, workers)
        video_items = [item for item in items if item.video_path]
        if video_items:
            pd.concat(au_tables, ignore_index=True).to_csv(staging / AU_LABELS, index=False, float_format="%.4f")
        write_json(staging / MANIFEST, _manifest(name, size, seed, items))
        (staging / MARKER).write_text(f"{GENERATOR_VERSION}\n")
        _install(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("synthetic %s (%s, seed %d): %d recordings in %.1f s at %s", name, size, seed, len(items),
             time.perf_counter() - started, root)
    return root


def plan(name: str, size: str, seed: int) -> list[Item]:
    """Every recording of one synthetic corpus, in a fixed order (deterministic)."""
    if name == "enterface":
        return _plan_enterface(size, seed)
    if name == "savee":
        return _plan_savee(size)
    return _plan_emodb(size, seed)


def _plan_enterface(size: str, seed: int) -> list[Item]:
    rng = np.random.default_rng([seed, _CORPUS_IDS["enterface"], _PLAN])
    missing = set(ENTERFACE_MISSING[size])
    items: list[Item] = []
    for subject in ENTERFACE_SUBJECTS[size]:
        gender = "f" if rng.random() < ENTERFACE_FEMALE_SHARE else "m"
        for code, word in enterface.CODES.items():
            for sentence in enterface.SENTENCES:
                if (subject, code, sentence) in missing:
                    continue
                file = f"s{subject}_{code}_{sentence}.avi"
                if subject == ENTERFACE_FLAT_SUBJECT:
                    rel = f"subject {subject}/{word}/{file}"
                elif subject == ENTERFACE_CAPITALISED_SUBJECT:
                    rel = f"Subject {subject}/{word.capitalize()}/Sentence {sentence}/{file}"
                else:
                    rel = f"subject {subject}/{word}/sentence {sentence}/{file}"
                items.append(Item(len(items), f"s{subject}", gender, word, f"{code}_{sentence}", None, rel))
    return items


def _plan_savee(size: str) -> list[Item]:
    per_emotion, neutral = SAVEE_PER_EMOTION[size]
    items: list[Item] = []
    for speaker in SAVEE_SPEAKERS[size]:
        for code, emotion in savee.CODES.items():
            for number in range(1, (neutral if code == "n" else per_emotion) + 1):
                stem = f"{code}{number:02d}"
                items.append(Item(len(items), speaker, "m", emotion, stem,
                                  f"{savee.AUDIO_FOLDER}/{speaker}/{stem}.wav",
                                  f"{savee.VIDEO_FOLDER}/{speaker}/{stem}.avi"))
    return items


def _plan_emodb(size: str, seed: int) -> list[Item]:
    if size == "tiny":
        cells = [(spk, text, code, "a") for spk in EMODB_TINY_SPEAKERS for code in EMODB_COUNTS
                 for text in EMODB_TINY_TEXTS]
    else:
        # Each emotion's count spread over the 100 speaker x text cells; more than 100 takes a second version.
        rng = np.random.default_rng([seed, _CORPUS_IDS["emodb"], _PLAN])
        pairs = [(spk, text) for spk in emodb.SPEAKERS for text in emodb.TEXTS]
        cells = []
        for code, count in EMODB_COUNTS.items():
            order = rng.permutation(len(pairs))
            for k in range(count):
                spk, text = pairs[order[k % len(pairs)]]
                cells.append((spk, text, code, "abcdefgh"[k // len(pairs)]))
        cells.sort()
    items = []
    for spk, text, code, version in cells:
        gender = "m" if spk in emodb.MALE_SPEAKERS else "f"
        items.append(Item(len(items), spk, gender, emodb.CODES[code], text,
                          f"wav/{spk}{text}{code}{version}.wav", None))
    return items


# --------------------------------------------------------------------------- generation
def _generate(name: str, size: str, seed: int, items: list[Item], staging: Path, workers: int | None
              ) -> list[pd.DataFrame]:
    """Write every item into ``staging``; return the AU tables of the video items."""
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(items) > 100 else 1
    chunks = [items[i:i + 16] for i in range(0, len(items), 16)]
    jobs = [(name, size, seed, chunk, str(staging)) for chunk in chunks]
    if workers <= 1:
        return [table for job in jobs for table in _write_items(*job)]
    context = multiprocessing.get_context("spawn")  # no forked copies of the parent's threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_quiet_worker,
                             initargs=(os.getpid(),)) as pool:
        return [table for tables in pool.map(_write_items, *zip(*jobs)) for table in tables]


def _quiet_worker(parent: int) -> None:
    """Worker initialiser: one OpenCV thread, and an end with ``parent`` (:func:`mtl.io.exit_with_parent`)."""
    exit_with_parent(parent)
    import cv2

    cv2.setNumThreads(1)


def _write_items(name: str, size: str, seed: int, items: list[Item], staging: str) -> list[pd.DataFrame]:
    """Generate and write some items (runs in a worker process); return their AU tables."""
    style = CORPUS_STYLES[name]
    duration = CLIP_FRAMES[size] / FPS
    tables = []
    for item in items:
        rng = np.random.default_rng([seed, _CORPUS_IDS[name], item.index, _SPEECH])
        voice = speaker_voice(name, item.speaker, item.gender, seed)
        speech = synthesize(item.emotion, voice, item.text, style, rng,
                            duration=duration if item.video_path else None)
        if item.audio_path:
            target = Path(staging) / item.audio_path
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(target), speech, style.sample_rate, subtype="PCM_16")
        if item.video_path:
            tables.append(_write_clip(name, seed, item, speech, style.sample_rate, Path(staging), size))
    return tables


def _write_clip(name: str, seed: int, item: Item, speech: np.ndarray, sample_rate: int, staging: Path,
                size: str) -> pd.DataFrame:
    rng = np.random.default_rng([seed, _CORPUS_IDS[name], item.index, _FACE])
    frames, au, au_names = faces.render_clip(face_identity(name, item.speaker, seed), item.emotion,
                                             CLIP_FRAMES[size], rng, size=FRAME_SIZE)
    target = staging / item.video_path
    target.parent.mkdir(parents=True, exist_ok=True)
    write_avi(target, frames, FPS, audio=speech, sample_rate=sample_rate)
    table = pd.DataFrame(au, columns=au_names)
    table.insert(0, "frame", np.arange(len(frames)))
    table.insert(0, "path", item.video_path)
    return table


def speaker_voice(name: str, speaker: str, gender: str, seed: int) -> Speaker:
    """The voice of one speaker of a synthetic corpus (the same in every recording)."""
    rng = np.random.default_rng([seed, _CORPUS_IDS[name], zlib.crc32(speaker.encode()), _VOICE])
    return make_speaker(speaker, gender, rng)


def face_identity(name: str, speaker: str, seed: int) -> faces.FaceIdentity:
    """The face of one speaker of a synthetic corpus (the same in every clip)."""
    rng = np.random.default_rng([seed, _CORPUS_IDS[name], zlib.crc32(speaker.encode()), _FACE])
    return faces.random_identity(rng)


# --------------------------------------------------------------------------- bookkeeping
def _manifest(name: str, size: str, seed: int, items: list[Item]) -> dict:
    style = CORPUS_STYLES[name]
    speakers = {item.speaker: item.gender for item in items}
    counts = pd.Series([item.emotion for item in items]).value_counts().sort_index()
    video = any(item.video_path for item in items)
    manifest = dict(
        generator="mtl.synthetic", version=GENERATOR_VERSION, corpus=name, size=size, seed=seed,
        n_recordings=len(items), emotions={k: int(v) for k, v in counts.items()},
        sample_rate=style.sample_rate, channel=dict(eq=style.eq, band=style.band, snr_db=style.snr_db,
                                                    reverb_s=style.reverb_s, hum_db=style.hum_db),
        acted_intensity=style.intensity,
        speakers={spk: asdict(speaker_voice(name, spk, gender, seed)) for spk, gender in speakers.items()},
    )
    if video:
        manifest.update(fps=FPS, frame_size=list(FRAME_SIZE), clip_frames=CLIP_FRAMES[size], au_labels=AU_LABELS)
    if name == "enterface":
        manifest["irregular"] = dict(
            flat_subject=ENTERFACE_FLAT_SUBJECT if ENTERFACE_FLAT_SUBJECT in ENTERFACE_SUBJECTS[size] else None,
            capitalised_subject=(ENTERFACE_CAPITALISED_SUBJECT
                                 if ENTERFACE_CAPITALISED_SUBJECT in ENTERFACE_SUBJECTS[size] else None),
            missing=[f"s{s}_{c}_{k}" for s, c, k in ENTERFACE_MISSING[size]])
    return manifest


def _is_current(root: Path) -> bool:
    """Whether ``root`` holds a complete corpus of this generator version."""
    if not (root / MARKER).is_file() or not (root / MANIFEST).is_file():
        return False
    return read_json(root / MANIFEST).get("version") == GENERATOR_VERSION


def _install(staging: Path, root: Path) -> None:
    """Rename the finished ``staging`` folder to ``root`` (replacing an outdated or empty one)."""
    if root.exists():
        if _is_current(root):  # another process finished the same corpus first
            return
        if any(root.iterdir()) and not (root / MANIFEST).is_file():
            raise ConfigError(f"{root} exists and is not a synthetic corpus; choose another root or remove it")
        outdated = root.with_name(f".{root.name}.outdated-{os.getpid()}")
        os.replace(root, outdated)
        log.info("replacing outdated synthetic corpus at %s", root)
        try:
            os.replace(staging, root)
        finally:
            shutil.rmtree(outdated, ignore_errors=True)
        return
    try:
        os.replace(staging, root)
    except OSError:
        if not _is_current(root):  # lost a race to a process that wrote the same corpus
            raise

"""Your own corpus: a manifest CSV, or a class-per-folder image tree.

Manifest CSV: columns ``path``, ``emotion``, ``speaker`` (required) and
``utterance``, ``gender``, ``text`` (optional). Relative paths are resolved
against the CSV's folder; the modality follows the extension (audio: wav flac
ogg mp3; video: avi mp4 mov mkv webm; image: png jpg jpeg tif tiff bmp).
A manifest reads only files inside its own folder: a path that leaves it as
written (through ``..``, or an absolute path elsewhere) is skipped unless
``allow_outside=True``; symlinks inside the folder are followed (placing one
there is the folder owner's choice).
Emotion names are normalised (``"Happy"`` -> ``"happiness"``); the original
spelling stays in ``code``.

Image folder: ``<root>/<emotion>/<file>`` (speaker ``"unknown"``) or
``<root>/<emotion>/<speaker>/<file>``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mtl.corpora.base import IMAGE_SUFFIXES, TableBuilder, file_problem, modality_of, require_root
from mtl.corpora.labels import EMOTIONS, LabelError, normalise_emotion
from mtl.errors import BadInputError, MissingDataError

REQUIRED = ("path", "emotion", "speaker")
UNKNOWN_SPEAKER = "unknown"


def load_manifest(csv: str | Path, corpus: str | None = None, strict: bool = False,
                  allow_outside: bool = False) -> pd.DataFrame:
    """The table of the files a manifest CSV lists; ``corpus`` defaults to the CSV's stem.

    ``allow_outside=True`` also reads files outside the CSV's folder (by
    default they are skipped, see the module docstring).
    """
    csv = Path(csv).expanduser().resolve()
    if not csv.is_file():
        raise MissingDataError(f"manifest not found: {csv}")
    try:
        manifest = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise BadInputError(csv, f"not a readable CSV manifest ({error})") from error
    manifest.columns = [str(c).strip().lower() for c in manifest.columns]
    absent = [c for c in REQUIRED if c not in manifest.columns]
    if absent:
        raise BadInputError(csv, f"manifest lacks column(s) {', '.join(absent)}; "
                                 f"needs {', '.join(REQUIRED)} (optional: utterance, gender, text)")
    table = TableBuilder(corpus or csv.stem, strict)
    for index, record in enumerate(manifest.to_dict("records")):
        where = f"{csv.name} line {index + 2}"  # line 1 is the header
        raw = record["path"].strip()
        if not raw:
            table.skip(csv, f"{where}: empty path")
            continue
        path = Path(os.path.normpath(csv.parent / Path(raw).expanduser()))  # as written: ".." removed, no symlink
        if not (allow_outside or path.is_relative_to(csv.parent)):
            table.skip(path, f"{where}: outside the manifest's folder {csv.parent} (pass allow_outside=True "
                             "to read files elsewhere)")
            continue
        modality = modality_of(path)
        if modality is None:
            table.skip(path, f"{where}: unknown file type {path.suffix!r} (not audio, video or image)")
            continue
        problem = file_problem(path)
        if problem is not None:
            table.skip(path, f"{where}: {problem}")
            continue
        try:
            emotion = normalise_emotion(record["emotion"])
        except LabelError as error:
            table.skip(path, f"{where}: {error}")
            continue
        speaker = record["speaker"].strip()
        if not speaker:
            table.skip(path, f"{where}: empty speaker")
            continue
        utterance = record.get("utterance", "").strip() or _relative_id(path, csv.parent)
        optional = {k: record[k].strip() for k in ("gender", "text") if record.get(k, "").strip()}
        table.add(path.resolve(), modality, speaker, utterance, emotion, record["emotion"].strip(), **optional)
    return table.build()


def load_image_folder(root: str | Path, corpus: str | None = None, strict: bool = False) -> pd.DataFrame:
    """The table of a class-per-folder image tree; ``corpus`` defaults to the folder's name."""
    root = require_root(root, corpus or Path(root).name)
    table = TableBuilder(corpus or root.name, strict)
    unknown: dict[Path, int] = {}
    for path in table.media_files(root, IMAGE_SUFFIXES):
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            table.skip(path, "image is not inside an emotion folder (<root>/<emotion>/<file>)")
            continue
        try:
            emotion = normalise_emotion(parts[0])
        except LabelError:
            unknown[root / parts[0]] = unknown.get(root / parts[0], 0) + 1
            continue
        speaker = parts[1] if len(parts) > 2 else UNKNOWN_SPEAKER
        table.add(path, "image", speaker, _relative_id(path, root), emotion, parts[0])
    for folder, count in unknown.items():
        table.skip(folder, f"unknown emotion folder name {folder.name!r}: {count} image(s) skipped "
                           f"(use one of {', '.join(EMOTIONS)} or a synonym such as 'happy')")
    return table.build()


def _relative_id(path: Path, base: Path) -> str:
    """A file's id: its path relative to ``base`` without extension (absolute if outside ``base``)."""
    try:
        return path.relative_to(base).with_suffix("").as_posix()
    except ValueError:
        return path.with_suffix("").as_posix()

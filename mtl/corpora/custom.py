"""Your own corpus: a manifest CSV, a class-per-folder tree, or files whose names a regular expression parses.

Manifest CSV: columns ``path``, ``emotion``, ``speaker`` (required) and
``utterance``, ``gender``, ``text`` (optional). Relative paths are resolved
against the CSV's folder; the modality follows the extension (audio: wav flac
ogg mp3; video: avi mp4 mov mkv webm; image: png jpg jpeg tif tiff bmp).
A manifest reads only files inside its own folder: a path that leaves it as
written (through ``..``, or an absolute path elsewhere) is skipped unless
``allow_outside=True``; symlinks inside the folder are followed (placing one
there is the folder owner's choice). Several rows may share an utterance id
(the frames of one image sequence: one recording, kept in one fold by the
utterance and speaker protocols); the same file twice is skipped.

Folder tree: ``<root>/<emotion>/<file>`` (speaker ``"unknown"``) or
``<root>/<emotion>/<speaker>/<file>`` (:func:`load_image_folder`), or any
layout of ``<emotion>``, ``<speaker>``, ``<utterance>`` folders above the
files (:func:`load_folder_tree`, e.g. ``<speaker>/<emotion>/<utterance>/<file>``
for image sequences).

Pattern: every file a glob finds under the root whose path relative to it
matches a regular expression with named groups ``emotion`` and optionally
``speaker``, ``utterance`` and any other field (kept as a column; :func:`load_pattern`).

Labels. Emotion names are normalised (``"Happy"`` -> ``"happiness"``); the
original spelling stays in ``code``. A ``labels`` map (a corpus card's, see
:mod:`mtl.corpora.cards`) turns a corpus's codes or folder names into emotion
names first (``{"AN": "anger", "CO": "contempt"}``); a code neither in the map
nor an emotion name skips its file, with the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from mtl.corpora.base import (AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, TableBuilder, file_problem,
                              modality_of, require_root)
from mtl.corpora.labels import LabelError, normalise_emotion
from mtl.errors import BadInputError, ConfigError, MissingDataError

REQUIRED = ("path", "emotion", "speaker")
UNKNOWN_SPEAKER = "unknown"
SUFFIXES = {"audio": AUDIO_SUFFIXES, "video": VIDEO_SUFFIXES, "image": IMAGE_SUFFIXES}
"""The file extensions of each modality (compared lower-case)."""
TREE_FIELDS = ("emotion", "speaker", "utterance")
"""The folder names a :func:`load_folder_tree` layout may use, as ``<name>``, above ``<file>``."""


def emotion_of(code: str, labels: Mapping[str, str] | None = None) -> str:
    """The emotion of a corpus's ``code`` (or folder name): ``labels[code]`` (exact, else any case), else its
    normalised name; :class:`LabelError` naming the code and the map's codes when neither knows it."""
    code = str(code).strip()
    if labels:
        folded = {str(k).lower(): v for k, v in labels.items()}
        if code in labels or code.lower() in folded:
            return labels.get(code) or folded[code.lower()]
    try:
        return normalise_emotion(code)
    except LabelError as error:
        if not labels:
            raise
        raise LabelError(f"unknown code {code!r} (the card's labels: {' '.join(map(str, labels))})") from error


def load_manifest(csv: str | Path, corpus: str | None = None, strict: bool = False,
                  allow_outside: bool = False, labels: Mapping[str, str] | None = None,
                  attributes: Iterable[str] = (), modality: str | None = None) -> pd.DataFrame:
    """The table of the files a manifest CSV lists; ``corpus`` defaults to the CSV's stem.

    ``allow_outside=True`` also reads files outside the CSV's folder (by
    default they are skipped, see the module docstring); ``labels`` maps the
    ``emotion`` column's codes to names (:func:`emotion_of`); ``attributes``
    are further columns kept in the table (each must be in the CSV);
    ``modality`` skips files of any other modality.
    """
    csv = Path(csv).expanduser().resolve()
    if not csv.is_file():
        raise MissingDataError(f"manifest not found: {csv}")
    try:
        manifest = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise BadInputError(csv, f"not a readable CSV manifest ({error})") from error
    manifest.columns = [str(c).strip().lower() for c in manifest.columns]
    attributes = tuple(attributes)
    absent = [c for c in (*REQUIRED, *attributes) if c not in manifest.columns]
    if absent:
        raise BadInputError(csv, f"manifest lacks column(s) {', '.join(absent)}; "
                                 f"needs {', '.join(REQUIRED)} (optional: utterance, gender, text)"
                                 + (f" and the attributes {', '.join(attributes)}" if attributes else ""))
    table = TableBuilder(corpus or csv.stem, strict, sequences=True, columns=attributes)
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
        problem = _media_problem(path, modality)
        if problem is not None:
            table.skip(path, f"{where}: {problem}")
            continue
        try:
            emotion = emotion_of(record["emotion"], labels)
        except LabelError as error:
            table.skip(path, f"{where}: {error}")
            continue
        speaker = record["speaker"].strip()
        if not speaker:
            table.skip(path, f"{where}: empty speaker")
            continue
        utterance = record.get("utterance", "").strip() or _relative_id(path, csv.parent)
        optional = {k: record[k].strip() for k in ("gender", "text", *attributes) if record.get(k, "").strip()}
        table.add(path.resolve(), modality_of(path) or "", speaker, utterance, emotion, record["emotion"].strip(),
                  f"{where}: ", **optional)
    return table.build()


def load_image_folder(root: str | Path, corpus: str | None = None, strict: bool = False,
                      labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The table of a class-per-folder image tree, ``<emotion>/<file>`` or ``<emotion>/<speaker>/<file>``
    (both may mix); ``corpus`` defaults to the folder's name."""
    return load_folder_tree(root, None, "image", corpus, strict, labels)


def load_folder_tree(root: str | Path, layout: str | None = "<emotion>/<file>", modality: str = "image",
                     corpus: str | None = None, strict: bool = False,
                     labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The table of a tree whose folders name each file's emotion (and speaker, utterance).

    ``layout`` is the path of a file below ``root``, its folders written as
    ``<emotion>``, ``<speaker>`` or ``<utterance>`` and ending in ``<file>``
    (``"<emotion>/<speaker>/<utterance>/<file>"``); None: ``<emotion>/<file>``
    or ``<emotion>/<speaker>/<file>``, mixed. Files of ``modality`` only; a
    file at another depth is skipped. Without an ``<utterance>`` folder each
    file is its own utterance; with one, its files are one sequence.
    """
    fields = layout_fields(layout)
    root = require_root(root, corpus or Path(root).name)
    table = TableBuilder(corpus or root.name, strict, sequences="utterance" in (fields or ()))
    for path in table.media_files(root, SUFFIXES[modality]):
        parts = path.relative_to(root).parts
        names = fields if fields is not None else ("emotion", "speaker")[:len(parts) - 1]
        if len(parts) < 2 or len(parts) != len(names) + 1:
            table.skip(path, "not inside an emotion folder at the layout's depth "
                             f"({layout or '<emotion>/<file> or <emotion>/<speaker>/<file>'})")
            continue
        found = dict(zip(names, parts))
        try:
            emotion = emotion_of(found["emotion"], labels)
        except LabelError as error:
            table.skip(path, f"emotion folder {found['emotion']!r}: {error}")
            continue
        utterance = found.get("utterance") or _relative_id(path, root)
        table.add(path, modality, found.get("speaker", UNKNOWN_SPEAKER), utterance, emotion, found["emotion"])
    return table.build()


def load_pattern(root: str | Path, glob: str, regex: str | re.Pattern[str], modality: str, corpus: str | None = None,
                 strict: bool = False, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The table of the files ``root.glob(glob)`` finds whose path relative to ``root`` fully matches ``regex``.

    The named groups of ``regex`` give ``emotion`` (required), ``speaker``
    (default ``"unknown"``), ``utterance`` (default: the file's relative path
    without extension; files sharing speaker, emotion and utterance are one sequence)
    and any other field, kept as a column. A file that does not match is
    skipped with the reason; so is a file of another modality.
    """
    pattern = re.compile(regex) if isinstance(regex, str) else regex
    if "emotion" not in pattern.groupindex:
        raise ConfigError(f"the regular expression {pattern.pattern!r} has no named group 'emotion'")
    root = require_root(root, corpus or Path(root).name)
    others = [g for g in pattern.groupindex if g not in TREE_FIELDS]
    table = TableBuilder(corpus or root.name, strict, sequences="utterance" in pattern.groupindex, columns=others)
    for path in sorted(root.glob(glob)):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.is_dir():
            continue  # hidden files (an unfinished write) and folders the glob also names
        problem = _media_problem(path, modality)
        match = pattern.fullmatch(relative.as_posix()) if problem is None else None
        if problem is not None or match is None:
            table.skip(path, problem or f"path {relative.as_posix()!r} does not match the regex {pattern.pattern!r}")
            continue
        try:
            emotion = emotion_of(match["emotion"], labels)
        except LabelError as error:
            table.skip(path, str(error))
            continue
        group = match.groupdict()
        table.add(path, modality, group.get("speaker") or UNKNOWN_SPEAKER,
                  group.get("utterance") or _relative_id(path, root), emotion, match["emotion"],
                  **{k: group[k] for k in others if group[k] is not None})
    return table.build()


def layout_fields(layout: str | None) -> tuple[str, ...] | None:
    """The folder fields of a tree layout, top down; :class:`ConfigError` for a malformed one."""
    if layout is None:
        return None
    *folders, last = layout.strip("/").split("/")
    names = tuple(f[1:-1] for f in folders if f.startswith("<") and f.endswith(">"))
    if (last != "<file>" or len(names) != len(folders) or set(names) - set(TREE_FIELDS)
            or len(set(names)) != len(names) or "emotion" not in names):
        raise ConfigError(f"layout {layout!r} must be folders among <emotion> (required), <speaker> and "
                         "<utterance>, each once, then <file> (e.g. '<emotion>/<speaker>/<file>')")
    return names


def _media_problem(path: Path, modality: str | None) -> str | None:
    """Why ``path`` is no usable media file (of ``modality`` when given), or None."""
    found = modality_of(path)
    if found is None:
        return f"unknown file type {path.suffix!r} (not audio, video or image)"
    if modality is not None and found != modality:
        return f"a {found} file in a corpus of {modality}"
    return file_problem(path)


def _relative_id(path: Path, base: Path) -> str:
    """A file's id: its path relative to ``base`` without extension (absolute if outside ``base``)."""
    try:
        return path.relative_to(base).with_suffix("").as_posix()
    except ValueError:
        return path.with_suffix("").as_posix()

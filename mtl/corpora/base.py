"""What every corpus loader shares: the table schema, file discovery and the skip report.

A loader walks the files of one corpus, turns each file name into a row and
hands it to a :class:`TableBuilder`. A file that cannot be used is *skipped*:
its path and the reason go to ``df.attrs["skipped"]`` (a list of
``(path, reason)`` pairs) and one warning summarises them; with
``strict=True`` the first one raises :class:`~mtl.errors.BadInputError`.
Expected files that are absent (eNTERFACE clips) go to ``df.attrs["missing"]``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd

from mtl.errors import BadInputError, MissingDataError
from mtl.paths import portable_path

log = logging.getLogger("mtl.corpora")

COLUMNS: tuple[str, ...] = ("path", "corpus", "modality", "speaker", "utterance", "emotion", "code")
"""Columns every corpus table has, in this order."""
OPTIONAL_COLUMNS: tuple[str, ...] = ("gender", "text")
"""Columns a table has when its corpus provides them (gender "m"/"f", sentence id)."""
MODALITIES: tuple[str, ...] = ("audio", "video", "image")

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3"})
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mov", ".mkv", ".webm"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})


def modality_of(path: str | Path) -> str | None:
    """``"audio"``, ``"video"`` or ``"image"`` from the file extension; ``None`` if unknown."""
    suffix = Path(path).suffix.lower()
    for modality, suffixes in (("audio", AUDIO_SUFFIXES), ("video", VIDEO_SUFFIXES), ("image", IMAGE_SUFFIXES)):
        if suffix in suffixes:
            return modality
    return None


def require_root(root: str | Path, corpus: str) -> Path:
    """``root`` as an absolute path; :class:`MissingDataError` if it is not a folder."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise MissingDataError(
            f"{corpus} corpus not found at {root}: pass root=..., or set the environment variable "
            f"MTL_DATA_ROOT to the folder that holds the corpus folders (e.g. "
            f"`export MTL_DATA_ROOT=/path/to/data`); for a synthetic stand-in use "
            f"mtl.synthetic.make_corpus({corpus!r})")
    return root


def media_files(base: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under ``base`` (recursively) whose extension is in ``suffixes`` (any case), sorted.

    Hidden files and folders (name starting with ".") are left out: they are
    temporary files of an unfinished write, or system files.
    """
    wanted = {s.lower() for s in suffixes}
    found = [p for p in base.rglob("*")
             if p.suffix.lower() in wanted and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(base).parts)]
    return sorted(found)


class TableBuilder:
    """Collects rows, skipped files and missing files of one corpus; builds the table."""

    def __init__(self, corpus: str, strict: bool = False):
        self.corpus = corpus
        self.strict = strict
        self.rows: list[dict[str, str]] = []
        self.skipped: list[tuple[str, str]] = []
        self.missing: list[tuple[str, str]] = []
        self._first_path: dict[str, str] = {}

    def skip(self, path: str | Path, reason: str) -> None:
        """Record a file that cannot be used (raise at once when strict)."""
        if self.strict:
            raise BadInputError(path, reason)
        self.skipped.append((str(path), reason))

    def match_name(self, path: Path, pattern: re.Pattern[str], layout: str, codes: Mapping[str, str],
                   label: str) -> re.Match[str] | None:
        """Parse a file name whose ``pattern`` has a ``code`` group; skip the file (and return None) if it fails.

        ``layout`` describes the expected name for the skip message, ``codes``
        are the known emotion codes, ``label`` the corpus as people write it.
        """
        match = pattern.match(path.stem)
        if match is None:
            self.skip(path, f"name does not follow {layout}")
        elif match["code"] not in codes:
            self.skip(path, f"unknown {label} emotion code {match['code']!r} (known: {' '.join(codes)})")
            match = None
        return match

    def add_named(self, paths: Iterable[Path], pattern: re.Pattern[str], layout: str, codes: Mapping[str, str],
                  label: str, fields: Callable[[Path, re.Match[str]], dict[str, str]]) -> None:
        """Add every file of ``paths`` whose name parses (:meth:`match_name`); skip the others.

        ``fields(path, match)`` gives the row's speaker, emotion, code and
        optional columns; the modality is audio and the utterance id the file
        name's stem unless ``fields`` says otherwise.
        """
        for path in paths:
            match = self.match_name(path, pattern, layout, codes, label)
            if match is not None:
                self.add(path, **{"modality": "audio", "utterance": path.stem, **fields(path, match)})

    def report_missing(self, path: str | Path, reason: str) -> None:
        """Record an expected file that is absent (never raises: the corpus is usable without it)."""
        self.missing.append((str(path), reason))

    def add(self, path: Path, modality: str, speaker: str, utterance: str, emotion: str, code: str,
            **optional: str) -> None:
        """Add one row; a second file with the same utterance id is skipped as a duplicate."""
        if utterance in self._first_path:
            self.skip(path, f"duplicate utterance id {utterance!r} (first file: {self._first_path[utterance]})")
            return
        self._first_path[utterance] = str(path)
        row = dict(path=str(path), corpus=self.corpus, modality=modality, speaker=speaker,
                   utterance=utterance, emotion=emotion, code=code)
        row.update({k: v for k, v in optional.items() if k in OPTIONAL_COLUMNS})
        self.rows.append(row)

    def build(self) -> pd.DataFrame:
        """The tidy table (schema :data:`COLUMNS` + available optional columns), with the reports in ``attrs``."""
        optional = [c for c in OPTIONAL_COLUMNS if any(c in r for r in self.rows)]
        df = pd.DataFrame(self.rows, columns=[*COLUMNS, *optional])
        df.attrs["skipped"] = list(self.skipped)
        df.attrs["missing"] = list(self.missing)
        for kind, items in (("skipped", self.skipped), ("missing", self.missing)):
            if items:
                first_path, first_reason = items[0]
                log.warning("%s: %d file(s) %s (%d loaded); first: %s: %s; see df.attrs[%r]",
                            self.corpus, len(items), kind, len(df), portable_path(first_path), first_reason, kind)
        return df

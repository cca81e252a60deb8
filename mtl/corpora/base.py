"""What every corpus loader shares: the table schema, file discovery and the skip report.

A loader walks the files of one corpus, turns each file name into a row and
hands it to a :class:`TableBuilder`. A file that cannot be used is *skipped*:
its path and the reason go to ``df.attrs["skipped"]`` (a list of
``(path, reason)`` pairs) and one warning summarises them; with
``strict=True`` the first one raises :class:`~mtl.errors.BadInputError`.
Expected files that are absent (eNTERFACE clips) go to ``df.attrs["missing"]``.

Skipped here, before anything reads a byte: names that do not parse, entries
that are not regular files (dangling symlinks, symlink loops, FIFOs, sockets,
devices, folders named like media files; found with ``stat`` only, so a FIFO
cannot block the walk) and paths that are not valid UTF-8 (neither the
decoders nor the feature cache's CSV files can take them). Reported paths are
always valid UTF-8 (:func:`printable_path`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
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


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a regular file, or ``None`` if it is one (after symlinks).

    Uses ``stat`` only and never opens the file, so a FIFO cannot block the
    caller. The reasons: "file not found", "dangling symlink (...)", "symlink
    loop", "not a regular file but a FIFO (named pipe)" (or a folder, socket, device), and
    "cannot stat (...)" for any other error of the file system.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode  # follows symlinks
    except FileNotFoundError:
        if path.is_symlink():
            return f"dangling symlink (its target {printable_path(os.readlink(path))} does not exist)"
        return "file not found"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop (too many levels of symbolic links)"
        return f"cannot stat ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    kind = next((name for test, name in kinds if test(mode)), "of an unknown kind")
    return f"not a regular file but {kind}"


def printable_path(path: str | Path) -> str:
    """``path`` as text that encodes as UTF-8: bytes of a non-UTF-8 name are shown as ``\\xNN`` escapes."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _is_utf8(path: str | Path) -> bool:
    try:
        str(path).encode("utf-8")  # a non-UTF-8 byte in a name is decoded by Python as a lone surrogate
    except UnicodeEncodeError:
        return False
    return True


class TableBuilder:
    """Collects rows, skipped files and missing files of one corpus; builds the table."""

    def __init__(self, corpus: str, strict: bool = False, sequences: bool = False, columns: Iterable[str] = ()):
        """``sequences``: several files may share an utterance id (the frames of one image sequence; grouped
        by speaker, emotion code and utterance, see :meth:`build`); ``columns``: extra per-row columns kept besides
        :data:`OPTIONAL_COLUMNS` (a corpus card's attributes)."""
        self.corpus = corpus
        self.strict = strict
        self.sequences = sequences
        self.columns = tuple(columns)
        self.rows: list[dict[str, str]] = []
        self.skipped: list[tuple[str, str]] = []
        self.missing: list[tuple[str, str]] = []
        self._first_path: dict[str, str] = {}
        self._paths: dict[str, str] = {}  # path -> its utterance id

    def skip(self, path: str | Path, reason: str) -> None:
        """Record a file that cannot be used (raise at once when strict), its path written by :func:`printable_path`."""
        if self.strict:
            raise BadInputError(printable_path(path), reason)
        self.skipped.append((printable_path(path), reason))

    def media_files(self, base: Path, suffixes: Iterable[str]) -> list[Path]:
        """Regular files under ``base`` (recursively) whose extension is in ``suffixes`` (any case), sorted.

        Hidden files and folders (name starting with ".") are left out
        silently: they are temporary files of an unfinished write, or system
        files. Any other match that is not a regular file is skipped with the
        reason :func:`file_problem` gives.
        """
        wanted = {s.lower() for s in suffixes}
        found = []
        for path in sorted(base.rglob("*")):
            if path.suffix.lower() not in wanted or any(part.startswith(".") for part in path.relative_to(base).parts):
                continue
            problem = file_problem(path)
            if problem is None:
                found.append(path)
            else:
                self.skip(path, problem)
        return found

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
            where: str = "", **optional: str) -> None:
        """Add one row; skipped: a path that is not valid UTF-8, the same file twice, and (unless ``sequences``)
        a second file with the same utterance id; ``where`` (``"list.csv line 7: "``) starts their reasons."""
        if not _is_utf8(path):
            self.skip(path, "path is not valid UTF-8 (shown with \\x escapes): the audio and video decoders cannot "
                            "open it and the feature cache cannot store it; rename the file or folder")
            return
        if str(path) in self._paths:
            self.skip(path, f"{where}the same file twice (first as utterance {self._paths[str(path)]!r})")
            return
        # A sequence is one speaker's take of one emotion (take "2" of anger is not take "2" of joy);
        # without sequences an utterance id is one file.
        group = f"{speaker}/{code}/{utterance}" if self.sequences else utterance
        if group in self._first_path and not self.sequences:
            self.skip(path, f"{where}duplicate utterance id {utterance!r} (first file: {self._first_path[utterance]})")
            return
        self._first_path.setdefault(group, str(path))
        self._paths[str(path)] = utterance
        row = dict(path=str(path), corpus=self.corpus, modality=modality, speaker=speaker,
                   utterance=utterance, emotion=emotion, code=code)
        row.update({k: v for k, v in optional.items() if k in OPTIONAL_COLUMNS or k in self.columns})
        if self.sequences:
            row["recording"] = group
        self.rows.append(row)

    def build(self) -> pd.DataFrame:
        """The tidy table (schema :data:`COLUMNS` + available optional columns), with the reports in ``attrs``.

        With ``sequences``, a table where some utterance has several files
        gets a ``recording`` column (``speaker/code/utterance``): the key that
        :func:`mtl.evaluation.recording_keys` groups the files of one sequence by.
        """
        optional = [c for c in (*OPTIONAL_COLUMNS, *self.columns) if any(c in r for r in self.rows)]
        if self.sequences and len(self._first_path) < len(self.rows):
            optional.append("recording")
        df = pd.DataFrame(self.rows, columns=[*COLUMNS, *optional])
        df.attrs["skipped"] = list(self.skipped)
        df.attrs["missing"] = list(self.missing)
        for kind, items in (("skipped", self.skipped), ("missing", self.missing)):
            if items:
                first_path, first_reason = items[0]
                log.warning("%s: %d file(s) %s (%d loaded); first: %s: %s; see df.attrs[%r]",
                            self.corpus, len(items), kind, len(df), portable_path(first_path), first_reason, kind)
        return df

"""eNTERFACE'05 audio-visual emotion database.

As distributed: ``subject N/<emotion word>/sentence K/sN_<code>_K.avi`` with
codes an di fe ha sa su and five sentences per emotion. Each clip is both an
audio item (its own sound track) and a video item, so the loader takes a
``modality``. The real corpus is irregular (sentence folders nested
differently, clips directly in the emotion folder, capitalisation, missing
clips), so the loader globs every ``*.avi`` under the root and parses the
*file name* only. Subject/emotion pairs with fewer than five sentences are
listed in ``df.attrs["missing"]``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from mtl.corpora.base import TableBuilder, require_root
from mtl.errors import ConfigError

CORPUS = "enterface"
FOLDER = "enterface"
CODES: dict[str, str] = {
    "an": "anger", "di": "disgust", "fe": "fear", "ha": "happiness", "sa": "sadness", "su": "surprise",
}
SENTENCES: tuple[int, ...] = (1, 2, 3, 4, 5)

_NAME = re.compile(r"^s_?(?P<subject>\d+)_(?P<code>[a-z]{2})_(?P<sentence>\d+)$", re.IGNORECASE)


def clip_path(root: Path, subject: int, code: str, sentence: int) -> Path:
    """Where the distributed layout puts one clip."""
    return root / f"subject {subject}" / CODES[code] / f"sentence {sentence}" / f"s{subject}_{code}_{sentence}.avi"


def load_enterface(root: str | Path, modality: str = "audio", strict: bool = False) -> pd.DataFrame:
    """The eNTERFACE'05 table; ``modality`` is ``"audio"`` (the AVI's sound) or ``"video"``."""
    if modality not in ("audio", "video"):
        raise ConfigError(f"eNTERFACE has modality 'audio' or 'video', got {modality!r}")
    root = require_root(root, CORPUS)
    table = TableBuilder(CORPUS, strict)
    present: dict[tuple[int, str], set[int]] = defaultdict(set)
    for path in table.media_files(root, {".avi"}):
        match = _NAME.match(path.stem)
        if match is None:
            table.skip(path, "name does not follow eNTERFACE's sN_<code>_K.avi (e.g. s12_an_3.avi)")
            continue
        code = match["code"].lower()
        if code not in CODES:
            table.skip(path, f"unknown eNTERFACE emotion code {code!r} (known: {' '.join(CODES)})")
            continue
        subject, sentence = int(match["subject"]), int(match["sentence"])
        before = len(table.rows)
        table.add(path, modality, f"s{subject}", f"s{subject}_{code}_{sentence}", CODES[code], code,
                  text=f"{code}_{sentence}")
        if len(table.rows) > before:
            present[(subject, code)].add(sentence)
    for subject in sorted({s for s, _ in present}):
        for code, word in CODES.items():
            have = present.get((subject, code), set())
            absent = [k for k in SENTENCES if k not in have]
            if absent:
                table.report_missing(clip_path(root, subject, code, absent[0]).parent.parent,
                                     f"subject {subject}, {word}: {len(SENTENCES) - len(absent)} of "
                                     f"{len(SENTENCES)} sentences (missing sentence "
                                     f"{', '.join(map(str, absent))})")
    return table.build()

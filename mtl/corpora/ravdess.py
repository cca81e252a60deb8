"""RAVDESS speech: ``Actor_XX/MM-VC-EE-II-SS-RR-AA.wav`` (or ``.flac``: both are accepted).

Fields: modality, vocal channel, emotion (01 neutral 02 calm 03 happy 04 sad
05 angry 06 fearful 07 disgust 08 surprised), intensity, statement (the
sentence, ``text``), repetition, actor (the speaker; odd actors are male).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mtl.corpora.base import TableBuilder, require_root

CORPUS = "ravdess"
FOLDER = "ravdess-speech-16k"
CODES: dict[str, str] = {
    "01": "neutral", "02": "calm", "03": "happiness", "04": "sadness",
    "05": "anger", "06": "fear", "07": "disgust", "08": "surprise",
}

_NAME = re.compile(r"^(?P<modality>\d{2})-(?P<channel>\d{2})-(?P<code>\d{2})-(?P<intensity>\d{2})-"
                   r"(?P<statement>\d{2})-(?P<repetition>\d{2})-(?P<actor>\d{2})$")


def load_ravdess(root: str | Path, strict: bool = False) -> pd.DataFrame:
    """The RAVDESS table; ``root`` holds the ``Actor_XX`` folders."""
    root = require_root(root, CORPUS)
    table = TableBuilder(CORPUS, strict)
    table.add_named(table.media_files(root, {".wav", ".flac"}), _NAME, "RAVDESS's MM-VC-EE-II-SS-RR-AA (seven 2-digit "
                    "fields, e.g. 03-01-05-01-02-01-12.wav)", CODES, "RAVDESS", lambda path, match: dict(
                        speaker=match["actor"], emotion=CODES[match["code"]], code=match["code"],
                        text=match["statement"], gender="m" if int(match["actor"]) % 2 else "f"))
    return table.build()

"""EMO-DB (Berlin Database of Emotional Speech) as distributed: ``wav/<speaker><text><emotion><version>.wav``.

``03a01Fa.wav`` is speaker 03, text a01, emotion F (happiness), take a.
535 utterances, 10 speakers (03 08 10 11 15 male; 09 12 13 14 16 female).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mtl.corpora.base import TableBuilder, require_root

CORPUS = "emodb"
FOLDER = "emodb"
CODES: dict[str, str] = {
    "W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral",
}
"""EMO-DB's German initials (Wut, Langeweile, Ekel, Angst, Freude, Trauer, Neutral)."""
SPEAKERS: tuple[str, ...] = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
MALE_SPEAKERS = frozenset({"03", "08", "10", "11", "15"})
TEXTS: tuple[str, ...] = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
"""The ten sentences (a = short, b = long)."""

_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<code>[A-Za-z])(?P<version>[a-z])$")


def load_emodb(root: str | Path, strict: bool = False) -> pd.DataFrame:
    """The EMO-DB table; ``root`` holds ``wav/`` (or the wav files themselves)."""
    root = require_root(root, CORPUS)
    base = root / "wav" if (root / "wav").is_dir() else root
    table = TableBuilder(CORPUS, strict)
    layout = "EMO-DB's <speaker 2 digits><text 3 chars><emotion letter><version letter>.wav (e.g. 03a01Fa.wav)"
    table.add_named(table.media_files(base, {".wav"}), _NAME, layout, CODES, "EMO-DB", lambda path, match: dict(
        speaker=match["speaker"], emotion=CODES[match["code"]], code=match["code"], text=match["text"],
        gender="m" if match["speaker"] in MALE_SPEAKERS else "f"))
    return table.build()
